"""The watch state machine: poll a watched task until it finishes, expires or vanishes, and
keep its live cards current.

A **watch** is one row per (team, task), shared by every channel that watches the task (its
**subscribers**). One poll per watch per interval, however many channels: 1,000 channels on
one task cost what one does. The interval adapts (``bot.followups.polling``); every MetaStudio
call first takes a ``POLL`` token from the project's rate limiter.

A poll that sees the task finished calls ``storage.close_watch``: in ONE transaction the
watch moves from ``active`` to ``finished`` and one ``pending`` delivery row is written per
active subscriber, which the outbox then delivers exactly once. A second poller, a racing
expiry or a second process finds the watch no longer active and queues nothing. Between
state transitions nothing is written: the last counts, the card throttle and the not-found
streak stay in memory and are rebuilt (empty) after a restart. Each card's language is the
subscriber row's ``locale``, written once when the watch starts, so redraws never change it.

Stalls: each poll also folds the counts into the watch's ``Progress`` with the configured
``stall_minutes``; ``observe`` reports ``STALLED`` once per stall, and only then one notice is
posted per subscriber (in the card's thread, or in the channel without a card). It is best
effort, not an exactly-once delivery: a failed post is logged, never retried per poll. The
card shows the stall until the task moves, then notes that it ended; nothing more is posted.
After a restart the progress starts empty, so a stall still in progress is noticed once more.

Workflow Builder steps (``wait_for_task``) are subscribers too: their "channel" is the function
execution id, they have no card and no stall notice, and each has its own deadline. The watch's
``expires_at`` is the channels' time; at any deadline ``storage.expire_subscribers`` ends exactly
the subscribers whose time is up, and the watch closes only with its last subscriber.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NotRequired, TypedDict, Unpack

from bot import messages
from bot.config import Settings
from bot.db.deliveries import TaskSnapshot
from bot.db.followups import (
    ActiveWatch,
    CloseStatus,
    FollowUpStore,
    SubscriberRecord,
    WatchRecord,
    WatchResult,
)
from bot.followups.changes import Changes, WatchPlan
from bot.followups.polling import Cadence, PollPolicy, after_error, after_progress
from bot.followups.shared import Deliver, Jobs, PollCalls
from bot.messages import DEFAULT_LOCALE
from bot.metastudio.client import Fetched
from bot.metastudio.errors import InvalidTaskId, MetaStudioError, TaskNotFound
from bot.metastudio.models import Task
from bot.metastudio.progress import Event, Progress, Reading, observe
from bot.metrics import POLLS, REPLICA
from bot.slack import alerts
from bot.slack.cards import CardView
from bot.slack.poster import CardGone, Post, Poster, PosterError

__all__ = ["WatchRequest", "Watches"]

log = logging.getLogger("taskbot.followups")

NOT_FOUND_LIMIT: Final = 3
CARD_SYNC_FACTOR: Final = 6
STALL_KEY_PREFIX: Final = "stall:"
"""Message key prefix of stall notices, which are not deliveries."""


class WatchRequest(TypedDict):
    """Which channel asks to hear about which task: the keywords of ``FollowUps.watch``."""

    team_id: str
    task_id: str
    channel_id: str
    user_id: str
    message_ts: NotRequired[str | None]
    """The channel's card of the task, kept live; None when there is none (yet)."""
    locale: NotRequired[str | None]
    """The channel's language, kept by the card and its alert for the watch's whole life."""
    step_expires_at: NotRequired[datetime | None]
    """Set for a Workflow Builder step: ``channel_id`` is its function execution id, and the
    step fails at this time on its own, whatever the watch's other subscribers wait for."""


@dataclass
class _Card:
    """One subscriber's live card and when it was last redrawn."""

    channel_id: str
    ts: str | None
    locale: str = DEFAULT_LOCALE
    drawn: tuple[Any, ...] | None = None
    updated_at: float = -math.inf
    gone: bool = False


@dataclass
class _Watch:
    id: int
    team_id: str
    task_id: str
    expires_at: float
    cadence: Cadence
    not_found: int = 0
    last_task: Task | None = None
    request_id: str | None = None
    cards: dict[int, _Card] = field(default_factory=dict)
    cards_synced_at: float = -math.inf
    synced_counts: tuple[Any, ...] | None = None
    drawing: bool = False
    closed: bool = False
    progress: Progress = field(default_factory=Progress)
    """Counts folded with the stall threshold (the cadence's own progress never stalls)."""
    resumed_after: float | None = None
    """Seconds the last stall lasted, once it has ended: the card notes it."""
    steps: dict[int, float] = field(default_factory=dict)
    """Workflow steps waiting on the task: subscriber id -> its own deadline (epoch seconds).
    Steps have no card; ``expires_at`` is the channels' deadline (inf once they all expired)."""

    @property
    def next_deadline(self) -> float:
        return min(self.expires_at, min(self.steps.values(), default=math.inf))

    listed: bool = False
    """The workspace's last list sweep showed the task (``bot.followups.changes``)."""
    next_poll_at: float = math.inf
    """When the next poll is planned, on the watches' ``clock``."""


def _counts(state: _Watch, task: Task) -> tuple[Any, ...]:
    """What a card shows that is worth a redraw: the counts, and a stall starting or ending."""
    stall = (state.progress.stalled, state.resumed_after is not None)
    return (task.success_count, task.failure_count, task.total_count, task.task_status, *stall)


@dataclass(eq=False, repr=False, kw_only=True)
class Watches:
    storage: FollowUpStore
    calls: PollCalls
    """How polls reach MetaStudio; closes hold its backlog, and its counters count polls and redraws."""
    poster: Poster
    """Live cards and stall notices."""
    deliver: Deliver
    settings: Settings
    policy: PollPolicy
    jobs: Jobs
    jitter: Callable[[float], float]
    on_running: Callable[[str, int], None] = lambda _team_id, _count: None
    """Hears ``(team_id, count)``, a workspace's number of running watches, each time it changes
    here (the list sweep's job follows it, ``bot.followups.changes``)."""
    _card_sync_seconds: float = field(init=False)
    """How often a moving task re-reads its subscribers, to find cards set outside watch()."""
    _watches: dict[int, _Watch] = field(init=False, default_factory=dict)
    _by_task: dict[tuple[str, str], int] = field(init=False, default_factory=dict)
    _by_team: dict[str, set[int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._card_sync_seconds = max(CARD_SYNC_FACTOR * self.settings.card_update_seconds, self.policy.base)

    def __len__(self) -> int:
        return len(self._watches)

    def clear(self) -> None:
        self._watches.clear()
        self._by_task.clear()
        self._by_team.clear()

    async def rearm(self, rng_uniform: Callable[[float, float], float]) -> None:
        """Track every active watch again, first polls spread over one interval."""
        watches = await self.storage.active_watches()
        first_polls = []
        for watch in watches:
            state = self._track(watch, watch.subscribers, synced=True)
            first_polls.append((f"watch:{state.id}", rng_uniform(0, self.policy.base)))
        await self.jobs.scheduler.arm(first_polls)

    def sync_team(
        self, team_id: str, watches: Iterable[ActiveWatch], first_delay: Callable[[], float]
    ) -> list[tuple[str, float]]:
        """Make this replica's watches of one owned workspace match its active ones; returns the
        jobs to arm, ``(job id, delay)``, one per watch new here."""
        active = {watch.id: watch for watch in watches}
        first_polls = []
        for state in [w for w in self._watches.values() if w.team_id == team_id and w.id not in active]:
            self._forget(state)
        for watch in active.values():
            known = self._watches.get(watch.id)
            if known is None:
                self._track(watch, watch.subscribers, synced=True)
                first_polls.append((f"watch:{watch.id}", first_delay()))
            else:
                for subscriber in watch.subscribers:
                    self._add_card(known, subscriber)
        return first_polls

    async def watch(self, **request: Unpack[WatchRequest]) -> WatchResult:
        now = datetime.fromtimestamp(self.jobs.clock(), UTC)
        expires_at = now + timedelta(hours=self.settings.watch_max_hours)
        result = await self.storage.watch(**request, expires_at=expires_at)
        message_ts = request.get("message_ts")
        subscriber = result.subscriber
        if not result.created and message_ts and subscriber.message_ts != message_ts:
            await self.storage.set_card_ts(subscriber.id, message_ts)
            subscriber = replace(subscriber, message_ts=message_ts)
            result = replace(result, subscriber=subscriber)
        state = self._watches.get(result.watch.id)
        if state is None and not self.jobs.owns(request["team_id"]):
            # Another replica owns the workspace: it starts polling at its next heartbeat.
            return result
        if state is None:
            state = self._track(result.watch, [subscriber])
            self.jobs.scheduler.once(f"watch:{state.id}", self.jitter(self.policy.base))
        else:
            if not subscriber.is_step:
                # A channel may have renewed a watch that only steps kept alive (storage.watch).
                state.expires_at = result.watch.expires_at.timestamp()
            self._add_card(state, subscriber)
        return result

    async def set_card_ts(self, subscriber_id: int, message_ts: str) -> None:
        await self.storage.set_card_ts(subscriber_id, message_ts)
        for state in self._watches.values():
            card = state.cards.get(subscriber_id)
            if card is not None:
                card.ts, card.drawn, card.gone = message_ts, None, False

    async def unwatch(self, *, team_id: str, task_id: str, channel_id: str) -> bool:
        removed = await self.storage.unwatch(team_id=team_id, task_id=task_id, channel_id=channel_id)
        watch_id = self._by_task.get((team_id, task_id))
        state = self._watches.get(watch_id) if watch_id is not None else None
        if removed and state is not None:
            for subscriber_id, card in list(state.cards.items()):
                if card.channel_id == channel_id:
                    del state.cards[subscriber_id]
            record = await self.storage.get_watch(state.id)
            if record is None or record.status != "active":
                # That was the last channel: the watch is cancelled and its job goes too.
                self._forget(state)
        return removed

    def forget_team(self, team_id: str) -> None:
        for state in [w for w in self._watches.values() if w.team_id == team_id]:
            self._forget(state)

    # -- the list sweep's verdicts (bot.followups.changes) ----------------------------------------

    def plans(self, team_id: str) -> list[WatchPlan]:
        """The workspace's running watches, as the change detector sees them."""
        states = (self._watches[watch_id] for watch_id in self._by_team.get(team_id, ()))
        return [
            WatchPlan(state.id, state.task_id, state.cadence, state.next_poll_at, state.listed)
            for state in states
            if not state.closed
        ]

    def apply_changes(self, changes: Changes) -> None:
        """Poll now the watches a row calls for, fold the other rows in, pull the unlisted ones in."""
        scheduler = self.jobs.scheduler
        for watch_id in changes.poll_now:
            state = self._watches.get(watch_id)
            if state is not None and not state.closed:
                state.listed = True
                state.next_poll_at = changes.now
                scheduler.once(f"watch:{watch_id}", 0.0)
        for watch_id, row in changes.fold:
            state = self._watches.get(watch_id)
            if state is None or state.closed:
                continue
            state.listed = True
            begin = row.begin_time / 1000 if row.begin_time else None
            state.cadence, delay = after_progress(
                state.cadence,
                self.policy,
                now=changes.now,
                processed=row.processed_count,
                total=row.total_count,
                begin=begin,
                listed=True,
            )
            self._schedule(state, delay)
            # The row is as fresh as a poll: it carries the stall watch and the live cards too,
            # which would otherwise wait for a poll the rows keep putting off.
            state.last_task = row
            self._observe(state, row, changes.now, begin)
            self._maybe_draw_cards(state, row)
        latest = changes.now + self.policy.ceiling_for(listed=False)
        for watch_id in changes.unlisted:
            state = self._watches.get(watch_id)
            if state is None or state.closed or not state.listed:
                continue
            state.listed = False
            if state.next_poll_at > latest:
                self._schedule(state, self.policy.ceiling_for(listed=False))

    # -- state ----------------------------------------------------------------------------------

    def _track(
        self, watch: WatchRecord, subscribers: Iterable[SubscriberRecord], *, synced: bool = False
    ) -> _Watch:
        """``synced``: ``subscribers`` are all the watch's active ones, just read from the table, so
        the first card sync waits a full period (else a restart would read every watch's
        subscribers once more at its first moving poll: 20% of the CPU of the first minute's polls)."""
        state = _Watch(
            id=watch.id,
            team_id=watch.team_id,
            task_id=watch.task_id,
            expires_at=watch.expires_at.timestamp(),
            cadence=Cadence.start(self.policy),
            cards_synced_at=self.jobs.clock() if synced else -math.inf,
        )
        for subscriber in subscribers:
            self._add_card(state, subscriber)
        self._watches[state.id] = state
        self._by_task[(state.team_id, state.task_id)] = state.id
        team = self._by_team.setdefault(state.team_id, set())
        if state.id not in team:
            team.add(state.id)
            self.on_running(state.team_id, len(team))
        return state

    @staticmethod
    def _add_card(state: _Watch, subscriber: SubscriberRecord) -> None:
        if subscriber.is_step:
            assert subscriber.expires_at is not None
            state.steps[subscriber.id] = subscriber.expires_at.timestamp()
            return
        card = state.cards.get(subscriber.id)
        if card is None:
            state.cards[subscriber.id] = _Card(
                subscriber.channel_id, subscriber.message_ts, messages.resolve(subscriber.locale)
            )
        elif subscriber.message_ts and card.ts != subscriber.message_ts:
            card.ts, card.drawn, card.gone = subscriber.message_ts, None, False

    def _forget(self, state: _Watch) -> None:
        state.closed = True
        self._watches.pop(state.id, None)
        if self._by_task.get((state.team_id, state.task_id)) == state.id:
            del self._by_task[(state.team_id, state.task_id)]
        self.jobs.scheduler.cancel(f"watch:{state.id}")
        team = self._by_team.get(state.team_id)
        if team is not None and state.id in team:
            team.discard(state.id)
            if not team:
                del self._by_team[state.team_id]
            self.on_running(state.team_id, len(team))

    @staticmethod
    def _extra(state: _Watch, **more: Any) -> dict[str, Any]:
        return {"team": state.team_id, "task_id": state.task_id, "request_id": state.request_id, **more}

    # -- polls ----------------------------------------------------------------------------------

    async def poll(self, key: str) -> float | None:
        """The ``watch:<id>`` job: one poll; returns the delay before the next, None when there is none."""
        state = self._watches.get(int(key))
        if state is None or state.closed:
            return None
        if not self.jobs.owns(state.team_id):
            self._forget(state)
            return None
        delay: float | None
        try:
            delay = await self._poll_once(state)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Whatever went wrong, the watch stays: log it, back off, poll again.
            log.exception("watch poll failed", extra=self._extra(state))
            state.cadence, delay = after_error(state.cadence, self.policy)
        if delay is None or state.closed or state.id not in self._watches:
            return None
        return self._next_run(state, delay)

    def _schedule(self, state: _Watch, delay: float) -> None:
        """Move the watch's next poll (a list sweep saw it move, or stop showing it)."""
        self.jobs.scheduler.once(f"watch:{state.id}", self._next_run(state, delay))

    def _next_run(self, state: _Watch, delay: float) -> float:
        delay = self.jitter(delay)
        # The expiry is a run of the same job: it closes the watch on time even while backing
        # off. Once past it (a close that failed), the backoff applies, so a broken database is
        # not hammered.
        until_expiry = state.next_deadline - self.jobs.clock()
        if until_expiry > 0:
            delay = min(delay, until_expiry)
        state.next_poll_at = self.jobs.clock() + delay
        return delay

    async def _poll_once(self, state: _Watch) -> float | None:
        """One poll. Returns the delay before the next one, or None when the watch closed."""
        if self.jobs.clock() >= state.next_deadline:
            snapshot = (
                TaskSnapshot(task=state.last_task, request_id=state.request_id)
                if state.last_task is not None
                else None
            )
            if not await self._expire(state, snapshot):
                return None
        try:
            fetched = await self._fetch(state)
        except (TaskNotFound, InvalidTaskId) as exc:
            state.not_found += 1
            state.request_id = exc.request_id
            log.info("task not found (%d in a row)", state.not_found, extra=self._extra(state))
            if state.not_found >= NOT_FOUND_LIMIT or isinstance(exc, InvalidTaskId):
                await self._close(state, "not_found", None)
                return None
            state.cadence, delay = after_error(state.cadence, self.policy)
            return delay
        except MetaStudioError as exc:
            state.request_id = exc.request_id
            state.cadence, delay = after_error(state.cadence, self.policy, retry_after=exc.retry_after)
            log.warning(
                "watch poll failed (%s), next in %.1f s", type(exc).__name__, delay, extra=self._extra(state)
            )
            return delay
        if fetched is None:
            return None
        state.not_found = 0
        state.request_id = fetched.request_id
        task = fetched.value
        if task.is_finished(self.settings.finished_codes):
            log.info("task finished", extra=self._extra(state))
            snapshot = TaskSnapshot(task=task, request_id=fetched.request_id)
            await self._close(state, "finished", snapshot)
            return None
        state.last_task = task
        now = self.jobs.clock()
        begin = task.begin_time / 1000 if task.begin_time else None
        state.cadence, delay = after_progress(
            state.cadence,
            self.policy,
            now=now,
            processed=task.processed_count,
            total=task.total_count,
            begin=begin,
            listed=state.listed,
        )
        self._observe(state, task, now, begin)
        self._maybe_draw_cards(state, task)
        return delay

    def _observe(self, state: _Watch, task: Task, now: float, begin: float | None) -> None:
        previous = state.progress
        state.progress, event = observe(
            previous,
            Reading(now, task.processed_count, begin),
            stall_seconds=self.settings.stall_minutes * 60,
        )
        if event is Event.STALLED:
            assert state.progress.stalled_since is not None
            state.resumed_after = None
            stalled_for = now - state.progress.stalled_since
            log.info("task stalled for %.0f s", stalled_for, extra=self._extra(state))
            self.jobs.scheduler.spawn_work(self._notify_stall(state, task, stalled_for), f"stall:{state.id}")
        elif event is Event.RESUMED and previous.stalled_since is not None:
            state.resumed_after = max(0.0, now - previous.stalled_since)
            log.info("task moving again", extra=self._extra(state))

    async def _notify_stall(self, state: _Watch, task: Task, stalled_for: float) -> None:
        """One notice per subscriber: in the card's thread, or in the channel without a card."""
        message = alerts.stall_notice(task, stalled_for=stalled_for)
        key = f"{STALL_KEY_PREFIX}{state.id}:{state.progress.stalled_since}"
        for card in list(state.cards.values()):
            if state.closed:
                return
            thread = card.ts if card.ts and not card.gone else None
            try:
                await self.poster.post(
                    Post(state.team_id, card.channel_id, message, key=key, thread_ts=thread)
                )
            except PosterError as exc:
                log.warning(
                    "stall notice failed: %s", exc.error, extra=self._extra(state, channel=card.channel_id)
                )
            except Exception:
                log.exception("stall notice failed", extra=self._extra(state, channel=card.channel_id))

    async def _fetch(self, state: _Watch) -> Fetched[Task] | None:
        """Take a poll slot, then a rate-limit token, then read the task. None when stopping.

        Few polls are in flight (``PollCalls.poll_slots``). Without the bound, thousands of due
        watches (a restart, or a raised ``api_rate``) would all queue inside the HTTP client's
        connection pool, which costs O(queued requests) per request: with 10,000 watches the
        process would spend its time there instead of polling, and commands would queue behind the
        polls for a connection. The slots are per workspace: with one pool for all, a workspace
        whose endpoint hangs would hold every slot and delay the other workspaces' alerts (by
        57 s in ``bench/bench_tenants.py``).
        """
        async with self.calls.poll_slots.slot(state.team_id):
            # Admitted inside the slot: thousands of due polls queue on the slots, which wake one
            # per freed slot; an Event would wake them all whenever the backlog drains.
            if not await self.calls.admit(state.team_id):
                return None
            if not self.jobs.owns(state.team_id):
                # The lease ran out while this poll waited for its slot and token (seconds when
                # the workspace's rate is saturated): the new owner polls the task now.
                self._forget(state)
                return None
            self.calls.stats.polls += 1
            POLLS.labels(REPLICA).inc()
            client = await self.calls.metastudio_for(state.team_id)
            return await client.get_task(state.task_id)

    async def _close(self, state: _Watch, status: CloseStatus, snapshot: TaskSnapshot | None) -> None:
        """Close the watch and queue its deliveries, shielded so stop() cannot cut it in half."""
        work = self.jobs.scheduler.spawn_work(
            self._close_and_deliver(state, status, snapshot), f"close:{state.id}"
        )
        await asyncio.shield(work)

    async def _close_and_deliver(
        self, state: _Watch, status: CloseStatus, snapshot: TaskSnapshot | None
    ) -> None:
        with self.calls.backlog.item():
            deliveries = await self.storage.close_watch(state.id, status=status, snapshot=snapshot)
        self._forget(state)
        log.info("watch closed as %s, %d to tell", status, len(deliveries), extra=self._extra(state))
        for delivery in deliveries:
            self.deliver(delivery)

    async def _expire(self, state: _Watch, snapshot: TaskSnapshot | None) -> bool:
        """Expire the subscribers whose time is up (shielded as ``_close``); True while the
        watch stays active for steps still waiting."""
        work = self.jobs.scheduler.spawn_work(self._expire_and_deliver(state, snapshot), f"close:{state.id}")
        return await asyncio.shield(work)

    async def _expire_and_deliver(self, state: _Watch, snapshot: TaskSnapshot | None) -> bool:
        now = self.jobs.clock()
        with self.calls.backlog.item():
            deliveries, active = await self.storage.expire_subscribers(
                state.id, now=datetime.fromtimestamp(now, UTC), snapshot=snapshot
            )
        for delivery in deliveries:
            state.cards.pop(delivery.subscriber_id or 0, None)
            state.steps.pop(delivery.subscriber_id or 0, None)
        # Whatever the table said, nothing already past its deadline is looked at again.
        state.steps = {sid: deadline for sid, deadline in state.steps.items() if deadline > now}
        if state.expires_at <= now:
            state.expires_at = math.inf
        if not active:
            self._forget(state)
        log.info(
            "watch expired, %d to tell" if not active else "%d subscribers expired, the watch goes on",
            len(deliveries),
            extra=self._extra(state),
        )
        for delivery in deliveries:
            self.deliver(delivery)
        return active

    # -- live cards -----------------------------------------------------------------------------

    def _maybe_draw_cards(self, state: _Watch, task: Task) -> None:
        if state.drawing or self.jobs.scheduler.stopping:
            return
        counts = _counts(state, task)
        now = self.jobs.clock()
        # Only a task that moves ever costs a read, and then at most once per sync period.
        sync_due = counts != state.synced_counts and now - state.cards_synced_at >= self._card_sync_seconds
        if self._due_cards(state, counts) or sync_due:
            state.drawing = True
            self.jobs.scheduler.spawn_work(self._draw_cards(state, task, sync=sync_due), f"cards:{state.id}")

    def _due_cards(self, state: _Watch, counts: tuple[Any, ...]) -> list[_Card]:
        wait = self.settings.card_update_seconds
        now = self.jobs.clock()
        return [
            card
            for card in state.cards.values()
            if card.ts and not card.gone and card.drawn != counts and now - card.updated_at >= wait
        ]

    async def _draw_cards(self, state: _Watch, task: Task, *, sync: bool) -> None:
        try:
            await self.calls.yield_to_requests()
            if sync:
                # Cards posted after watch() (set_card_ts) and channels that left are picked up
                # here: one read at most every card_update_seconds, never a write.
                subscribers = await self.storage.active_subscribers(state.id)
                state.cards_synced_at = self.jobs.clock()
                state.synced_counts = _counts(state, task)
                known = {s.id for s in subscribers}
                for subscriber_id in list(state.cards):
                    if subscriber_id not in known:
                        del state.cards[subscriber_id]
                for subscriber in subscribers:
                    self._add_card(state, subscriber)
            counts = _counts(state, task)
            due = self._due_cards(state, counts)
            if not due or state.closed:
                return
            refreshed_at = datetime.fromtimestamp(self.jobs.clock(), UTC)
            drawn: dict[str, alerts.Message] = {}  # one build per language, not per card
            for card in due:
                if state.closed:
                    return
                message = drawn.get(card.locale)
                if message is None:
                    message = drawn[card.locale] = alerts.watched_card(
                        task,
                        CardView(
                            request_id=state.request_id,
                            finished_codes=self.settings.finished_codes,
                            refreshed_at=refreshed_at,
                            progress=state.progress,
                            resumed_after=state.resumed_after,
                            locale=card.locale,
                        ),
                    )
                card.updated_at = self.jobs.clock()
                await self._update_card(card, message, counts, state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live card update failed", extra=self._extra(state))
        finally:
            state.drawing = False

    async def _update_card(
        self, card: _Card, message: alerts.Message, counts: tuple[Any, ...], state: _Watch
    ) -> None:
        assert card.ts is not None
        try:
            await self.poster.update(state.team_id, card.channel_id, card.ts, message)
        except PosterError as exc:
            if isinstance(exc, CardGone):
                card.gone = True
            log.warning(
                "card update failed: %s", exc.error, extra=self._extra(state, channel=card.channel_id)
            )
            return
        card.drawn = counts
        self.calls.stats.card_updates += 1
