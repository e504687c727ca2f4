"""Shard leases: which replica polls which workspace, leased in PostgreSQL.

One row per shard (a workspace, ``team_id``). A row is owned by ``owner`` until ``expires_at``;
all times are the database's ``now()``, so replicas' clocks never have to agree. The writes
are O(replicas) per heartbeat, never O(watches): each replica renews all its rows with ONE
``UPDATE ... WHERE owner = me``, claims expired rows with one ``SELECT ... FOR UPDATE SKIP
LOCKED`` plus one ``UPDATE``, and inserts a row only for a workspace seen for the first time.
``SKIP LOCKED`` makes two replicas claiming at once take disjoint rows instead of waiting for
each other (the pattern of APScheduler 4's SQLAlchemy data store, Oban and Solid Queue).

Only PostgreSQL uses this table; on SQLite the one process owns every shard
(``bot.followups.shards``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, delete, func, literal, select, text, union, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base, Database, rowcount
from bot.db.deliveries import DeliveryRow
from bot.db.digests import DigestRow
from bot.db.feeds import FeedRow
from bot.db.followups import WatchRow

__all__ = ["LeaseStore", "ShardLeaseRow", "ShardReplicaRow"]

UNOWNED = ""
_EPOCH = text("TIMESTAMP WITH TIME ZONE 'epoch'")


class ShardLeaseRow(Base):
    __tablename__ = "shard_leases"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]


class ShardReplicaRow(Base):
    """One row per live replica, renewed with its leases: the fair share divides by these."""

    __tablename__ = "shard_replicas"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime]


def _period(seconds: float) -> object:
    return func.now() + timedelta(seconds=seconds)


class LeaseStore:
    """The lease statements; every method is one short transaction."""

    def __init__(self, database: Database) -> None:
        self._tx = database.transactions

    async def renew(self, owner: str, seconds: float) -> set[str]:
        """Extend every unexpired lease of ``owner``; returns the shards it still holds."""
        async with self._tx.write() as session:
            await session.execute(
                insert(ShardReplicaRow)
                .values(owner=owner, expires_at=_period(seconds))
                .on_conflict_do_update(index_elements=["owner"], set_={"expires_at": _period(seconds)})
            )
            rows = await session.scalars(
                update(ShardLeaseRow)
                .where(ShardLeaseRow.owner == owner, ShardLeaseRow.expires_at > func.now())
                .values(expires_at=_period(seconds))
                .returning(ShardLeaseRow.team_id)
            )
            return set(rows)

    async def claim(self, owner: str, seconds: float, *, owned: int) -> tuple[set[str], int]:
        """Take expired or unowned shards, up to a fair share; returns the ones taken and the share.

        The fair share is ``ceil(shards / live replicas)``, so replicas starting together or
        taking over from a dead one spread the work instead of the first one taking everything
        it can see; a replica holding more than its share gives the excess up (``release``).
        """
        async with self._tx.write() as session:
            # New workspaces get an unowned row; ON CONFLICT DO NOTHING writes nothing for known ones.
            busy = union(
                select(WatchRow.team_id).where(WatchRow.status == "active"),
                select(FeedRow.team_id).where(FeedRow.status == "active"),
                select(DigestRow.team_id),
                select(DeliveryRow.team_id).where(DeliveryRow.status.in_(("pending", "sending"))),
            ).subquery()
            await session.execute(
                insert(ShardLeaseRow)
                .from_select(
                    ["team_id", "owner", "expires_at", "acquired_at"],
                    select(busy.c.team_id, literal(UNOWNED), _EPOCH, _EPOCH),
                )
                .on_conflict_do_nothing(index_elements=["team_id"])
            )
            # Workspaces with nothing left to poll or deliver drop out once their lease lapses.
            await session.execute(
                delete(ShardLeaseRow).where(
                    ShardLeaseRow.expires_at <= func.now(),
                    ShardLeaseRow.team_id.not_in(select(busy.c.team_id)),
                )
            )
            total = await session.scalar(select(func.count()).select_from(ShardLeaseRow)) or 0
            others = (
                await session.scalar(
                    select(func.count()).where(
                        ShardReplicaRow.expires_at > func.now(), ShardReplicaRow.owner != owner
                    )
                )
                or 0
            )
            share = -(-total // (others + 1))
            wanted = share - owned
            if wanted <= 0:
                return set(), share
            free = (
                await session.scalars(
                    select(ShardLeaseRow.team_id)
                    .where(ShardLeaseRow.expires_at <= func.now())
                    .order_by(ShardLeaseRow.expires_at, ShardLeaseRow.team_id)
                    .limit(wanted)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not free:
                return set(), share
            taken = await session.scalars(
                update(ShardLeaseRow)
                .where(ShardLeaseRow.team_id.in_(free), ShardLeaseRow.expires_at <= func.now())
                .values(owner=owner, expires_at=_period(seconds), acquired_at=func.now())
                .returning(ShardLeaseRow.team_id)
            )
            return set(taken), share

    async def claimable(self) -> bool:
        """Whether a claim would find work: an expired or released lease (or a new workspace's row).

        Reads only, so replicas can ask every second and take a released shard at once instead
        of at their next heartbeat: a rolling restart hands over in about a second. It reads
        ``shard_leases`` alone (one row per workspace), never the watches: at 100,000 watches a
        look for workspaces without a row took 174 ms, once a second on every replica
        (BENCHMARKS.md). A workspace's first watch writes its row instead (``announce``).
        """
        async with self._tx.read() as session:
            expired = select(ShardLeaseRow.team_id).where(ShardLeaseRow.expires_at <= func.now())
            return bool(await session.scalar(select(expired.exists())))

    async def announce(self, team_id: str) -> None:
        """Give a workspace that just got work an unowned lease row, so every probe sees it claimable.

        Writes nothing when the row exists. The heartbeat's ``claim`` adds rows too; this only
        makes a new workspace's first watch polled within about a second instead of one heartbeat.
        """
        async with self._tx.write() as session:
            await session.execute(
                insert(ShardLeaseRow)
                .values(team_id=team_id, owner=UNOWNED, expires_at=_EPOCH, acquired_at=_EPOCH)
                .on_conflict_do_nothing(index_elements=["team_id"])
            )

    async def release(self, owner: str, team_ids: set[str] | None = None) -> int:
        """Give leases up at once (all of ``owner``'s, or just ``team_ids``) so another claims them."""
        async with self._tx.write() as session:
            statement = (
                update(ShardLeaseRow)
                .where(ShardLeaseRow.owner == owner)
                .values(owner=UNOWNED, expires_at=_EPOCH)
            )
            if team_ids is not None:
                statement = statement.where(ShardLeaseRow.team_id.in_(team_ids))
            result = await session.execute(statement)
            if team_ids is None:
                await session.execute(delete(ShardReplicaRow).where(ShardReplicaRow.owner == owner))
            # Replicas that died without a SIGTERM leave a row; the next release cleans them up.
            await session.execute(delete(ShardReplicaRow).where(ShardReplicaRow.expires_at < func.now()))
            return rowcount(result)

    async def owners(self) -> dict[str, str]:
        """Team -> owner of every unexpired lease (for tests and ``taskbot check``)."""
        async with self._tx.read() as session:
            rows = await session.execute(
                select(ShardLeaseRow.team_id, ShardLeaseRow.owner).where(
                    ShardLeaseRow.expires_at > func.now()
                )
            )
            return {team: who for team, who in rows.all()}
