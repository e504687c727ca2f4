"""The feeds table and its repository: a channel's standing request to hear of every finished
task of some resources (``/task feed``).

A feed row is active until its channel unsubscribes (or the bot cannot post there any more);
each finished task is announced to it at most once, by a delivery (``bot.db.deliveries``) that
``record_feed_delivery`` queues under a unique (feed, task) key. ``AskedInChannel`` and
``asked`` are what a feed and a watch's subscriber (``bot.db.followups``) have in common.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Index, Integer, String, select, update
from sqlalchemy.exc import IntegrityError
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
)
from bot.db.deliveries import DeliveryRecord, TaskSnapshot, queue, queued_delivery

__all__ = ["AskedInChannel", "FeedRecord", "FeedRow", "FeedStatus", "FeedStore", "asked"]

FeedStatus = Literal["active", "cancelled"]


class AskedInChannel:
    """The columns of a channel's standing request, a watch's subscriber or a feed (see ``asked``).
    Each declares its own ``status`` column, typed with the statuses it goes through."""

    team_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    # The catalog id the channel's card and alerts use, fixed when it starts so a change of
    # language does not switch a card halfway.
    locale: Mapped[str | None] = mapped_column(String(16))


class FeedRow(AskedInChannel, Base):
    __tablename__ = "feeds"
    __table_args__ = (
        one_of("status", FeedStatus),
        unique_while_active("uq_feeds_active_channel", "team_id", "channel_id"),
        Index("ix_feeds_status", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[FeedStatus] = mapped_column(String(16))
    resources: Mapped[list[str]] = mapped_column(Json)
    filters: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    """``{"failed": true, "operator": "..."}``; None (or absent keys): no such filter."""


@dataclass(frozen=True, slots=True)
class FeedRecord:
    id: int
    team_id: str
    channel_id: str
    user_id: str
    resources: tuple[str, ...]
    created_at: datetime
    status: FeedStatus
    only_failed: bool = False
    """Announce only tasks that had failures."""
    operator: str | None = None
    """Announce only tasks whose ``operator`` is exactly this."""
    locale: str | None = None

    @property
    def since(self) -> datetime:
        """Tasks that finished before this instant are never announced to the feed."""
        return self.created_at


def _feed(row: FeedRow) -> FeedRecord:
    filters = row.filters or {}
    return record_of(
        FeedRecord,
        row,
        resources=tuple(row.resources),
        only_failed=bool(filters.get("failed")),
        operator=filters.get("operator") or None,
    )


def _filters(only_failed: bool, operator: str | None) -> dict[str, Any] | None:
    filters: dict[str, Any] = {}
    if only_failed:
        filters["failed"] = True
    if operator:
        filters["operator"] = operator
    return filters or None


def asked(team_id: str, channel_id: str, user_id: str, locale: str | None, *, at: datetime) -> dict[str, Any]:
    """What a subscriber and a feed row both start with: who asked where, when, in which language."""
    return {
        "team_id": team_id,
        "channel_id": channel_id,
        "user_id": user_id,
        "locale": locale,
        "created_at": at,
        "status": "active",
    }


class FeedStore(Store):
    """Feeds and the announcements they queue. One instance per process; safe to share."""

    async def subscribe_feed(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        resources: Sequence[str],
        since: datetime,
        only_failed: bool = False,
        operator: str | None = None,
        locale: str | None = None,
    ) -> tuple[FeedRecord, bool]:
        """Start a channel's feed, or return its active one (True only when newly created).

        Subscribing again replaces the filters but keeps the original ``since``, so a
        change of filter never replays tasks that finished in between.
        """
        since = require_aware(since, "since")
        wanted = list(dict.fromkeys(resources))
        filters = _filters(only_failed, operator)

        async def attempt() -> tuple[FeedRecord, bool]:
            async with self._write() as session:
                row = await session.scalar(
                    select(FeedRow)
                    .where(
                        FeedRow.team_id == team_id,
                        FeedRow.channel_id == channel_id,
                        FeedRow.status == "active",
                    )
                    .with_for_update()
                )
                if row is not None:
                    if list(row.resources) != wanted or row.filters != filters or row.locale != locale:
                        row.resources, row.filters, row.locale = wanted, filters, locale
                        await session.flush()
                    return _feed(row), False
                row = FeedRow(
                    resources=wanted,
                    filters=filters,
                    **asked(team_id, channel_id, user_id, locale, at=since),
                )
                session.add(row)
                await session.flush()
                return _feed(row), True

        return await retry_on_conflict(attempt)

    async def unsubscribe_feed(self, *, team_id: str, channel_id: str) -> bool:
        async with self._write() as session:
            result = await session.execute(
                update(FeedRow)
                .where(
                    FeedRow.team_id == team_id, FeedRow.channel_id == channel_id, FeedRow.status == "active"
                )
                .values(status="cancelled")
                .execution_options(synchronize_session=False)
            )
            return rowcount(result) > 0

    async def active_feeds(self, team_ids: Collection[str] | None = None) -> list[FeedRecord]:
        teams = [] if team_ids is None else [FeedRow.team_id.in_(team_ids)]
        async with self._read() as session:
            rows = await session.scalars(
                select(FeedRow)
                .where(FeedRow.status == "active", *teams)
                .order_by(FeedRow.created_at, FeedRow.id)
            )
            return [_feed(row) for row in rows]

    async def channel_feed(self, *, team_id: str, channel_id: str) -> FeedRecord | None:
        async with self._read() as session:
            row = await session.scalar(
                select(FeedRow).where(
                    FeedRow.team_id == team_id, FeedRow.channel_id == channel_id, FeedRow.status == "active"
                )
            )
            return None if row is None else _feed(row)

    async def record_feed_delivery(
        self, feed: FeedRecord, *, task_id: str, snapshot: TaskSnapshot
    ) -> DeliveryRecord | None:
        """Queue the announcement of one finished task to one feed, at most once ever.

        None when this (feed, task) was already recorded, or the feed is no longer active.
        Feed messages mention nobody (``user_id`` None): they are not a reply to anyone.
        """
        try:
            async with self._write() as session:
                # A shared lock holds off a concurrent unsubscribe until this insert commits.
                active = await session.scalar(
                    select(FeedRow.id)
                    .where(FeedRow.id == feed.id, FeedRow.status == "active")
                    .with_for_update(read=True)
                )
                if active is None:
                    return None
                [queued] = await queue(
                    session, [queued_delivery(feed, "feed", snapshot, task_id=task_id, feed_id=feed.id)]
                )
                return queued
        except IntegrityError:
            return None
