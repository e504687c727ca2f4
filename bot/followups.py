"""Follow-ups: channels watch a task and are told exactly once when it finishes.

Shape
-----
* A **watch** is one row per (team, task), shared by every channel that watches the task (its
  **subscribers**). One poll per watch per interval, however many channels: 1,000 channels on
  one task cost what one does. The interval adapts (``bot.polling``); every MetaStudio call
  first takes a ``POLL`` token from the project's ``PriorityRateLimiter``.
* A **feed** makes a channel hear about every task of the project that finishes after it
  subscribed. All feeds of a team share one list poll every ``feed_poll_seconds``.
* All timers live in one APScheduler ``AsyncIOScheduler`` with an in-memory job store (jobs
  ``watch:<id>``, ``feed:<team>``, ``delivery:<id>``), each a one-shot ``DateTrigger`` set again
  after every run. The scheduler is only the clock: the tables in ``bot.storage`` are the truth,
  and ``start()`` rebuilds every timer from them. A job only spawns a tracked task and returns,
  so a slow poll never makes APScheduler skip a run.
* Between state transitions nothing is written: the last counts, the card throttle and the
  not-found streak stay in memory and are simply rebuilt (empty) after a restart.

Exactly once, even across ``kill -9``
-------------------------------------
1. A poll that sees the task finished calls ``storage.close_watch``: in ONE transaction the
   watch moves from ``active`` to ``finished`` and one ``pending`` delivery row is written per
   active subscriber (unique per subscriber and kind). A second poller, a racing expiry or a
   second process finds the watch no longer active and queues nothing.
2. Before posting, ``mark_sending`` commits ``status='sending', attempts+1, attempt_at=now``.
3. The message is posted with Slack message metadata
   ``{"event_type": "taskbot_delivery", "event_payload": {"key": <delivery key>}}``.
4. ``mark_sent`` commits the Slack ``ts``.

A crash between 2 and 4 leaves the delivery ``sending`` (a failed attempt puts it back to
``pending`` with ``attempts >= 1``): the post may or may not have reached Slack. So any
delivery with ``attempts >= 1`` is resumed by FIRST looking for its key: in the card's thread
(``conversations.replies`` on ``thread_ts``, where a thread-only alert lives) and in the
channel (``conversations.history`` with ``include_all_metadata=true`` and ``oldest`` =
previous ``attempt_at`` - 60 s). Found: ``mark_sent`` with that ``ts``, nothing is posted.
Not found: post as in 2-4. If the look-up itself fails transiently the delivery waits and
tries again, because posting blind could duplicate; only when the look-up cannot work at all
(e.g. ``missing_scope``) is the message posted anyway, with a warning in the log.
``start()`` resumes every ``pending`` or ``sending`` delivery; ``stop()`` lets in-flight ones
finish (bounded) before the process exits.

Slack faults: 429s are retried by slack_sdk's retry handlers (on the client ``slack_for``
returns). ``channel_not_found``, ``not_in_channel`` and ``is_archived`` close that subscriber
(or feed), fail the delivery and tell the requester by DM. Any other error puts the delivery
back to ``pending`` and retries it later with backoff: it is never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import alerts
from bot.config import Settings
from bot.metastudio.client import Fetched, MetaStudioClient
from bot.metastudio.errors import InvalidTaskId, MetaStudioError, TaskNotFound
from bot.metastudio.models import Task
from bot.polling import Cadence, PollPolicy, after_error, after_progress, backoff, jittered
from bot.ratelimit import Priority, PriorityRateLimiter, RateLimiters
from bot.storage import (
    ChannelWatch,
    DeliveryRecord,
    FeedRecord,
    Storage,
    SubscriberRecord,
    WatchRecord,
    WatchResult,
)

log = logging.getLogger("taskbot.followups")

CloseStatus = Literal["finished", "expired", "not_found"]

DELIVERY_EVENT: Final = "taskbot_delivery"
NOT_FOUND_LIMIT: Final = 3
LOOKBACK_SECONDS: Final = 60.0
# Slack answers these when the bot can no longer post in a channel: retrying cannot help.
CANNOT_POST: Final = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
# The metadata look-up cannot work at all with these: post rather than hold the alert forever.
LOOKUP_IMPOSSIBLE: Final = frozenset({"missing_scope", "not_allowed_token_type", "no_permission"})
# chat.update answers these for a card that can never be updated again.
CARD_GONE: Final = frozenset(
    {"message_not_found", "cant_update_message", "edit_window_closed", "msg_too_long", *CANNOT_POST}
)
FEED_PAGE_SIZE: Final = 100
# end_time a little past our clock, so a server clock slightly ahead still lists its newest tasks.
FEED_CLOCK_SLACK_MS: Final = 5 * 60 * 1000
FEED_MAX_PAGES: Final = 5
LOOKUP_PAGE_SIZE: Final = 200
LOOKUP_MAX_PAGES: Final = 10
STOP_TIMEOUT: Final = 10.0
CARD_SYNC_FACTOR: Final = 6
DELIVERY_CONCURRENCY: Final = 8
# Polls in flight at once: under the MetaStudio client's keep-alive pool (10), so polls reuse
# connections and leave the rest of its 50 connections to commands.
POLL_CONCURRENCY: Final = 8
# Closes and alerts in progress beyond which polls wait for them (see _Backlog).
BACKLOG_LIMIT: Final = 2 * DELIVERY_CONCURRENCY


async def _no_wait() -> None:
    return None


class _Backlog:
    """Closes and alerts started but not yet recorded; polls wait while there are too many.

    Polls are the elastic load: with thousands of watches and a raised rate they can keep the
    event loop busy without pause, and then every SQLite transaction crawls: each of its
    steps (hops to an aiosqlite thread and back) waits its turn behind the polls' callbacks. In the 10,000-watch benchmark a close
    took 15 s and alerts fell minutes behind. Results must be recorded before more are
    fetched, so polls pause until the backlog is short again.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._short = asyncio.Event()
        self._short.set()

    @contextlib.contextmanager
    def item(self) -> Iterator[None]:
        self.count += 1
        if self.count > self.limit:
            self._short.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count <= self.limit:
                self._short.set()

    async def wait_until_short(self) -> None:
        await self._short.wait()


@dataclass
class _Card:
    """One subscriber's live card and when it was last redrawn."""

    channel_id: str
    ts: str | None
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


@dataclass
class _FeedTeam:
    feeds: dict[int, FeedRecord] = field(default_factory=dict)
    last_seen_running: dict[str, float] = field(default_factory=dict)
    """Task id -> the last time (our clock) the list showed it unfinished."""
    recorded: set[tuple[int, str]] = field(default_factory=set)
    """(feed id, task id) already queued, so a finished task costs no write on later polls."""
    interval: float = 0.0
    running_begin_ms: int | None = None
    """Earliest ``begin_time`` of a task the last poll showed unfinished: the next window starts there."""


def _counts(task: Task) -> tuple[Any, ...]:
    return (task.success_count, task.failure_count, task.total_count, task.task_status)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


class FollowUps:
    """The follow-up engine. ``start()`` once the event loop runs; ``stop()`` before exit."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        metastudio_for: Callable[[str], Awaitable[MetaStudioClient]],
        slack_for: Callable[[str], Awaitable[AsyncWebClient]],
        limiter: PriorityRateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        yield_to_requests: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        # Background work waits here before each poll, redraw and alert, so a burst of Slack
        # requests is acknowledged first (the engine passes its AckFirst gate).
        self._yield_to_requests = yield_to_requests or _no_wait
        self.storage = storage
        self._metastudio_for = metastudio_for
        self._slack_for = slack_for
        self._limiter = limiter
        self._limiters = RateLimiters(settings.api_rate)
        self._clock = clock
        self._rng = rng or random.Random()
        self.policy = PollPolicy.from_intervals(settings.poll_seconds, settings.max_poll_seconds)
        # How often a moving task re-reads its subscribers, to find cards set outside watch().
        self._card_sync_seconds = max(CARD_SYNC_FACTOR * settings.card_update_seconds, self.policy.base)
        # Counters for tests, benchmarks and /metrics.
        self.polls = 0
        self.feed_polls = 0
        self.card_updates = 0
        self.delivered = 0
        self._scheduler: AsyncIOScheduler | None = None
        self._stopping = False
        # True from start() until stop() has returned: deliveries may still start while stopping.
        self._active = False
        self._watches: dict[int, _Watch] = {}
        self._by_task: dict[tuple[str, str], int] = {}
        self._feeds: dict[str, _FeedTeam] = {}
        self._running_jobs: dict[str, asyncio.Task[None]] = {}
        self._poll_tasks: set[asyncio.Task[Any]] = set()
        self._work_tasks: set[asyncio.Task[Any]] = set()
        self._delivering: set[int] = set()
        self._send_slots = asyncio.Semaphore(DELIVERY_CONCURRENCY)
        self._poll_slots = asyncio.Semaphore(POLL_CONCURRENCY)
        self._backlog = _Backlog(BACKLOG_LIMIT)
        self._delivery_failures: dict[int, int] = {}

    # -- public API ----------------------------------------------------------------------------

    def limiter_for(self, team_id: str) -> PriorityRateLimiter:
        """The limiter of the team's MetaStudio project; commands should take ``Priority.COMMAND`` here."""
        return self._limiter if self._limiter is not None else self._limiters.get(team_id)

    @property
    def running(self) -> bool:
        return self._scheduler is not None and not self._stopping

    async def start(self) -> None:
        """Start the timers, re-arm every active watch and feed, resume owed deliveries."""
        if self.running:
            return
        self._stopping = False
        scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
        )
        scheduler.start()
        self._scheduler = scheduler
        self._active = True
        for watch in await self.storage.active_watches():
            state = self._track(watch, watch.subscribers)
            # Spread the first polls over one interval so a restart is not a burst.
            self._schedule(f"watch:{state.id}", self._rng.uniform(0, self.policy.base))
        for feed in await self.storage.active_feeds():
            self._add_feed(feed)
        for team_id in self._feeds:
            self._schedule(f"feed:{team_id}", 0.0)
        pending = await self.storage.pending_deliveries()
        for delivery in pending:
            self._start_delivery(delivery.id)
        log.info(
            "follow-ups started: %d watches, %d feeds, %d deliveries owed",
            len(self._watches),
            sum(len(team.feeds) for team in self._feeds.values()),
            len(pending),
        )

    async def stop(self, grace: float = STOP_TIMEOUT) -> None:
        """Stop the timers and polls; let in-flight deliveries finish (at most ``grace`` seconds)."""
        if self._scheduler is None:
            return
        self._stopping = True
        scheduler, self._scheduler = self._scheduler, None
        if scheduler.running:
            scheduler.shutdown(wait=False)
        polls = set(self._poll_tasks)
        for task in polls:
            task.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # A close in flight may queue deliveries while we wait: wait for those too.
        while self._work_tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(set(self._work_tasks), timeout=remaining)
        leftovers = set(self._work_tasks)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*polls, *leftovers, return_exceptions=True)
        if leftovers:
            log.warning(
                "stopped with %d follow-up tasks unfinished; they resume at the next start", len(leftovers)
            )
        self._active = False
        self._watches.clear()
        self._by_task.clear()
        self._feeds.clear()
        self._running_jobs.clear()
        # Let the scheduler's deferred shutdown run before the loop may close.
        await asyncio.sleep(0)

    async def watch(
        self, *, team_id: str, task_id: str, channel_id: str, user_id: str, message_ts: str | None = None
    ) -> WatchResult:
        """Make ``channel_id`` hear once when the task finishes; ``message_ts`` is its card, kept live.

        Watching again from the same channel returns ``created=False``; a new ``message_ts``
        then replaces the old one, so the newest card is the one kept up to date.
        """
        now = datetime.fromtimestamp(self._clock(), UTC)
        result = await self.storage.watch(
            team_id=team_id,
            task_id=task_id,
            channel_id=channel_id,
            user_id=user_id,
            expires_at=now + timedelta(hours=self.settings.watch_max_hours),
            message_ts=message_ts,
        )
        subscriber = result.subscriber
        if not result.created and message_ts and subscriber.message_ts != message_ts:
            await self.storage.set_card_ts(subscriber.id, message_ts)
            subscriber = replace(subscriber, message_ts=message_ts)
            result = replace(result, subscriber=subscriber)
        state = self._watches.get(result.watch.id)
        if state is None:
            state = self._track(result.watch, [subscriber])
            self._schedule(f"watch:{state.id}", jittered(self.policy.base, self._rng))
        else:
            self._add_card(state, subscriber)
        log.info(
            "watching task" if result.created else "already watching task",
            extra={"team": team_id, "task_id": task_id, "channel": channel_id, "user": user_id},
        )
        return result

    async def set_card_ts(self, subscriber_id: int, message_ts: str) -> None:
        """Record the card a subscriber's channel shows, when it is posted after ``watch()``."""
        await self.storage.set_card_ts(subscriber_id, message_ts)
        for state in self._watches.values():
            card = state.cards.get(subscriber_id)
            if card is not None:
                card.ts, card.drawn, card.gone = message_ts, None, False

    async def unwatch(self, *, team_id: str, task_id: str, channel_id: str) -> bool:
        """Stop telling ``channel_id`` about the task. False when it was not watching it."""
        removed = await self.storage.unwatch(team_id=team_id, task_id=task_id, channel_id=channel_id)
        watch_id = self._by_task.get((team_id, task_id))
        state = self._watches.get(watch_id) if watch_id is not None else None
        if removed and state is not None:
            for subscriber_id, card in list(state.cards.items()):
                if card.channel_id == channel_id:
                    del state.cards[subscriber_id]
            record = await self.storage.get_watch(state.id)
            if record is None or record.status != "active":
                # That was the last channel: the watch is cancelled and its timer goes too.
                self._forget(state)
        return removed

    async def watching(
        self, *, team_id: str, channel_id: str
    ) -> tuple[list[ChannelWatch], FeedRecord | None]:
        """What the channel follows: its watched tasks, oldest first, and its feed if any."""
        watches = await self.storage.channel_watches(team_id=team_id, channel_id=channel_id)
        feed = await self.storage.channel_feed(team_id=team_id, channel_id=channel_id)
        return watches, feed

    async def subscribe(
        self, *, team_id: str, channel_id: str, user_id: str, resources: Sequence[str]
    ) -> tuple[FeedRecord, bool]:
        """Announce in ``channel_id`` every task that finishes from now on (only ``resources``, if given).

        Subscribing again changes the filter but never replays what finished in between.
        """
        wanted = [r.strip() for r in resources if r and r.strip()]
        since = datetime.fromtimestamp(self._clock(), UTC)
        feed, created = await self.storage.subscribe_feed(
            team_id=team_id, channel_id=channel_id, user_id=user_id, resources=wanted, since=since
        )
        self._add_feed(feed)
        job_id = f"feed:{team_id}"
        if job_id not in self._running_jobs and not self._job_pending(job_id):
            # Poll now: what is running at this moment is what the feed may announce later.
            self._schedule(job_id, 0.0)
        log.info(
            "feed subscribed" if created else "feed updated", extra={"team": team_id, "channel": channel_id}
        )
        return feed, created

    async def unsubscribe(self, *, team_id: str, channel_id: str) -> bool:
        removed = await self.storage.unsubscribe_feed(team_id=team_id, channel_id=channel_id)
        team = self._feeds.get(team_id)
        if team is not None:
            for feed_id, feed in list(team.feeds.items()):
                if feed.channel_id == channel_id:
                    del team.feeds[feed_id]
            if not team.feeds:
                self._unschedule(f"feed:{team_id}")
                del self._feeds[team_id]
        return removed

    # -- timers ----------------------------------------------------------------------------------

    async def forget_team(self, team_id: str) -> None:
        """Stop every timer of a workspace that uninstalled; its rows are deleted by the caller."""
        for state in [w for w in self._watches.values() if w.team_id == team_id]:
            self._forget(state)
        if self._feeds.pop(team_id, None) is not None:
            self._unschedule(f"feed:{team_id}")

    def _schedule(self, job_id: str, delay: float) -> None:
        if self._stopping or self._scheduler is None:
            return
        run_at = datetime.now(UTC) + timedelta(seconds=max(0.0, delay))
        self._scheduler.add_job(
            self._fire,
            trigger=DateTrigger(run_date=run_at, timezone=UTC),
            args=[job_id],
            id=job_id,
            name=job_id,
            replace_existing=True,
        )

    def _unschedule(self, job_id: str) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)

    def _job_pending(self, job_id: str) -> bool:
        return self._scheduler is not None and self._scheduler.get_job(job_id) is not None

    async def _fire(self, job_id: str) -> None:
        """The one APScheduler job function: start the work as our own task and return at once."""
        if self._stopping or job_id in self._running_jobs:
            return
        kind, _, key = job_id.partition(":")
        if kind == "watch":
            coro: Coroutine[Any, Any, None] = self._poll_watch(int(key))
            group = self._poll_tasks
        elif kind == "feed":
            coro, group = self._poll_feed(key), self._poll_tasks
        elif kind == "delivery":
            self._start_delivery(int(key))
            return
        else:
            log.error("unknown follow-up job %s", job_id)
            return
        task = self._spawn(coro, group, job_id)
        self._running_jobs[job_id] = task
        task.add_done_callback(lambda _: self._running_jobs.pop(job_id, None))

    def _spawn(
        self, coro: Coroutine[Any, Any, Any], group: set[asyncio.Task[Any]], name: str
    ) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"followups:{name}")
        group.add(task)
        task.add_done_callback(group.discard)
        return task

    # -- watches ---------------------------------------------------------------------------------

    def _track(self, watch: WatchRecord, subscribers: Iterable[SubscriberRecord]) -> _Watch:
        state = _Watch(
            id=watch.id,
            team_id=watch.team_id,
            task_id=watch.task_id,
            expires_at=_epoch(watch.expires_at),
            cadence=Cadence.start(self.policy),
        )
        for subscriber in subscribers:
            self._add_card(state, subscriber)
        self._watches[state.id] = state
        self._by_task[(state.team_id, state.task_id)] = state.id
        return state

    @staticmethod
    def _add_card(state: _Watch, subscriber: SubscriberRecord) -> None:
        card = state.cards.get(subscriber.id)
        if card is None:
            state.cards[subscriber.id] = _Card(subscriber.channel_id, subscriber.message_ts)
        elif subscriber.message_ts and card.ts != subscriber.message_ts:
            card.ts, card.drawn, card.gone = subscriber.message_ts, None, False

    def _forget(self, state: _Watch) -> None:
        state.closed = True
        self._watches.pop(state.id, None)
        if self._by_task.get((state.team_id, state.task_id)) == state.id:
            del self._by_task[(state.team_id, state.task_id)]
        self._unschedule(f"watch:{state.id}")

    def _extra(self, state: _Watch, **more: Any) -> dict[str, Any]:
        return {"team": state.team_id, "task_id": state.task_id, "request_id": state.request_id, **more}

    async def _poll_watch(self, watch_id: int) -> None:
        state = self._watches.get(watch_id)
        if state is None or state.closed:
            return
        delay: float | None
        try:
            delay = await self._poll_watch_once(state)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Whatever went wrong, the watch stays: log it, back off, poll again.
            log.exception("watch poll failed", extra=self._extra(state))
            state.cadence, delay = after_error(state.cadence, self.policy)
        if delay is not None and not state.closed and state.id in self._watches:
            self._schedule_watch(state, delay)

    def _schedule_watch(self, state: _Watch, delay: float) -> None:
        delay = jittered(delay, self._rng)
        # The expiry is a poll too: it closes the watch on time even while backing off. Once
        # past it (a close that failed), the backoff applies, so a broken database is not hammered.
        until_expiry = state.expires_at - self._clock()
        if until_expiry > 0:
            delay = min(delay, until_expiry)
        self._schedule(f"watch:{state.id}", delay)

    async def _poll_watch_once(self, state: _Watch) -> float | None:
        """One poll. Returns the delay before the next one, or None when the watch closed."""
        if self._clock() >= state.expires_at:
            snapshot = state.last_task.model_dump(mode="json") if state.last_task is not None else None
            await self._close(state, "expired", snapshot)
            return None
        try:
            fetched = await self._fetch_for_poll(state)
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
            await self._close(state, "finished", task.model_dump(mode="json"))
            return None
        state.last_task = task
        state.cadence, delay = after_progress(
            state.cadence,
            self.policy,
            now=self._clock(),
            processed=task.processed_count,
            total=task.total_count,
        )
        self._maybe_draw_cards(state, task)
        return delay

    async def _fetch_for_poll(self, state: _Watch) -> Fetched[Task] | None:
        """Take a poll slot, then a rate-limit token, then read the task. None when stopping.

        At most ``POLL_CONCURRENCY`` polls are in flight. Without the bound, thousands of due
        watches (a restart, or a raised ``api_rate``) all queue inside httpx's connection pool,
        which costs O(queued requests) per request: with 10,000 watches the process spent its
        time there instead of polling, and commands queued behind the polls for a connection.
        """
        async with self._poll_slots:
            # Inside the slot: thousands of due polls queue on the semaphore, which wakes one at
            # a time; an Event would wake them all whenever the backlog drains.
            await self._backlog.wait_until_short()
            await self._yield_to_requests()
            await self.limiter_for(state.team_id).acquire(Priority.POLL)
            if self._stopping:
                return None
            self.polls += 1
            client = await self._metastudio_for(state.team_id)
            return await client.get_task(state.task_id)

    async def _close(self, state: _Watch, status: CloseStatus, snapshot: dict[str, Any] | None) -> None:
        """Close the watch and queue its deliveries, shielded so stop() cannot cut it in half."""
        work = self._spawn(
            self._close_and_deliver(state, status, snapshot), self._work_tasks, f"close:{state.id}"
        )
        await asyncio.shield(work)

    async def _close_and_deliver(
        self, state: _Watch, status: CloseStatus, snapshot: dict[str, Any] | None
    ) -> None:
        with self._backlog.item():
            deliveries = await self.storage.close_watch(state.id, status=status, snapshot=snapshot)
        self._forget(state)
        log.info("watch closed as %s, %d to tell", status, len(deliveries), extra=self._extra(state))
        for delivery in deliveries:
            self._start_delivery(delivery.id)

    # -- live cards ------------------------------------------------------------------------------

    def _maybe_draw_cards(self, state: _Watch, task: Task) -> None:
        if state.drawing or self._stopping:
            return
        counts = _counts(task)
        now = self._clock()
        wait = self.settings.card_update_seconds
        # Only a task that moves ever costs a read, and then at most once per sync period.
        sync_due = counts != state.synced_counts and now - state.cards_synced_at >= self._card_sync_seconds
        due = any(
            card.ts and not card.gone and card.drawn != counts and now - card.updated_at >= wait
            for card in state.cards.values()
        )
        if due or sync_due:
            state.drawing = True
            self._spawn(self._draw_cards(state, task, sync=sync_due), self._work_tasks, f"cards:{state.id}")

    async def _draw_cards(self, state: _Watch, task: Task, *, sync: bool) -> None:
        try:
            await self._yield_to_requests()
            if sync:
                # Cards posted after watch() (set_card_ts) and channels that left are picked up
                # here: one read at most every card_update_seconds, never a write.
                subscribers = await self.storage.active_subscribers(state.id)
                state.cards_synced_at = self._clock()
                state.synced_counts = _counts(task)
                known = {s.id for s in subscribers}
                for subscriber_id in list(state.cards):
                    if subscriber_id not in known:
                        del state.cards[subscriber_id]
                for subscriber in subscribers:
                    self._add_card(state, subscriber)
            counts = _counts(task)
            wait = self.settings.card_update_seconds
            due = [
                card
                for card in state.cards.values()
                if card.ts
                and not card.gone
                and card.drawn != counts
                and self._clock() - card.updated_at >= wait
            ]
            if not due or state.closed:
                return
            client = await self._slack_for(state.team_id)
            refreshed = datetime.fromtimestamp(self._clock(), UTC)
            message = alerts.watched_card(
                task,
                request_id=state.request_id,
                finished_codes=self.settings.finished_codes,
                refreshed_at=refreshed,
            )
            for card in due:
                if state.closed:
                    return
                card.updated_at = self._clock()
                await self._update_card(client, card, message, counts, state)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live card update failed", extra=self._extra(state))
        finally:
            state.drawing = False

    async def _update_card(
        self,
        client: AsyncWebClient,
        card: _Card,
        message: alerts.Message,
        counts: tuple[Any, ...],
        state: _Watch,
    ) -> None:
        assert card.ts is not None
        try:
            await client.chat_update(
                channel=card.channel_id, ts=card.ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            if error in CARD_GONE:
                card.gone = True
            log.warning("card update failed: %s", error, extra=self._extra(state, channel=card.channel_id))
            return
        card.drawn = counts
        self.card_updates += 1

    # -- feeds -----------------------------------------------------------------------------------

    def _add_feed(self, feed: FeedRecord) -> None:
        team = self._feeds.get(feed.team_id)
        if team is None:
            team = self._feeds[feed.team_id] = _FeedTeam(interval=self.settings.feed_poll_seconds)
        for feed_id, existing in list(team.feeds.items()):
            if existing.channel_id == feed.channel_id and feed_id != feed.id:
                del team.feeds[feed_id]
        team.feeds[feed.id] = feed

    async def _poll_feed(self, team_id: str) -> None:
        team = self._feeds.get(team_id)
        if team is None or not team.feeds:
            return
        base = self.settings.feed_poll_seconds
        try:
            await self._poll_feed_once(team_id, team)
            team.interval = base
        except asyncio.CancelledError:
            raise
        except MetaStudioError as exc:
            team.interval = backoff(max(team.interval, base), 2.0, max(base, self.settings.max_poll_seconds))
            if exc.retry_after:
                team.interval = max(team.interval, exc.retry_after)
            log.warning(
                "feed poll failed (%s), next in %.1f s",
                type(exc).__name__,
                team.interval,
                extra={"team": team_id, "request_id": exc.request_id},
            )
        except Exception:
            team.interval = backoff(max(team.interval, base), 2.0, max(base, self.settings.max_poll_seconds))
            log.exception("feed poll failed", extra={"team": team_id})
        if team.feeds and self._feeds.get(team_id) is team:
            self._schedule(f"feed:{team_id}", jittered(team.interval, self._rng))

    async def _poll_feed_once(self, team_id: str, team: _FeedTeam) -> None:
        feeds = list(team.feeds.values())
        # One list call serves every feed of the team: filter server-side only if all feeds filter.
        if all(feed.resources for feed in feeds):
            resources: tuple[str, ...] = tuple(sorted({r for feed in feeds for r in feed.resources}))
        else:
            resources = ()
        oldest_since_ms = min(_epoch(feed.since) for feed in feeds) * 1000
        client = await self._metastudio_for(team_id)
        limiter = self.limiter_for(team_id)
        listed: dict[str, Task] = {}
        # begin_time/end_time (SearchTask's own filters, epoch ms) keep each poll small: tasks that
        # began within the longest follow-up window, or earlier if still running at the last poll.
        now_ms = int(self._clock() * 1000)
        window_start = now_ms - int(self.settings.watch_max_hours * 3600 * 1000)
        if team.running_begin_ms is not None:
            window_start = min(window_start, team.running_begin_ms)
        window_end = now_ms + FEED_CLOCK_SLACK_MS
        previous_ids: list[str] | None = None
        for page in range(FEED_MAX_PAGES):
            await self._backlog.wait_until_short()
            await self._yield_to_requests()
            await limiter.acquire(Priority.POLL)
            if self._stopping:
                return
            self.feed_polls += 1
            fetched = await client.list_tasks(
                resources=resources,
                begin_time=window_start,
                end_time=window_end,
                offset=page * FEED_PAGE_SIZE,
                limit=FEED_PAGE_SIZE,
            )
            items = fetched.value.data
            ids = [task.task_id for task in items]
            # offset/limit are not in the SDK's request model: a server that ignores them sends the
            # same page again, and paging on would loop over it.
            if ids and ids == previous_ids:
                log.warning("feed poll: the server ignores offset, stopping at one page", extra={"team": team_id})
                break
            previous_ids = ids
            relevant = False
            for task in items:
                listed[task.task_id] = task
                finished = task.is_finished(self.settings.finished_codes)
                if (
                    not finished
                    or task.task_id in team.last_seen_running
                    or (task.end_time is not None and task.end_time >= oldest_since_ms)
                ):
                    relevant = True
            # Newest first: once a whole page holds only tasks that ended before every feed
            # began, older pages cannot hold anything to announce.
            if len(items) < FEED_PAGE_SIZE or not relevant:
                break
        now = self._clock()
        running_begins = [
            t.begin_time for t in listed.values() if t.begin_time and not t.is_finished(self.settings.finished_codes)
        ]
        team.running_begin_ms = min(running_begins) if running_begins else None
        for task in listed.values():
            if not task.is_finished(self.settings.finished_codes):
                team.last_seen_running[task.task_id] = now
                continue
            for feed in feeds:
                if (feed.id, task.task_id) in team.recorded or feed.id not in team.feeds:
                    continue
                if feed.resources and task.resource not in feed.resources:
                    continue
                if not self._finished_after(task, feed, team):
                    continue
                delivery = await self.storage.record_feed_delivery(
                    feed, task_id=task.task_id, snapshot=task.model_dump(mode="json")
                )
                team.recorded.add((feed.id, task.task_id))
                if delivery is not None:
                    log.info(
                        "feed announces task",
                        extra={"team": team_id, "task_id": task.task_id, "channel": feed.channel_id},
                    )
                    self._start_delivery(delivery.id)
            team.last_seen_running.pop(task.task_id, None)
        # Memory stays bounded by what the list shows: a task that left it is not seen again.
        team.recorded = {(f, t) for f, t in team.recorded if t in listed}
        team.last_seen_running = {t: at for t, at in team.last_seen_running.items() if t in listed}

    @staticmethod
    def _finished_after(task: Task, feed: FeedRecord, team: _FeedTeam) -> bool:
        """Whether the task finished after the feed began (so it may be announced)."""
        since = _epoch(feed.since)
        if task.end_time is not None:
            return task.end_time >= since * 1000
        # No end time: only a task we saw unfinished after the subscription provably ended after it.
        seen = team.last_seen_running.get(task.task_id)
        return seen is not None and seen >= since

    # -- deliveries ------------------------------------------------------------------------------

    def _start_delivery(self, delivery_id: int) -> None:
        if delivery_id in self._delivering or not self._active:
            return
        self._delivering.add(delivery_id)
        task = self._spawn(self._deliver(delivery_id), self._work_tasks, f"delivery:{delivery_id}")
        task.add_done_callback(lambda _: self._delivering.discard(delivery_id))

    async def _deliver(self, delivery_id: int) -> None:
        with self._backlog.item():
            await self._deliver_with_retry(delivery_id)

    async def _deliver_with_retry(self, delivery_id: int) -> None:
        try:
            # A finished task watched by 1,000 channels must not open 1,000 Slack calls at once.
            async with self._send_slots:
                await self._yield_to_requests()
                retry = await self._deliver_once(delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery %d failed; it stays queued", delivery_id)
            retry = True
        if retry:
            failures = self._delivery_failures.get(delivery_id, 0) + 1
            self._delivery_failures[delivery_id] = failures
            delay = min(self.policy.ceiling, self.policy.base * 2 ** min(failures - 1, 16))
            self._schedule(f"delivery:{delivery_id}", jittered(delay, self._rng))
        else:
            self._delivery_failures.pop(delivery_id, None)

    async def _deliver_once(self, delivery_id: int) -> bool:
        """One attempt. True when it must be tried again later."""
        record = await self.storage.get_delivery(delivery_id)
        if record is None or record.status not in ("pending", "sending"):
            return False
        extra = {"team": record.team_id, "task_id": record.task_id, "channel": record.channel_id}
        client = await self._slack_for(record.team_id)
        message, thread_ts, broadcast = self._compose(record)
        if record.attempts >= 1:
            # A previous attempt may have posted before dying: look before posting again.
            try:
                found = await self._find_posted(client, record)
            except SlackApiError as exc:
                error = str(exc.response.get("error", "unknown"))
                if error in CANNOT_POST:
                    await self._cannot_post(client, record, error)
                    return False
                if error not in LOOKUP_IMPOSSIBLE:
                    log.warning("delivery look-up failed (%s); will retry", error, extra=extra)
                    return True
                log.warning("cannot look up earlier attempts (%s); posting anyway", error, extra=extra)
                found = None
            if found is not None:
                await self.storage.mark_sent(record.id, found)
                self.delivered += 1
                log.info("delivery %s was already posted; not posting again", record.kind, extra=extra)
                await self._final_card(client, record)
                return False
        claimed = await self.storage.mark_sending(record.id)
        if claimed is None:
            return False
        try:
            response = await client.chat_postMessage(
                channel=record.channel_id,
                text=message.text,
                blocks=message.blocks,
                thread_ts=thread_ts,
                reply_broadcast=broadcast or None,
                metadata={"event_type": DELIVERY_EVENT, "event_payload": {"key": record.key}},
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            if error in CANNOT_POST:
                await self._cannot_post(client, record, error)
                return False
            await self.storage.mark_failed(record.id, f"slack: {error}", retry=True)
            log.warning("delivery post failed (%s); will retry", error, extra=extra)
            return True
        except Exception as exc:
            # The post may or may not have landed; the next attempt looks before posting.
            await self.storage.mark_failed(record.id, f"{type(exc).__name__}", retry=True)
            log.warning("delivery post failed (%s); will retry", type(exc).__name__, extra=extra)
            return True
        await self.storage.mark_sent(record.id, str(response.get("ts") or "") or None)
        self.delivered += 1
        log.info("delivered %s", record.kind, extra=extra)
        # After the alert, not before: a throttled chat.update must not delay it. A crash right
        # here leaves the card one redraw short, which is cosmetic; the alert is what counts.
        await self._final_card(client, record)
        return False

    def _compose(self, record: DeliveryRecord) -> tuple[alerts.Message, str | None, bool]:
        """The message, the thread to post it in, and whether to also show it in the channel."""
        task = alerts.task_from_snapshot(record.payload)
        mode = self.settings.alert_mode
        if record.kind == "feed":
            message = alerts.completion_alert(
                task or Task(task_id=record.task_id),
                user_id=None,
                finished_codes=self.settings.finished_codes,
                feed=True,
            )
            return message, None, False
        if record.kind == "finished":
            message = alerts.completion_alert(
                task or Task(task_id=record.task_id),
                user_id=record.user_id,
                finished_codes=self.settings.finished_codes,
            )
            if record.thread_ts and mode != "channel":
                return message, record.thread_ts, mode == "thread_and_channel"
            return message, None, False
        if record.kind == "expired":
            message = alerts.expired_notice(
                record.task_id, user_id=record.user_id, hours=self.settings.watch_max_hours, last_seen=task
            )
        else:
            message = alerts.not_found_notice(record.task_id, user_id=record.user_id)
        # A notice that ends a watch belongs with the card; it is not broadcast.
        if record.thread_ts and mode != "channel":
            return message, record.thread_ts, False
        return message, None, False

    async def _final_card(self, client: AsyncWebClient, record: DeliveryRecord) -> None:
        """Redraw the watched card in its final state (idempotent, best effort)."""
        task = alerts.task_from_snapshot(record.payload)
        if record.kind != "finished" or task is None or not record.thread_ts:
            return
        message = alerts.watched_card(
            task,
            request_id=None,
            finished_codes=self.settings.finished_codes,
            refreshed_at=datetime.fromtimestamp(self._clock(), UTC),
        )
        try:
            await client.chat_update(
                channel=record.channel_id, ts=record.thread_ts, text=message.text, blocks=message.blocks
            )
            self.card_updates += 1
        except SlackApiError as exc:
            log.info(
                "final card update failed: %s",
                exc.response.get("error", "unknown"),
                extra={"team": record.team_id, "task_id": record.task_id, "channel": record.channel_id},
            )

    async def _find_posted(self, client: AsyncWebClient, record: DeliveryRecord) -> str | None:
        """The ``ts`` of a message already posted for this delivery, or None."""
        previous = record.attempt_at or record.created_at
        oldest = f"{_epoch(previous) - LOOKBACK_SECONDS:.6f}"
        if record.thread_ts:
            try:
                found = await self._search(
                    client.conversations_replies,
                    record.key,
                    channel=record.channel_id,
                    ts=record.thread_ts,
                    oldest=oldest,
                )
            except SlackApiError as exc:
                if exc.response.get("error") != "thread_not_found":
                    raise
                found = None
            if found is not None:
                return found
        return await self._search(
            client.conversations_history, record.key, channel=record.channel_id, oldest=oldest
        )

    @staticmethod
    async def _search(method: Callable[..., Awaitable[Any]], key: str, **params: Any) -> str | None:
        cursor: str | None = None
        for _ in range(LOOKUP_MAX_PAGES):
            response = await method(
                include_all_metadata=True, limit=LOOKUP_PAGE_SIZE, cursor=cursor, **params
            )
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == DELIVERY_EVENT and payload.get("key") == key:
                    return str(message.get("ts"))
            cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
            if not cursor:
                return None
        return None

    async def _cannot_post(self, client: AsyncWebClient, record: DeliveryRecord, error: str) -> None:
        """The channel is gone for us: stop following there, fail the delivery, tell the requester."""
        extra = {"team": record.team_id, "task_id": record.task_id, "channel": record.channel_id}
        log.warning("cannot post in channel (%s); closing its follow-up", error, extra=extra)
        await self.storage.mark_failed(record.id, f"slack: {error}", retry=False)
        recipient = record.user_id
        if record.subscriber_id is not None:
            await self.storage.close_subscriber(record.subscriber_id, error)
            sentence = alerts.cannot_post_dm(
                channel_id=record.channel_id, task_id=record.task_id, error=error
            )
        else:
            team = self._feeds.get(record.team_id)
            feed = team.feeds.get(record.feed_id) if team is not None and record.feed_id is not None else None
            if feed is not None:
                recipient = feed.user_id
                await self.unsubscribe(team_id=record.team_id, channel_id=record.channel_id)
            sentence = alerts.cannot_post_dm(channel_id=record.channel_id, task_id=None, error=error)
        if not recipient:
            return
        try:
            await client.chat_postMessage(channel=recipient, text=sentence)
        except SlackApiError as exc:
            log.warning("could not DM the requester: %s", exc.response.get("error", "unknown"), extra=extra)
