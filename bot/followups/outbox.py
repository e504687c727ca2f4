"""The exactly-once outbox: every owed alert reaches its channel once, even across ``kill -9``.

Protocol
--------
1. Whoever decides a channel must be told (a watch closing, a feed seeing a finished task)
   writes one ``pending`` delivery row in the same transaction as that decision (unique per
   subscriber and kind, or per feed and task), then calls ``Outbox.start``.
2. Before posting, ``mark_sending`` commits ``status='sending', attempts+1, attempt_at=now``.
3. The message is posted tagged with the delivery's key (Slack message metadata).
4. ``mark_sent`` commits the Slack ``ts``.

A crash between 2 and 4 leaves the delivery ``sending`` (a failed attempt puts it back to
``pending`` with ``attempts >= 1``): the post may or may not have reached Slack. So any
delivery with ``attempts >= 1`` is resumed by FIRST looking for its key, in the card's thread
and in the channel, from the previous ``attempt_at`` minus ``LOOKBACK_SECONDS``. Found:
``mark_sent`` with that ``ts``, nothing is posted. Not found: post as in 2-4. If the look-up
fails transiently the delivery waits and tries again, because posting blind could duplicate;
only when the look-up cannot work at all (``LookupImpossible``) is the message posted anyway,
with a warning in the log.

Where the bot cannot post any more (``CannotPost``) the subscriber or feed is closed, the
delivery fails and the requester is told by DM. Any other failure puts the delivery back to
``pending`` and retries it later with backoff: it is never dropped. Slack is reached only
through the ``Poster`` interface.

A Workflow Builder step (``DeliveryRecord.is_step``) is one more kind of target: step 3 is
``functions.completeSuccess`` (or ``completeError``) for its function execution, with the
workspace's bot token. Slack completes an execution once: a second call answers
``function_execution_not_found``, which after an attempt that may have landed means it did, so
the delivery is recorded sent and nothing is called again (``StepGone``). A step whose workflow
was cancelled answers ``execution_not_in_running_state``: the delivery fails, nobody is told.

Several replicas: only the replica that owns the delivery's workspace (``Jobs.owns``,
``bot.followups.shards``) attempts it. A retry job that runs on a replica that lost the
shard does nothing (the shard's jobs are dropped when it is lost, and the check is made
again right before each attempt); the owner resumes the delivery from the table when it gains
the shard, or at its next heartbeat. The protocol above still guards the moment two replicas
both believe they own a shard; the check only keeps a non-owner from trying at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from bot import messages
from bot.aio.backoff import backoff_delay
from bot.aio.fairness import FairSlots
from bot.config import Settings
from bot.db.deliveries import DeliveryRecord, DeliveryStore
from bot.followups.polling import PollPolicy
from bot.followups.shared import Backlog, FollowUpStats, Jobs
from bot.metastudio.models import Task
from bot.slack import alerts, steps
from bot.slack.cards import CardView
from bot.slack.digests import digest_message
from bot.slack.poster import CannotPost, LookupFailed, LookupImpossible, Post, Poster, PosterError, StepGone

__all__ = ["DELIVERY_CONCURRENCY", "LOOKBACK_SECONDS", "Closers", "Outbox"]

log = logging.getLogger("taskbot.followups")

LOOKBACK_SECONDS: Final = 60.0
DELIVERY_CONCURRENCY: Final = 8
# Multi-workspace mode: alerts of all workspaces together, and of one workspace, so a workspace
# whose Slack calls hang (or that owes 1,000 alerts) delays only its own.
DELIVERY_TOTAL_MULTI: Final = 32
DELIVERY_PER_TEAM_MULTI: Final = 4


@dataclass(frozen=True, slots=True)
class Closers:
    """What the outbox closes where the bot can no longer post, so nothing is owed there again."""

    subscriber: Callable[[int, str], Awaitable[None]]
    """``(subscriber_id, reason)``: stop telling that channel; the watch goes with its last one."""
    feed: Callable[[str, int, str], Awaitable[str | None]]
    """``(team_id, feed_id, channel_id)`` -> the feed's subscriber to tell, after closing the feed."""
    digest: Callable[[int], Awaitable[str | None]]
    """``digest_id`` -> who set the digest, to tell, after removing it."""


@dataclass(eq=False, repr=False, kw_only=True)
class Outbox:
    deliveries: DeliveryStore
    poster: Poster
    """Every Slack call of the outbox."""
    close: Closers
    settings: Settings
    policy: PollPolicy
    """The retries' backoff (``base`` to ``ceiling``)."""
    jobs: Jobs
    jitter: Callable[[float], float]
    backlog: Backlog
    """Each delivery in flight holds an item, so polls wait while too many are."""
    yield_to_requests: Callable[[], Awaitable[None]]
    """Each attempt waits here so pending Slack acks go first."""
    stats: FollowUpStats
    active: bool = field(init=False, default=False)
    """Set while the follow-ups run: deliveries start only then."""
    _delivering: set[int] = field(init=False, default_factory=set)
    _failures: dict[int, int] = field(init=False, default_factory=dict)
    _retry_team: dict[int, str] = field(init=False, default_factory=dict)
    """Delivery id -> workspace, for each retry job armed, so a lost shard drops its retries."""
    _send_slots: FairSlots = field(init=False)

    def __post_init__(self) -> None:
        # A finished task watched by 1,000 channels must not open 1,000 Slack calls at once.
        self._send_slots = (
            FairSlots(total=DELIVERY_TOTAL_MULTI, per_team=DELIVERY_PER_TEAM_MULTI)
            if self.settings.multi_workspace
            else FairSlots(total=DELIVERY_CONCURRENCY, per_team=DELIVERY_CONCURRENCY)
        )

    def start(self, delivery: DeliveryRecord) -> None:
        """Deliver in the background (at most once at a time per delivery)."""
        self._start(delivery.id, delivery.team_id)

    def _start(self, delivery_id: int, team_id: str) -> None:
        if delivery_id in self._delivering or not self.active:
            return
        self._delivering.add(delivery_id)
        task = self.jobs.scheduler.spawn_work(self._deliver(delivery_id, team_id), f"delivery:{delivery_id}")
        task.add_done_callback(lambda _: self._delivering.discard(delivery_id))

    async def retry(self, key: str) -> None:
        """The ``delivery:<id>`` job, armed after a failed attempt: the next attempt, in the background."""
        delivery_id = int(key)
        team_id = self._retry_team.get(delivery_id)
        if team_id is not None:
            self._start(delivery_id, team_id)
            return
        record = await self.deliveries.get_delivery(delivery_id)
        if record is not None:
            self.start(record)

    def resume(self, deliveries: Iterable[DeliveryRecord]) -> None:
        """Start owed deliveries unless already in flight or waiting for their retry job."""
        for delivery in deliveries:
            if not self.jobs.scheduler.busy(f"delivery:{delivery.id}"):
                self.start(delivery)

    def forget_team(self, team_id: str) -> None:
        """Drop the retry jobs of a workspace this replica no longer owns; its owner resumes them."""
        for delivery_id in [d for d, team in self._retry_team.items() if team == team_id]:
            self.jobs.scheduler.cancel(f"delivery:{delivery_id}")
            self._retry_team.pop(delivery_id, None)
            self._failures.pop(delivery_id, None)

    async def _deliver(self, delivery_id: int, team_id: str) -> None:
        self._retry_team.pop(delivery_id, None)
        with self.backlog.item():
            try:
                async with self._send_slots.slot(team_id):
                    await self.yield_to_requests()
                    if not self.jobs.owns(team_id):
                        # Another replica owns the workspace now: its owner resumes the delivery
                        # from the table; this replica does not even look.
                        self._failures.pop(delivery_id, None)
                        return
                    retry = await self.deliver_once(delivery_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery %d failed; it stays queued", delivery_id)
                retry = True
        if retry:
            failures = self._failures.get(delivery_id, 0) + 1
            self._failures[delivery_id] = failures
            delay = backoff_delay(retries=failures - 1, first=self.policy.base, ceiling=self.policy.ceiling)
            self._retry_team[delivery_id] = team_id
            self.jobs.scheduler.once(f"delivery:{delivery_id}", self.jitter(delay))
        else:
            self._failures.pop(delivery_id, None)

    async def deliver_once(self, delivery_id: int) -> bool:
        """One attempt. True when it must be tried again later.

        The row is read once, here, after the slot was granted: what an earlier attempt (or
        another replica) recorded meanwhile decides whether to look before posting.
        """
        record = await self.deliveries.get_delivery(delivery_id)
        if record is None or record.status not in ("pending", "sending"):
            return False
        extra = {"team": record.team_id, "task_id": record.task_id, "channel": record.channel_id}
        if record.is_step:
            return await self._complete_step(record, extra)
        message, thread_ts, broadcast = self._compose(record)
        if record.attempts >= 1:
            # A previous attempt may have posted before dying: look before posting again.
            previous = record.attempt_at or record.created_at
            try:
                found = await self.poster.find(
                    record.team_id,
                    record.channel_id,
                    record.key,
                    thread_ts=record.thread_ts,
                    oldest=previous.timestamp() - LOOKBACK_SECONDS,
                )
            except CannotPost as exc:
                await self._cannot_post(record, exc.error)
                return False
            except LookupFailed as exc:
                log.warning("delivery look-up failed (%s); will retry", exc.error, extra=extra)
                return True
            except LookupImpossible as exc:
                log.warning("cannot look up earlier attempts (%s); posting anyway", exc.error, extra=extra)
                found = None
            if found is not None:
                await self._sent(record, found, "delivery %s was already posted; not posting again", extra)
                await self._final_card(record)
                return False
        claimed = await self.deliveries.mark_sending(record.id)
        if claimed is None:
            return False
        try:
            ts = await self.poster.post(
                Post(
                    record.team_id,
                    record.channel_id,
                    message,
                    key=record.key,
                    thread_ts=thread_ts,
                    broadcast=broadcast,
                )
            )
        except CannotPost as exc:
            await self._cannot_post(record, exc.error)
            return False
        except Exception as exc:
            # The post may or may not have landed; the next attempt looks before posting.
            return await self._retry_later(record, exc, "delivery post failed (%s); will retry", extra)
        await self._sent(record, ts, "delivered %s", extra)
        # After the alert, not before: a throttled chat.update must not delay it. A crash right
        # here leaves the card one redraw short, which is cosmetic; the alert is what counts.
        await self._final_card(record)
        return False

    async def _complete_step(self, record: DeliveryRecord, extra: dict[str, str]) -> bool:
        """Steps 2-4 for a workflow step: claim, complete (or fail) the execution, record it."""
        claimed = await self.deliveries.mark_sending(record.id)
        if claimed is None:
            return False
        locale = messages.resolve(record.locale)
        try:
            if record.kind == "finished":
                outputs = steps.outputs(self._task(record), self.settings.finished_codes)
                await self.poster.complete_step(record.team_id, record.channel_id, outputs)
            elif record.kind == "expired":
                sentence = steps.expired_sentence(record.task_id, locale)
                await self.poster.fail_step(record.team_id, record.channel_id, sentence)
            else:
                sentence = steps.not_found_sentence(record.task_id, locale)
                await self.poster.fail_step(record.team_id, record.channel_id, sentence)
        except StepGone as exc:
            if exc.done and claimed.attempts > 1:
                await self.deliveries.mark_sent(record.id, None)
                log.info("step %s was already completed; not completing again", record.kind, extra=extra)
            else:
                await self.deliveries.mark_failed(record.id, f"slack: {exc.error}", retry=False)
                log.warning("step cannot be completed (%s)", exc.error, extra=extra)
            return False
        except Exception as exc:
            return await self._retry_later(record, exc, "step completion failed (%s); will retry", extra)
        await self._sent(record, None, "step completed: %s", extra)
        return False

    async def _sent(self, record: DeliveryRecord, ts: str | None, event: str, extra: dict[str, str]) -> None:
        """Step 4: record the delivery sent (``ts``: its message; None for a step) and count it;
        ``event`` is logged with the delivery's kind."""
        await self.deliveries.mark_sent(record.id, ts)
        self.stats.delivered += 1
        log.info(event, record.kind, extra=extra)

    async def _retry_later(
        self, record: DeliveryRecord, exc: Exception, event: str, extra: dict[str, str]
    ) -> bool:
        """An attempt failed in a way that may still have reached Slack: the delivery goes back to
        ``pending`` with the reason noted and is retried with backoff; ``event`` is logged with the
        reason. True, as ``deliver_once`` returns it."""
        reason = f"slack: {exc.error}" if isinstance(exc, PosterError) else type(exc).__name__
        await self.deliveries.mark_failed(record.id, reason, retry=True)
        log.warning(event, reason, extra=extra)
        return True

    def _compose(self, record: DeliveryRecord) -> tuple[alerts.Message, str | None, bool]:
        """The message, the thread to post it in, and whether to also show it in the channel."""
        mode = self.settings.alert_mode
        codes = self.settings.finished_codes
        # The language the watch (or feed) started with; a row without one is in English (resolve).
        locale = messages.resolve(record.locale)
        if record.kind == "digest":
            if record.report is None:
                raise ValueError(f"delivery {record.id}: its payload is not a digest report")
            return digest_message(record.report, locale), None, False
        if record.kind == "feed":
            message = alerts.completion_alert(
                self._task(record),
                user_id=None,
                finished_codes=codes,
                feed=True,
                locale=locale,
            )
            return message, None, False
        if record.kind == "finished":
            message = alerts.completion_alert(
                self._task(record),
                user_id=record.user_id,
                finished_codes=codes,
                locale=locale,
            )
            if record.thread_ts and mode != "channel":
                return message, record.thread_ts, mode == "thread_and_channel"
            return message, None, False
        if record.kind == "expired":
            message = alerts.expired_notice(
                record.task_id,
                user_id=record.user_id,
                hours=self.settings.watch_max_hours,
                last_seen=record.task,
                locale=locale,
            )
        else:
            message = alerts.not_found_notice(record.task_id, user_id=record.user_id, locale=locale)
        # A notice that ends a watch belongs with the card; it is not broadcast.
        if record.thread_ts and mode != "channel":
            return message, record.thread_ts, False
        return message, None, False

    async def _final_card(self, record: DeliveryRecord) -> None:
        """Redraw the watched card in its final state (idempotent, best effort)."""
        snapshot = record.snapshot
        if record.kind != "finished" or snapshot is None or not record.thread_ts:
            return
        message = alerts.watched_card(
            snapshot.task,
            CardView(
                request_id=snapshot.request_id,
                finished_codes=self.settings.finished_codes,
                refreshed_at=datetime.fromtimestamp(self.jobs.clock(), UTC),
                locale=messages.resolve(record.locale),
            ),
        )
        try:
            await self.poster.update(record.team_id, record.channel_id, record.thread_ts, message)
            self.stats.card_updates += 1
        except PosterError as exc:
            log.info(
                "final card update failed: %s",
                exc.error,
                extra={"team": record.team_id, "task_id": record.task_id, "channel": record.channel_id},
            )

    @staticmethod
    def _task(record: DeliveryRecord) -> Task:
        """The task the delivery was queued with, or one known only by its id."""
        return record.task or Task(task_id=record.task_id)

    async def _cannot_post(self, record: DeliveryRecord, error: str) -> None:
        """The channel is gone for us: stop following there, fail the delivery, tell the requester."""
        extra = {"team": record.team_id, "task_id": record.task_id, "channel": record.channel_id}
        # The requester chose the watch's language (or the workspace did for them).
        locale = messages.resolve(record.locale)
        log.warning("cannot post in channel (%s); closing its follow-up", error, extra=extra)
        await self.deliveries.mark_failed(record.id, f"slack: {error}", retry=False)
        recipient = record.user_id
        if record.subscriber_id is not None:
            await self.close.subscriber(record.subscriber_id, error)
            sentence = alerts.cannot_post_dm(
                channel_id=record.channel_id, task_id=record.task_id, error=error, locale=locale
            )
        else:
            if record.feed_id is not None:
                recipient = (
                    await self.close.feed(record.team_id, record.feed_id, record.channel_id) or recipient
                )
            if record.digest_id is not None:
                recipient = await self.close.digest(record.digest_id) or recipient
            sentence = alerts.cannot_post_dm(
                channel_id=record.channel_id, task_id=None, error=error, locale=locale
            )
        if not recipient:
            return
        try:
            await self.poster.tell(record.team_id, recipient, sentence)
        except PosterError as exc:
            log.warning("could not DM the requester: %s", exc.error, extra=extra)
