"""The watch tables and their repository: watches and their subscribers.

The scheduler (APScheduler, in-memory job store) only keeps timers; these tables are the truth that survives a crash or
``kill -9``. Rows change on state transitions only (never per poll), and every transition that
must happen once is guarded in the database itself: conditional ``UPDATE ... WHERE status =
'active'`` with a rowcount check, partial unique indexes on the active rows, and unique keys on
deliveries (``bot.db.deliveries``, queued here in the transaction that decides them), so two
racing coroutines or two bot processes cannot notify a channel twice.

Lock order, to keep PostgreSQL free of deadlocks: a watch row first, then its subscribers, then
deliveries. A workspace's feeds (``bot.db.feeds``) and deliveries are deleted with it here
(``delete_team``). Callers only ever see frozen dataclasses, so no session, lazy load or expiry leaks out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import (
    Base,
    Json,
    Store,
    one_of,
    record_of,
    require_aware,
    retry_on_conflict,
    rowcount,
    unique_while_active,
    utcnow,
)
from bot.db.deliveries import (
    STEP,
    DeliveryRecord,
    DeliveryRow,
    StepOrChannel,
    TaskSnapshot,
    queue,
    queued_delivery,
    read_payload,
)
from bot.db.feeds import AskedInChannel, FeedRow, asked
from bot.db.fleet import RateBucket

__all__ = [
    "STEP",
    "ActiveWatch",
    "ChannelWatch",
    "CloseStatus",
    "FollowUpStore",
    "SubscriberRecord",
    "WatchRecord",
    "WatchResult",
    "WatchStatus",
]

WatchStatus = Literal["active", "finished", "expired", "not_found", "cancelled"]
CloseStatus = Literal["finished", "expired", "not_found"]
SubscriberStatus = Literal["active", "cancelled", "closed"]


class WatchRow(Base):
    __tablename__ = "watches"
    __table_args__ = (
        one_of("status", WatchStatus),
        unique_while_active("uq_watches_active_task", "team_id", "task_id"),
        Index("ix_watches_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[WatchStatus] = mapped_column(String(16))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(Json)


class SubscriberRow(AskedInChannel, Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        one_of("status", SubscriberStatus),
        unique_while_active("uq_subscribers_active_channel", "watch_id", "channel_id"),
        Index("ix_subscribers_watch_status", "watch_id", "status"),
        Index("ix_subscribers_channel", "team_id", "channel_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("watches.id"))
    status: Mapped[SubscriberStatus] = mapped_column(String(16))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    closed_reason: Mapped[str | None] = mapped_column(String(64))
    # A step's: STEP and its own time limit; NULL for a channel, which expires with the watch.
    target: Mapped[str | None] = mapped_column(String(16))
    expires_at: Mapped[datetime | None]


@dataclass(frozen=True, slots=True)
class WatchRecord:
    id: int
    team_id: str
    task_id: str
    status: WatchStatus
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    snapshot: TaskSnapshot | None


@dataclass(frozen=True, slots=True)
class SubscriberRecord(StepOrChannel):
    id: int
    watch_id: int
    team_id: str
    channel_id: str
    user_id: str
    message_ts: str | None
    created_at: datetime
    status: SubscriberStatus
    closed_reason: str | None
    locale: str | None = None
    target: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WatchResult:
    watch: WatchRecord
    subscriber: SubscriberRecord
    created: bool  # False: this channel was already watching the task


@dataclass(frozen=True, slots=True)
class ActiveWatch(WatchRecord):
    """An active watch with its active subscribers, enough to reschedule it after a restart."""

    subscribers: tuple[SubscriberRecord, ...]


@dataclass(frozen=True, slots=True)
class ChannelWatch:
    task_id: str
    user_id: str
    created_at: datetime
    subscriber_id: int
    watch_id: int
    expires_at: datetime
    message_ts: str | None


W = TypeVar("W", bound=WatchRecord)


def _watch(row: WatchRow, record: type[W], **more: Any) -> W:
    """``record`` (a watch, or a watch and more) of ``row``, its snapshot parsed."""
    return record_of(record, row, snapshot=read_payload(TaskSnapshot, row.snapshot), **more)


def _subscriber(row: SubscriberRow) -> SubscriberRecord:
    return record_of(SubscriberRecord, row)


def _stored(snapshot: TaskSnapshot | None) -> dict[str, Any] | None:
    return None if snapshot is None else snapshot.model_dump(mode="json")


def _told(
    subscriber: SubscriberRow, kind: CloseStatus, task_id: str, snapshot: TaskSnapshot | None, now: datetime
) -> DeliveryRow:
    """The delivery that tells one watch subscriber (a channel, or a step) how its watch ended."""
    return queued_delivery(
        subscriber,
        kind,
        snapshot,
        task_id=task_id,
        user_id=subscriber.user_id,
        thread_ts=subscriber.message_ts,
        target=subscriber.target,
        watch_id=subscriber.watch_id,
        subscriber_id=subscriber.id,
        created_at=now,
    )


class FollowUpStore(Store):
    """Watches and their subscribers. One instance per process; safe to share."""

    # -- watches -------------------------------------------------------------------------------

    async def watch(
        self,
        *,
        team_id: str,
        task_id: str,
        channel_id: str,
        user_id: str,
        expires_at: datetime,
        message_ts: str | None = None,
        locale: str | None = None,
        step_expires_at: datetime | None = None,
    ) -> WatchResult:
        """Subscribe a channel to a task, sharing the task's active watch if there is one.

        An existing active watch keeps its own ``expires_at``; a channel already watching gets
        its existing subscriber back with ``created=False`` (its ``message_ts`` is left as is).
        A channel joining a watch that has no channel (only steps) sets its ``expires_at``.

        ``step_expires_at`` makes the subscriber a Workflow Builder step (``target`` STEP):
        ``channel_id`` is then its function execution id and it expires at that time, on its own.
        """
        expires_at = require_aware(expires_at, "expires_at")
        if step_expires_at is not None:
            step_expires_at = require_aware(step_expires_at, "step_expires_at")

        async def attempt() -> WatchResult:
            now = utcnow()
            async with self._write() as session:
                watch = await session.scalar(
                    select(WatchRow)
                    .where(
                        WatchRow.team_id == team_id, WatchRow.task_id == task_id, WatchRow.status == "active"
                    )
                    .with_for_update()
                )
                if watch is None:
                    watch = WatchRow(
                        team_id=team_id,
                        task_id=task_id,
                        status="active",
                        created_at=now,
                        expires_at=expires_at,
                        closed_at=None,
                        snapshot=None,
                    )
                    session.add(watch)
                    await session.flush()
                else:
                    existing = await session.scalar(
                        select(SubscriberRow).where(
                            SubscriberRow.watch_id == watch.id,
                            SubscriberRow.channel_id == channel_id,
                            SubscriberRow.status == "active",
                        )
                    )
                    if existing is not None:
                        return WatchResult(
                            watch=_watch(watch, WatchRecord), subscriber=_subscriber(existing), created=False
                        )
                    if step_expires_at is None and not await self._has_channels(session, watch.id):
                        # The first channel of a watch steps started (or kept alive past its
                        # channels' time): the channels' time starts now.
                        watch.expires_at = expires_at
                subscriber = SubscriberRow(
                    watch_id=watch.id,
                    message_ts=message_ts,
                    closed_reason=None,
                    target=None if step_expires_at is None else STEP,
                    expires_at=step_expires_at,
                    **asked(team_id, channel_id, user_id, locale, at=now),
                )
                session.add(subscriber)
                await session.flush()
                return WatchResult(
                    watch=_watch(watch, WatchRecord), subscriber=_subscriber(subscriber), created=True
                )

        return await retry_on_conflict(attempt)

    @staticmethod
    async def _has_channels(session: AsyncSession, watch_id: int) -> bool:
        found = await session.scalar(
            select(SubscriberRow.id)
            .where(
                SubscriberRow.watch_id == watch_id,
                SubscriberRow.status == "active",
                SubscriberRow.target.is_(None),
            )
            .limit(1)
        )
        return found is not None

    async def unwatch(self, *, team_id: str, task_id: str, channel_id: str) -> bool:
        """Cancel this channel's subscription; the watch itself is cancelled with its last subscriber."""
        async with self._write() as session:
            watch_id = await session.scalar(
                select(WatchRow.id)
                .where(WatchRow.team_id == team_id, WatchRow.task_id == task_id, WatchRow.status == "active")
                .with_for_update()
            )
            if watch_id is None:
                return False
            result = await session.execute(
                update(SubscriberRow)
                .where(
                    SubscriberRow.watch_id == watch_id,
                    SubscriberRow.channel_id == channel_id,
                    SubscriberRow.status == "active",
                )
                .values(status="cancelled", closed_reason="unwatched")
                .execution_options(synchronize_session=False)
            )
            if rowcount(result) == 0:
                return False
            await self._cancel_if_orphaned(session, watch_id)
            return True

    async def _cancel_if_orphaned(self, session: AsyncSession, watch_id: int) -> None:
        remaining = await session.scalar(
            select(func.count())
            .select_from(SubscriberRow)
            .where(SubscriberRow.watch_id == watch_id, SubscriberRow.status == "active")
        )
        if not remaining:
            await session.execute(
                update(WatchRow)
                .where(WatchRow.id == watch_id, WatchRow.status == "active")
                .values(status="cancelled", closed_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    async def set_card_ts(self, subscriber_id: int, message_ts: str) -> None:
        async with self._write() as session:
            await session.execute(
                update(SubscriberRow)
                .where(SubscriberRow.id == subscriber_id)
                .values(message_ts=message_ts)
                .execution_options(synchronize_session=False)
            )

    async def channel_watches(self, *, team_id: str, channel_id: str) -> list[ChannelWatch]:
        async with self._read() as session:
            rows = await session.execute(
                select(SubscriberRow, WatchRow)
                .join(WatchRow, SubscriberRow.watch_id == WatchRow.id)
                .where(
                    SubscriberRow.team_id == team_id,
                    SubscriberRow.channel_id == channel_id,
                    SubscriberRow.status == "active",
                    WatchRow.status == "active",
                )
                .order_by(SubscriberRow.created_at, SubscriberRow.id)
            )
            return [
                ChannelWatch(
                    task_id=watch.task_id,
                    user_id=subscriber.user_id,
                    created_at=subscriber.created_at,
                    subscriber_id=subscriber.id,
                    watch_id=watch.id,
                    expires_at=watch.expires_at,
                    message_ts=subscriber.message_ts,
                )
                for subscriber, watch in rows
            ]

    async def active_watches(self, team_ids: Collection[str] | None = None) -> list[ActiveWatch]:
        """Every active watch with its subscribers; only these workspaces' when ``team_ids`` is given."""
        teams = [] if team_ids is None else [WatchRow.team_id.in_(team_ids)]
        async with self._read() as session:
            watches = (
                await session.scalars(
                    select(WatchRow)
                    .where(WatchRow.status == "active", *teams)
                    .order_by(WatchRow.created_at, WatchRow.id)
                )
            ).all()
            subscribers = (
                await session.scalars(
                    select(SubscriberRow)
                    .join(WatchRow, SubscriberRow.watch_id == WatchRow.id)
                    .where(WatchRow.status == "active", SubscriberRow.status == "active", *teams)
                    .order_by(SubscriberRow.created_at, SubscriberRow.id)
                )
            ).all()
        by_watch: dict[int, list[SubscriberRecord]] = {}
        for subscriber in subscribers:
            by_watch.setdefault(subscriber.watch_id, []).append(_subscriber(subscriber))
        return [_watch(row, ActiveWatch, subscribers=tuple(by_watch.get(row.id, ()))) for row in watches]

    async def get_watch(self, watch_id: int) -> WatchRecord | None:
        async with self._read() as session:
            row = await session.get(WatchRow, watch_id)
            return None if row is None else _watch(row, WatchRecord)

    async def active_subscribers(self, watch_id: int) -> list[SubscriberRecord]:
        async with self._read() as session:
            rows = await session.scalars(
                select(SubscriberRow)
                .where(SubscriberRow.watch_id == watch_id, SubscriberRow.status == "active")
                .order_by(SubscriberRow.created_at, SubscriberRow.id)
            )
            return [_subscriber(row) for row in rows]

    async def close_watch(
        self, watch_id: int, *, status: CloseStatus, snapshot: TaskSnapshot | None
    ) -> list[DeliveryRecord]:
        """Close an active watch and queue one delivery per active subscriber, atomically.

        Returns [] and changes nothing when the watch is no longer active, so concurrent or
        repeated calls (two pollers, a poll racing the expiry timer) notify exactly once.
        ``snapshot`` (the task as last seen) is kept on the watch and in each delivery.
        """
        if status not in ("finished", "expired", "not_found"):
            raise ValueError(f"close_watch status must be finished, expired or not_found, not {status!r}")
        now = utcnow()
        async with self._write() as session:
            # The conditional UPDATE is the claim: on PostgreSQL it row-locks the watch, and a
            # racing caller re-evaluates the WHERE after we commit and matches nothing.
            claimed = await session.execute(
                update(WatchRow)
                .where(WatchRow.id == watch_id, WatchRow.status == "active")
                .values(status=status, closed_at=now, snapshot=_stored(snapshot))
                .execution_options(synchronize_session=False)
            )
            if rowcount(claimed) == 0:
                return []
            task_id = await session.scalar(select(WatchRow.task_id).where(WatchRow.id == watch_id))
            assert task_id is not None
            subscribers = (
                await session.scalars(
                    select(SubscriberRow)
                    .where(SubscriberRow.watch_id == watch_id, SubscriberRow.status == "active")
                    .order_by(SubscriberRow.created_at, SubscriberRow.id)
                )
            ).all()
            queued = await queue(session, [_told(s, status, task_id, snapshot, now) for s in subscribers])
            await session.execute(
                update(SubscriberRow)
                .where(SubscriberRow.watch_id == watch_id, SubscriberRow.status == "active")
                .values(status="closed", closed_reason=status)
                .execution_options(synchronize_session=False)
            )
            return queued

    async def expire_subscribers(
        self, watch_id: int, *, now: datetime, snapshot: TaskSnapshot | None
    ) -> tuple[list[DeliveryRecord], bool]:
        """Expire the active subscribers whose time is up, queueing one ``expired`` delivery each.

        A channel's time is the watch's ``expires_at``; a step's is its own. When none is left the
        watch itself closes as ``expired`` (as ``close_watch`` does); otherwise it stays active
        for the steps still waiting. Returns the deliveries queued and whether the watch is still
        active. Repeated or racing calls queue nothing twice: only active subscribers are taken.
        """
        now = require_aware(now, "now")
        async with self._write() as session:
            watch = await session.scalar(
                select(WatchRow).where(WatchRow.id == watch_id, WatchRow.status == "active").with_for_update()
            )
            if watch is None:
                return [], False
            subscribers = (
                await session.scalars(
                    select(SubscriberRow)
                    .where(SubscriberRow.watch_id == watch_id, SubscriberRow.status == "active")
                    .order_by(SubscriberRow.created_at, SubscriberRow.id)
                    .with_for_update()
                )
            ).all()
            due = [s for s in subscribers if (s.expires_at or watch.expires_at) <= now]
            still_active = len(due) < len(subscribers)
            if not still_active:
                watch.status, watch.closed_at, watch.snapshot = "expired", now, _stored(snapshot)
            deliveries = [_told(subscriber, "expired", watch.task_id, snapshot, now) for subscriber in due]
            for subscriber in due:
                subscriber.status, subscriber.closed_reason = "closed", "expired"
            return await queue(session, deliveries), still_active

    async def close_subscriber(self, subscriber_id: int, reason: str) -> None:
        """Stop notifying one channel (e.g. ``channel_not_found``); the watch goes with its last one."""
        async with self._write() as session:
            watch_id = await session.scalar(
                select(SubscriberRow.watch_id).where(SubscriberRow.id == subscriber_id)
            )
            if watch_id is None:
                return
            await session.execute(select(WatchRow.id).where(WatchRow.id == watch_id).with_for_update())
            result = await session.execute(
                update(SubscriberRow)
                .where(SubscriberRow.id == subscriber_id, SubscriberRow.status == "active")
                .values(status="closed", closed_reason=reason[:64])
                .execution_options(synchronize_session=False)
            )
            if rowcount(result):
                await self._cancel_if_orphaned(session, watch_id)

    # -- maintenance ---------------------------------------------------------------------------

    async def delete_team(self, team_id: str) -> None:
        """Forget a workspace entirely (app uninstalled or tokens revoked)."""
        async with self._write() as session:
            await self.delete_team_in(session, team_id)

    @staticmethod
    async def delete_team_in(session: AsyncSession, team_id: str) -> None:
        """``delete_team`` inside the caller's transaction (``bot.db.departures`` joins several)."""
        # Same lock order as close_watch: watches first.
        await session.execute(select(WatchRow.id).where(WatchRow.team_id == team_id).with_for_update())
        for model in (DeliveryRow, SubscriberRow, WatchRow, FeedRow, RateBucket):
            await session.execute(
                delete(model).where(model.team_id == team_id).execution_options(synchronize_session=False)
            )
        # Its digests and shard lease too (bot.db.digests and bot.db.leases, named here: those
        # modules import this one).
        await session.execute(text("DELETE FROM digests WHERE team_id = :team"), {"team": team_id})
        await session.execute(text("DELETE FROM shard_leases WHERE team_id = :team"), {"team": team_id})

    async def active_watch_count(self, team_id: str) -> int:
        """Active watches of one workspace, for its App Home."""
        async with self._read() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(WatchRow)
                .where(WatchRow.team_id == team_id, WatchRow.status == "active")
            )
            return int(count or 0)

    async def counts(self) -> dict[str, int]:
        async with self._read() as session:
            result: dict[str, int] = {}
            for model in (WatchRow, SubscriberRow, FeedRow, DeliveryRow):
                count = await session.scalar(select(func.count()).select_from(model))
                result[model.__tablename__] = int(count or 0)
            return result
