"""Shard leases on the local PostgreSQL, in one process: fair shares, loss, release, SQLite.

Two ``Shards`` coordinators stand for two replicas (their owners differ); the lease statements
run against a real database. The timing across real processes is in ``tests/test_replicas.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.db.followups import FollowUpStore
from bot.db.leases import LeaseStore, ShardLeaseRow, ShardReplicaRow
from bot.followups.shards import Shards
from tests.databases import open_database
from tests.support.clock import FakeClock


class Replica:
    def __init__(self, leases: LeaseStore | None, name: str, seconds: float = 30.0) -> None:
        self.gained: list[set[str]] = []
        self.lost: list[set[str]] = []
        self.synced: list[set[str]] = []
        self.shards = Shards(
            leases,
            seconds=seconds,
            on_gain=self._gain,
            on_lose=self.lost.append,
            on_sync=self._sync,
            owner=name,
        )

    async def _gain(self, teams: set[str]) -> None:
        self.gained.append(teams)

    async def _sync(self, teams: set[str]) -> None:
        self.synced.append(teams)


async def watch_in(store: FollowUpStore, team: str, task: str) -> None:
    await store.watch(
        team_id=team,
        task_id=task,
        channel_id="C0SHARD",
        user_id="U0SHARD",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        message_ts=None,
    )


async def test_two_replicas_split_the_workspaces_and_a_lost_lease_is_dropped(postgres_url: str) -> None:
    async with open_database(postgres_url) as database:
        store, leases = FollowUpStore(database), LeaseStore(database)
        for number in range(4):
            await watch_in(store, f"T0TEAM{number}", f"{number:032x}")
        a, b = Replica(leases, "a"), Replica(leases, "b")
        await a.shards.beat()
        await b.shards.beat()
        # b's presence is known only after its first beat; a gives the excess up at its next one.
        await a.shards.beat()
        await b.shards.beat()
        assert len(a.shards.owned) == 2 and len(b.shards.owned) == 2
        assert not a.shards.owned & b.shards.owned
        assert all(a.shards.owns(t) for t in a.shards.owned) and not any(
            a.shards.owns(t) for t in b.shards.owned
        )
        assert set((await leases.owners()).values()) == {"a", "b"}

        # b's leases run out behind its back (as if it had stalled): its next renew drops them.
        async with database.transactions.write() as session:
            await session.execute(
                update(ShardLeaseRow)
                .where(ShardLeaseRow.owner == "b")
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            await session.execute(
                update(ShardReplicaRow)
                .where(ShardReplicaRow.owner == "b")
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        held = set(b.shards.owned)
        await a.shards.beat()  # takes them over: a's share is now everything b cannot renew
        assert a.shards.owned >= held
        await b.shards.beat()
        assert b.lost[-1] == held and not (b.shards.owned & held)

        # SIGTERM: everything a holds is free at once, and b sees it without waiting for a beat.
        await a.shards.stop()
        assert await leases.claimable()
        await b.shards.beat()
        assert len(b.shards.owned) == 4


async def test_owns_stops_by_the_replicas_own_clock_before_any_heartbeat(postgres_url: str) -> None:
    clock = FakeClock(1000.0)
    async with open_database(postgres_url) as database:
        await watch_in(FollowUpStore(database), "T0TEAM0", "0" * 32)
        replica = Replica(LeaseStore(database), "a", seconds=30.0)
        replica.shards._clock = clock
        await replica.shards.beat()
        assert replica.shards.owns("T0TEAM0")
        clock.advance(31.0)  # SIGSTOP past the lease: no heartbeat has run yet
        assert not replica.shards.owns("T0TEAM0")


async def test_sqlite_owns_every_workspace_without_leases() -> None:
    replica = Replica(None, "only")
    await replica.shards.start()
    assert replica.shards.owns("T0ANY") and not replica.shards.leased
    await replica.shards.stop()
