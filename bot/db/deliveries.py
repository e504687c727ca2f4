"""The deliveries table and its repository: every alert owed to a channel or a workflow step.

A delivery row is queued in the same transaction as the decision that a target must be told
(a watch closing, a feed seeing a finished task, a digest run), so it survives a crash; the
outbox (``bot.followups.outbox``) then posts it exactly once, recording each attempt here.
Unique keys (per subscriber and kind, per feed and task) keep two racing writers from queueing
one alert twice.

What a delivery says travels in its JSON ``payload`` as a typed model this module owns: a
``TaskSnapshot`` (the task as last seen, and the request id of the poll that saw it) for the
task kinds, a ``DigestReport`` for a digest run. Callers get frozen records with the payload
already parsed, never the JSON.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, Protocol, TypedDict, TypeVar, Unpack

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base, Json, Store, one_of, record_of, utcnow
from bot.logs import RedactingFilter
from bot.metastudio.models import Task

__all__ = [
    "STEP",
    "DeliveryKind",
    "DeliveryRecord",
    "DeliveryRow",
    "DeliveryStatus",
    "DeliveryStore",
    "DigestReport",
    "DigestTask",
    "Recipient",
    "StepOrChannel",
    "TaskSnapshot",
    "queue",
    "queued_delivery",
    "read_payload",
]

DeliveryKind = Literal["finished", "expired", "not_found", "feed", "digest"]
DeliveryStatus = Literal["pending", "sending", "sent", "failed"]
STEP: Final = "step"
"""``target`` of a subscriber or delivery that is a Workflow Builder step: its ``channel_id``
is the function execution id. NULL is a channel."""

ERROR_MAX_CHARS = 500
M = TypeVar("M", bound=BaseModel)
_redactor = RedactingFilter()


class TaskSnapshot(BaseModel):
    """The task a watch or feed last saw, frozen into the deliveries it queues."""

    model_config = ConfigDict(frozen=True)

    task: Task
    request_id: str | None = None
    """The request id of the poll that saw it, so the final card shows it like every other card."""


class DigestTask(BaseModel):
    """One task a digest names: among the slowest, or one that had failures."""

    task_id: str
    task_name: str | None = None
    resource: str | None = None
    seconds: float | None = None
    """From ``begin_time`` to ``end_time``; None when the API gave neither."""
    total_count: int = 0
    failure_count: int = 0


class DigestReport(BaseModel):
    """What one digest run says, frozen when the run is recorded: the delivery's payload."""

    since: datetime
    until: datetime
    late: bool = False
    """Posted after a time when every replica was down, not at its hour."""
    finished: int = 0
    with_failures: int = 0
    items: int = 0
    """Items (Q&A pairs, documents…) the finished tasks processed."""
    succeeded: int = 0
    slowest: list[DigestTask] = Field(default_factory=list)
    failed: list[DigestTask] = Field(default_factory=list)
    """Tasks with failures, most failures first; at most ``MAX_FAILED_KEPT`` of them."""


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        one_of("kind", DeliveryKind),
        one_of("status", DeliveryStatus),
        UniqueConstraint("key", name="uq_deliveries_key"),
        UniqueConstraint("subscriber_id", "kind", name="uq_deliveries_subscriber_kind"),
        UniqueConstraint("feed_id", "task_id", name="uq_deliveries_feed_task"),
        Index("ix_deliveries_status", "status", "created_at"),
        Index("ix_deliveries_team", "team_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[DeliveryKind] = mapped_column(String(16))
    task_id: Mapped[str] = mapped_column(String(64))
    watch_id: Mapped[int | None] = mapped_column(ForeignKey("watches.id"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"))
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id"))
    # The digest whose run this is; None once the digest is turned off. Not a foreign key: the
    # run keeps its figures whatever happens to the digest.
    digest_id: Mapped[int | None] = mapped_column(Integer, default=None)
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    # A TaskSnapshot, or a DigestReport for kind 'digest' (see the module docstring).
    payload: Mapped[dict[str, Any] | None] = mapped_column(Json)
    status: Mapped[DeliveryStatus] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX_CHARS))
    # Copied from the subscriber or feed when the delivery is queued, so a restart cannot change it.
    locale: Mapped[str | None] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(16))  # STEP, or NULL for a channel


class StepOrChannel:
    """What a record addressed to a channel or to a Workflow Builder step (``target`` STEP) has."""

    __slots__ = ()
    target: str | None

    @property
    def is_step(self) -> bool:
        return self.target == STEP


class Recipient(Protocol):
    """Where a delivery goes and in which language: a subscriber row, a feed or a digest."""

    @property
    def team_id(self) -> str: ...
    @property
    def channel_id(self) -> str: ...
    @property
    def locale(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DeliveryRecord(StepOrChannel):
    id: int
    key: str
    team_id: str
    channel_id: str
    user_id: str | None
    kind: DeliveryKind
    task_id: str
    watch_id: int | None
    subscriber_id: int | None
    feed_id: int | None
    thread_ts: str | None
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    attempt_at: datetime | None
    sent_at: datetime | None
    slack_ts: str | None
    error: str | None
    locale: str | None = None
    target: str | None = None
    digest_id: int | None = None
    snapshot: TaskSnapshot | None = None
    """The task as last seen (every kind but ``digest``); None when none was, or it no longer parses."""
    report: DigestReport | None = None
    """A ``digest`` run's figures; None for the other kinds, or when it no longer parses."""

    @property
    def task(self) -> Task | None:
        return None if self.snapshot is None else self.snapshot.task


def read_payload(model: type[M], payload: dict[str, Any] | None) -> M | None:
    """``payload`` read as ``model``; None when there is none or it no longer parses."""
    if payload is None:
        return None
    try:
        return model.model_validate(payload)
    except ValidationError:
        return None


def delivery_record(row: DeliveryRow) -> DeliveryRecord:
    """The frozen record of a delivery row, its payload parsed once into its typed model."""
    digest = row.kind == "digest"
    return record_of(
        DeliveryRecord,
        row,
        snapshot=None if digest else read_payload(TaskSnapshot, row.payload),
        report=read_payload(DigestReport, row.payload) if digest else None,
    )


class DeliveryAbout(TypedDict, total=False):
    """What a queued delivery is about, besides whom it goes to; unset is NULL (``task_id``: "")."""

    task_id: str
    user_id: str | None  # whom it mentions
    thread_ts: str | None  # the thread it answers in
    target: str | None
    watch_id: int | None
    subscriber_id: int | None
    feed_id: int | None  # with ``task_id``, unique: a feed tells of a task once
    digest_id: int | None
    created_at: datetime  # now, unless given


def queued_delivery(
    to: Recipient,
    kind: DeliveryKind,
    payload: TaskSnapshot | DigestReport | None,
    **about: Unpack[DeliveryAbout],
) -> DeliveryRow:
    """A delivery row just queued for ``to``: a fresh key, pending, never attempted."""
    return DeliveryRow(
        key=uuid.uuid4().hex,
        team_id=to.team_id,
        channel_id=to.channel_id,
        locale=to.locale,
        kind=kind,
        payload=None if payload is None else payload.model_dump(mode="json"),
        status="pending",
        attempts=0,
        **{"task_id": "", "created_at": utcnow(), **about},
    )


async def queue(session: AsyncSession, rows: Sequence[DeliveryRow]) -> list[DeliveryRecord]:
    """Insert just-queued deliveries in the caller's transaction; their records, ids assigned."""
    session.add_all(rows)
    await session.flush()
    return [delivery_record(row) for row in rows]


class DeliveryStore(Store):
    """The outbox's side of the deliveries: what is owed, and each attempt. Safe to share.

    Deliveries are queued by the stores that decide them, inside their own transactions
    (``FollowUpStore.close_watch``, ``FeedStore.record_feed_delivery``, ``DigestStore.record_run``).
    """

    async def pending_deliveries(self, team_ids: Collection[str] | None = None) -> list[DeliveryRecord]:
        """Deliveries still owed, oldest first; ``sending`` ones may or may not have reached Slack."""
        teams = [] if team_ids is None else [DeliveryRow.team_id.in_(team_ids)]
        async with self._read() as session:
            rows = await session.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.status.in_(("pending", "sending")), *teams)
                .order_by(DeliveryRow.created_at, DeliveryRow.id)
            )
            return [delivery_record(row) for row in rows]

    async def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        async with self._read() as session:
            row = await session.get(DeliveryRow, delivery_id)
            return None if row is None else delivery_record(row)

    async def mark_sending(self, delivery_id: int) -> DeliveryRecord | None:
        """Record an attempt before posting. None when the delivery is sent, failed or gone."""
        async with self._write() as session:
            row = await session.scalar(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id, DeliveryRow.status.in_(("pending", "sending")))
                .values(status="sending", attempts=DeliveryRow.attempts + 1, attempt_at=utcnow())
                .returning(DeliveryRow)
                .execution_options(synchronize_session=False, populate_existing=True)
            )
            return None if row is None else delivery_record(row)

    async def mark_sent(self, delivery_id: int, slack_ts: str | None) -> None:
        async with self._write() as session:
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id)
                .values(status="sent", sent_at=utcnow(), slack_ts=slack_ts)
                .execution_options(synchronize_session=False)
            )

    async def mark_failed(self, delivery_id: int, error: str, *, retry: bool = False) -> None:
        """Give up on a delivery (``retry=False``) or put it back to ``pending`` with the error noted.

        ``error`` is truncated and passed through the log redactor: it must still not carry secrets.
        """
        async with self._write() as session:
            await session.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id, DeliveryRow.status != "sent")
                .values(
                    status="pending" if retry else "failed", error=_redactor.redact(error)[:ERROR_MAX_CHARS]
                )
                .execution_options(synchronize_session=False)
            )
