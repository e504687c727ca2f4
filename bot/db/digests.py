"""The digest table and its repository: one scheduled summary per channel.

A digest row is the channel's standing request (when, in which timezone, in which language);
``last_run_at`` is the scheduled fire time of the last run that was recorded. Recording a run
moves ``last_run_at`` forward with a conditional ``UPDATE`` and queues its delivery in the same
transaction, so a run is queued at most once across crashes, hand-overs and replicas; the
outbox (``bot.followups.outbox``) then posts it exactly once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Boolean, CheckConstraint, Integer, String, delete, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base, Store, one_of, record_of, require_aware, rowcount, utcnow
from bot.db.deliveries import DeliveryRecord, DeliveryRow, DigestReport, DigestTask, queue, queued_delivery

__all__ = ["CADENCES", "Cadence", "DigestRecord", "DigestReport", "DigestStore", "DigestTask"]

Cadence = Literal["daily", "weekdays", "weekly"]
CADENCES: tuple[Cadence, ...] = get_args(Cadence)


class DigestRow(Base):
    __tablename__ = "digests"
    __table_args__ = (
        one_of("cadence", Cadence),
        # One digest per channel: setting it again replaces it.
        CheckConstraint("hour >= 0 AND hour < 24 AND minute >= 0 AND minute < 60", name="time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    cadence: Mapped[Cadence] = mapped_column(String(16))
    weekday: Mapped[int | None] = mapped_column(Integer)
    """0 = Monday … 6 = Sunday, for ``weekly``; None otherwise."""
    hour: Mapped[int] = mapped_column(Integer)
    minute: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    """The IANA timezone of the person who set it (Slack ``users.info`` ``tz``)."""
    quiet: Mapped[bool] = mapped_column(Boolean)
    """Skip a run in which nothing finished."""
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_run_at: Mapped[datetime | None]


@dataclass(frozen=True, slots=True)
class DigestRecord:
    id: int
    team_id: str
    channel_id: str
    user_id: str
    cadence: Cadence
    weekday: int | None
    hour: int
    minute: int
    timezone: str
    quiet: bool
    locale: str | None
    created_at: datetime
    last_run_at: datetime | None


def _digest(row: DigestRow) -> DigestRecord:
    return record_of(DigestRecord, row)


class DigestStore(Store):
    """Digests and their runs. One instance per process; safe to share."""

    async def set_digest(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        cadence: Cadence,
        weekday: int | None,
        hour: int,
        minute: int,
        timezone: str,
        quiet: bool,
        locale: str | None,
    ) -> DigestRecord:
        """Start the channel's digest, or replace its schedule (keeping when it last ran)."""
        values: dict[str, Any] = {
            "user_id": user_id,
            "cadence": cadence,
            "weekday": weekday,
            "hour": hour,
            "minute": minute,
            "timezone": timezone,
            "quiet": quiet,
            "locale": locale,
        }
        async with self._write() as session:
            row = await session.scalar(
                select(DigestRow)
                .where(DigestRow.team_id == team_id, DigestRow.channel_id == channel_id)
                .with_for_update()
            )
            if row is None:
                row = DigestRow(
                    team_id=team_id, channel_id=channel_id, created_at=utcnow(), last_run_at=None, **values
                )
                session.add(row)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
            await session.flush()
            return _digest(row)

    async def digest_off(self, *, team_id: str, channel_id: str) -> int | None:
        """Remove the channel's digest; its id, or None when it had none."""
        async with self._write() as session:
            digest_id = await session.scalar(
                select(DigestRow.id).where(DigestRow.team_id == team_id, DigestRow.channel_id == channel_id)
            )
            if digest_id is None:
                return None
            # An owed run is still posted: its delivery keeps the figures, not the digest.
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.digest_id == digest_id)
                .values(digest_id=None)
                .execution_options(synchronize_session=False)
            )
            await session.execute(delete(DigestRow).where(DigestRow.id == digest_id))
            return int(digest_id)

    async def channel_digest(self, *, team_id: str, channel_id: str) -> DigestRecord | None:
        async with self._read() as session:
            row = await session.scalar(
                select(DigestRow).where(DigestRow.team_id == team_id, DigestRow.channel_id == channel_id)
            )
            return None if row is None else _digest(row)

    async def get_digest(self, digest_id: int) -> DigestRecord | None:
        async with self._read() as session:
            row = await session.get(DigestRow, digest_id)
            return None if row is None else _digest(row)

    async def active_digests(self, team_ids: Collection[str] | None = None) -> list[DigestRecord]:
        teams = [] if team_ids is None else [DigestRow.team_id.in_(team_ids)]
        async with self._read() as session:
            rows = await session.scalars(select(DigestRow).where(*teams).order_by(DigestRow.id))
            return [_digest(row) for row in rows]

    async def record_run(
        self, digest: DigestRecord, *, fire_at: datetime, report: DigestReport | None
    ) -> DeliveryRecord | None:
        """Record the run scheduled at ``fire_at`` and queue its ``report`` (None: a quiet skip).

        None when that run (or a later one) was already recorded, by this replica or another.
        """
        fire_at = require_aware(fire_at, "fire_at")
        async with self._write() as session:
            moved = await session.execute(
                update(DigestRow)
                .where(
                    DigestRow.id == digest.id,
                    or_(DigestRow.last_run_at.is_(None), DigestRow.last_run_at < fire_at),
                )
                .values(last_run_at=fire_at)
                .execution_options(synchronize_session=False)
            )
            if rowcount(moved) == 0 or report is None:
                return None
            [queued] = await queue(session, [queued_delivery(digest, "digest", report, digest_id=digest.id)])
            return queued

    async def close_digest(self, digest_id: int) -> str | None:
        """Remove a digest the bot can no longer post for; whom to tell (who set it)."""
        async with self._write() as session:
            row = await session.get(DigestRow, digest_id)
            if row is None:
                return None
            user_id = row.user_id
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.digest_id == digest_id)
                .values(digest_id=None)
                .execution_options(synchronize_session=False)
            )
            await session.delete(row)
            return user_id
