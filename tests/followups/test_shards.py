"""Shard leases on the local PostgreSQL, in one process: fair shares, loss, release, SQLite.

Two ``Shards`` coordinators stand for two replicas (their owners differ); the lease statements
run against a real database. The delivery tests run a whole follow-up engine (simulator and
Slack stand-in on loopback, as in ``tests/followups/test_followups.py``) whose shard another "replica"
takes by writing its lease row. The timing across real processes is in ``tests/test_replicas.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from bot.db.base import Database
from bot.db.deliveries import DeliveryStore
from bot.db.followups import FollowUpStore, WatchResult
from bot.db.leases import LeaseStore, ShardLeaseRow, ShardReplicaRow
from bot.followups.changes import sweep_job
from bot.followups.shards import Shards
from tests.databases import open_database
from tests.followups.test_followups import (
    CHANNELS,
    MISSING_ID,
    TASK_ID,
    TEAM,
    _stack,
    longest_wait,
    scheduler_passed,
    settled,
    sim_task,
)
from tests.support.clock import FakeClock
from tests.support.waiting import eventually


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


async def watch_in(store: FollowUpStore, team: str, task: str, channel: str = "C0SHARD") -> WatchResult:
    return await store.watch(
        team_id=team,
        task_id=task,
        channel_id=channel,
        user_id="U0SHARD",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        message_ts=None,
    )


@pytest.mark.postgres
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


@pytest.mark.postgres
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


@pytest.mark.postgres
async def test_the_probe_reads_only_lease_rows_and_a_new_workspace_is_announced(postgres_url: str) -> None:
    async with open_database(postgres_url) as database:
        store, leases = FollowUpStore(database), LeaseStore(database)
        await watch_in(store, "T0TEAM0", "0" * 32)
        # The probe never scans the watches (its cost stays flat with 100,000 of them)...
        assert not await leases.claimable()
        replica = Replica(leases, "a")
        # ...so a replica that stores a watch for a workspace it does not own announces it.
        await replica.shards.announce("T0TEAM0")
        assert await leases.claimable()
        await replica.shards.beat()
        assert replica.shards.owned == {"T0TEAM0"} and not await leases.claimable()
        await replica.shards.announce("T0TEAM0")  # owned: writes nothing, takes nothing away
        assert await leases.owners() == {"T0TEAM0": "a"}


@pytest.mark.postgres
async def test_a_watch_in_a_workspace_nobody_owns_is_claimed_within_seconds_not_a_heartbeat(
    postgres_url: str,
) -> None:
    async with _stack(postgres_url) as stack:
        engine = await stack.followups(lease_seconds=30.0)  # heartbeats every 10 s
        await engine.watch(team_id=TEAM, task_id=MISSING_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
        await eventually(
            lambda: engine.shards.owns(TEAM), within=5, what="the shard claimed before a heartbeat (10 s)"
        )


async def test_sqlite_owns_every_workspace_without_leases() -> None:
    replica = Replica(None, "only")
    await replica.shards.start()
    assert replica.shards.owns("T0ANY") and not replica.shards.leased
    await replica.shards.stop()


# --- deliveries follow the shard ----------------------------------------------------------------


async def give_shard_to(database: Database, team: str, owner: str, *, for_seconds: float) -> None:
    """Another replica holds (or, with a negative time, held) the workspace's lease."""
    async with database.transactions.write() as session:
        await session.execute(
            update(ShardLeaseRow)
            .where(ShardLeaseRow.team_id == team)
            .values(owner=owner, expires_at=datetime.now(UTC) + timedelta(seconds=for_seconds))
        )


@pytest.mark.postgres
@pytest.mark.parametrize("lost", ["while the first attempt is in flight", "once its retry timer is armed"])
async def test_a_replica_that_lost_the_shard_does_not_retry_a_delivery_and_the_new_owner_sends_it_once(
    postgres_url: str, lost: str
) -> None:
    async with _stack(postgres_url) as stack:
        slack = stack.slack
        stack.sim.add_task(sim_task(duration=0.3))
        # Retries after about one poll interval, doubling: long enough to lose the shard in between.
        engine = await stack.followups(poll_seconds=1.0, max_poll_seconds=2.0, lease_seconds=30.0)
        database = engine.storage.database
        post = slack._api_chat_postMessage
        entered, answer = asyncio.Event(), asyncio.Event()

        async def fail_first_post(params: dict[str, Any]) -> dict[str, Any]:
            slack._api_chat_postMessage = post  # type: ignore[method-assign]
            entered.set()
            await answer.wait()
            return {"ok": False, "error": "internal_error"}

        slack._api_chat_postMessage = fail_first_post  # type: ignore[method-assign]
        if lost != "while the first attempt is in flight":
            answer.set()
        await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
        await asyncio.wait_for(entered.wait(), 15)
        (delivery,) = await engine.deliveries.pending_deliveries()
        if lost == "once its retry timer is armed":
            await eventually(
                lambda: engine.scheduler.busy(f"delivery:{delivery.id}"), within=5, what="a retry timer"
            )

        # Another replica takes the workspace over; this one's next heartbeat notices.
        await give_shard_to(database, TEAM, "r-other", for_seconds=3600)
        await engine.shards.beat()
        assert not engine.shards.owns(TEAM)
        # Every attempt from here on, each a task the scheduler tracks.
        attempts: list[asyncio.Task[Any]] = []
        spawn = engine.scheduler.spawn_work

        def recorded(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
            task = spawn(coro, name)
            if name == f"delivery:{delivery.id}":
                attempts.append(task)
            return task

        engine.scheduler.spawn_work = recorded  # type: ignore[method-assign]
        answer.set()
        if lost == "while the first attempt is in flight":
            # The failed attempt arms its retry all the same: wait for the retry's attempt to end.
            retry = await eventually(lambda: attempts[:1], within=10, what="the retry's attempt")
            await retry[0]
        else:
            # The retry job went with the shard: its run, had it stayed, was due before this probe's.
            await scheduler_passed(engine.scheduler, longest_wait(engine))
            assert attempts == []
        assert not engine.scheduler.busy(f"delivery:{delivery.id}")
        assert stack.alerts() == []
        assert slack.calls_to("conversations.history") == []
        assert len(slack.calls_to("chat.postMessage")) == 1

        # The other replica goes away: this one claims the shard back and resumes the delivery.
        await give_shard_to(database, TEAM, "r-other", for_seconds=-1)
        await slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=10)
        await settled(engine, f"delivery:{delivery.id}")
        assert engine.shards.owns(TEAM)
        await engine.stop()  # the work in flight finishes: a second post would be in by then
        assert len(stack.alerts()) == 1
        # The first attempt may have posted: the owner looked before posting again.
        assert len(slack.calls_to("conversations.history")) == 1


@pytest.mark.postgres
async def test_a_poll_that_waited_for_its_token_past_the_lease_is_not_sent(postgres_url: str) -> None:
    async with _stack(postgres_url) as stack:
        stack.sim.add_task(sim_task(duration=600.0))
        engine = await stack.followups(poll_seconds=1.0, max_poll_seconds=2.0, lease_seconds=30.0)
        limiter = engine.limiter_for(TEAM)
        acquire = limiter.acquire
        waiting, token = asyncio.Event(), asyncio.Event()

        async def held_acquire(*args: Any, **kwargs: Any) -> None:
            waiting.set()
            await token.wait()
            await acquire(*args, **kwargs)

        limiter.acquire = held_acquire  # type: ignore[method-assign]
        watched = await engine.watch(
            team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01"
        )
        await asyncio.wait_for(waiting.wait(), 15)
        polls = stack.sim.requests[("show", TASK_ID)]
        # While the poll waits for its token, another replica takes the workspace over.
        await give_shard_to(engine.storage.database, TEAM, "r-other", for_seconds=3600)
        await engine.shards.beat()
        assert not engine.shards.owns(TEAM)
        token.set()
        job = f"watch:{watched.watch.id}"
        await eventually(lambda: not engine.scheduler.busy(job), within=5, what="the held poll over")
        assert stack.sim.requests[("show", TASK_ID)] == polls


@pytest.mark.postgres
async def test_the_owner_delivers_what_a_replica_without_the_lease_queued_within_a_heartbeat(
    postgres_url: str,
) -> None:
    async with _stack(postgres_url) as stack:
        engine = await stack.followups(lease_seconds=3.0)
        store = engine.storage
        # A workspace this replica owns (it claims it within a second of the first watch).
        await engine.watch(team_id=TEAM, task_id=MISSING_ID, channel_id=CHANNELS[1], user_id="U0ASKER02")
        await eventually(lambda: engine.shards.owns(TEAM), within=5, what="the shard claimed")
        # A stalled replica's poll, in flight when it lost the lease, closes a watch after all:
        # its outbox does not deliver (it is not the owner), so the delivery row is all there is.
        result = await watch_in(store, TEAM, TASK_ID, CHANNELS[0])
        (owed,) = await store.close_watch(result.watch.id, status="expired", snapshot=None)
        # The owner picks it up at its next heartbeat (every lease / 3 = 1 s).
        await eventually(lambda: any(m.channel == CHANNELS[0] for m in stack.alerts()), within=5)
        # Recorded sent; then a whole heartbeat, which resumes what is still owed, and the work
        # it started is done.
        await settled(engine)
        await engine.shards.beat()
        await engine.stop()
        assert [m.channel for m in stack.alerts()] == [CHANNELS[0]]
        sent = await DeliveryStore(store.database).get_delivery(owed.id)
        assert sent is not None and sent.status == "sent"


@pytest.mark.postgres
async def test_the_list_sweep_follows_the_shard(postgres_url: str) -> None:
    async with _stack(postgres_url) as stack:
        long_ids = ("5e1f0000000000000000000000000a01", "5e1f0000000000000000000000000a02")
        for task_id in long_ids:
            stack.sim.add_task(sim_task(task_id, duration=3 * 3600, total_count=1_000_000))
        engine = await stack.followups(poll_seconds=1.0, max_poll_seconds=600.0, lease_seconds=30.0)
        for number, task_id in enumerate(long_ids):
            await engine.watch(
                team_id=TEAM, task_id=task_id, channel_id=CHANNELS[number], user_id="U0ASKER01"
            )
        job = sweep_job(TEAM)
        # Armed once the shard is claimed and its watches re-armed from the tables.
        await eventually(lambda: engine.scheduler.pending(job), within=10, what="the sweep job armed")

        await give_shard_to(engine.storage.database, TEAM, "r-other", for_seconds=3600)
        await engine.shards.beat()
        assert not engine.shards.owns(TEAM)
        assert not engine.scheduler.pending(job)
        assert len(engine.watches) == 0

        # The other replica goes away: the shard comes back, and its sweep with it.
        await give_shard_to(engine.storage.database, TEAM, "r-other", for_seconds=-1)
        await engine.shards.beat()
        await eventually(lambda: engine.scheduler.pending(job), within=10, what="the sweep job armed again")
        assert len(engine.watches) == 2
