"""Follow-ups: channels watch a task and are told exactly once when it finishes.

``FollowUps`` is the facade the use cases call. Behind it, one module per concern:

* ``scheduler``: the clock, APScheduler's ``AsyncIOScheduler`` with a job per watch, feed,
  delivery retry and lease heartbeat, and the tracked background tasks that ``stop()`` drains;
* ``watches``: the watch state machine (polls, expiry, not-found, stalls) and live cards;
* ``feeds``: project feeds, one list poll per team;
* ``changes``: the watches' change detector, one list sweep per workspace;
* ``digests`` and ``digest_schedule``: a channel's scheduled summary, a cron job per digest;
* ``listing``: the project list call as feeds and digests make it (paging, caps, fairness);
* ``outbox``: the exactly-once delivery protocol, reviewable on its own;
* ``shards``: which replica owns which workspaces (leases with heartbeats);
* ``polling``: when to poll next, as pure functions (fair slots per team: ``bot.aio.fairness``);
* ``shared``: the groups of collaborators several parts take (``Jobs``: scheduler, clock and
  shard ownership; ``PollCalls``: the way a poll reaches MetaStudio; ``Deliver``), the backlog
  gate and the counters.

Each part takes, as keyword arguments, only the collaborators it uses; ``FollowUps.__init__`` is
the one place that wires them.

May import ``bot.aio``, ``bot.config``, ``bot.messages``, ``bot.metrics``, ``bot.db``,
``bot.metastudio`` and ``bot.slack``'s builders and ``Poster`` interface; never ``bot.services``,
``handlers`` or the dev tools. Slack is reached only through the ``Poster`` passed in.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final, Unpack

from bot.aio.fairness import FairSlots
from bot.aio.ratelimit import PriorityRateLimiter, RateLimiters
from bot.config import Settings
from bot.db.deliveries import DeliveryStore
from bot.db.digests import DigestRecord, DigestStore
from bot.db.feeds import FeedRecord, FeedStore
from bot.db.followups import ChannelWatch, FollowUpStore, WatchResult
from bot.db.leases import LeaseStore
from bot.followups.changes import ListSweeps
from bot.followups.digests import DigestRequest, Digests
from bot.followups.feeds import FeedRequest, Feeds
from bot.followups.outbox import DELIVERY_CONCURRENCY, Closers, Outbox
from bot.followups.polling import PollPolicy
from bot.followups.scheduler import Scheduler
from bot.followups.shards import Shards
from bot.followups.shared import Backlog, FollowUpStats, Jobs, PollCalls
from bot.followups.watches import Watches, WatchRequest
from bot.metastudio.client import MetaStudioClient
from bot.slack.ids import DELIVERY_EVENT
from bot.slack.poster import Poster

__all__ = ["DELIVERY_EVENT", "POLL_CONCURRENCY", "FollowUps"]

log = logging.getLogger("taskbot.followups")

STOP_TIMEOUT: Final = 10.0
# Closes and alerts in progress beyond which polls wait for them (see Backlog).
BACKLOG_LIMIT: Final = 2 * DELIVERY_CONCURRENCY
# Polls (of watches and feeds) in flight at once for one workspace: each holds one of its
# MetaStudio client's 50 pooled connections (kept alive between polls), so the rest are left to
# commands.
POLL_CONCURRENCY: Final = 8
# Multi-workspace mode: polls of all workspaces together, and of one workspace. A workspace
# whose endpoint hangs holds its own POLL_PER_TEAM_MULTI slots, never the others' (FairSlots).
POLL_TOTAL_MULTI: Final = 32
POLL_PER_TEAM_MULTI: Final = 4


async def _no_wait() -> None:
    return None


class _Counter:
    """A read-only attribute of ``FollowUps`` that reads the ``FollowUpStats`` counter of its name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, engine: FollowUps | None, owner: type | None = None) -> int:
        if engine is None:
            raise AttributeError(self._name)  # an instance's counter, not the class's
        value: int = getattr(engine.stats, self._name)
        return value


class FollowUps:
    """The follow-up engine. ``start()`` once the event loop runs; ``stop()`` before exit."""

    def __init__(
        self,
        settings: Settings,
        storage: FollowUpStore,
        *,
        metastudio_for: Callable[[str], Awaitable[MetaStudioClient]],
        poster: Poster,
        limiter: PriorityRateLimiter | None = None,
        limiters: RateLimiters | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        yield_to_requests: Callable[[], Awaitable[None]] | None = None,
        digest_store: DigestStore | None = None,
        policy: PollPolicy | None = None,
    ) -> None:
        """``policy``: the poll policy, by default the one ``settings`` give
        (``PollPolicy.from_intervals``); benchmarks and tests may set its sweep knobs."""
        self.settings = settings
        self.storage = storage
        self._limiter = limiter
        self._limiters = limiters or RateLimiters(settings.api_rate)
        self._rng = rng or random.Random()
        self.policy = policy = policy or PollPolicy.from_intervals(
            settings.poll_seconds, settings.max_poll_seconds
        )
        self.stats = stats = FollowUpStats()
        self._departed: set[str] = set()
        self.scheduler = Scheduler()
        backlog = Backlog(BACKLOG_LIMIT)
        # Background work waits here before each poll, redraw and alert, so a burst of Slack
        # requests is acknowledged first (the services pass their AckFirst gate).
        gate = yield_to_requests or _no_wait

        def jitter(delay: float) -> float:
            return policy.jittered(delay, self._rng)

        # Shard leases on PostgreSQL: each workspace is polled by one replica (bot.followups.shards).
        leases = None if storage.database.is_sqlite else LeaseStore(storage.database)
        self.shards = Shards(
            leases,
            seconds=settings.lease_seconds,
            on_gain=self._gain,
            on_lose=self._lose,
            on_sync=self._sync,
            scheduler=self.scheduler,
        )
        jobs = Jobs(scheduler=self.scheduler, clock=clock, owns=self.shards.owns)
        calls = PollCalls(
            metastudio_for=metastudio_for,
            limiter_for=self.limiter_for,
            # One workspace: its polls may use every slot. Several: each is capped (fairness.py).
            poll_slots=(
                FairSlots(total=POLL_TOTAL_MULTI, per_team=POLL_PER_TEAM_MULTI)
                if settings.multi_workspace
                else FairSlots(total=POLL_CONCURRENCY, per_team=POLL_CONCURRENCY)
            ),
            backlog=backlog,
            yield_to_requests=gate,
            stopping=lambda: self.scheduler.stopping,
            stats=stats,
        )
        self.deliveries = deliveries = DeliveryStore(storage.database)
        self.outbox = Outbox(
            deliveries=deliveries,
            poster=poster,
            close=Closers(
                subscriber=storage.close_subscriber, feed=self._close_feed, digest=self._close_digest
            ),
            settings=settings,
            policy=policy,
            jobs=jobs,
            jitter=jitter,
            backlog=backlog,
            yield_to_requests=gate,
            stats=stats,
        )
        deliver = self.outbox.start
        self.watches = Watches(
            storage=storage,
            calls=calls,
            poster=poster,
            deliver=deliver,
            settings=settings,
            policy=policy,
            jobs=jobs,
            jitter=jitter,
            on_running=self._running_changed,
        )
        feeds = FeedStore(storage.database)
        self.feeds = Feeds(
            store=feeds, deliver=deliver, settings=settings, policy=policy, calls=calls, jobs=jobs
        )
        # The watches' change detector: one list call per workspace serves all its watches. Its
        # ``changes:<team>`` job follows the workspace's count of running watches (``_running_changed``).
        self.sweeps = ListSweeps(
            watches=self.watches,
            finished_codes=settings.finished_codes,
            policy=policy,
            calls=calls,
            jobs=jobs,
        )
        digests = digest_store or DigestStore(storage.database)
        self.digests = Digests(
            store=digests, deliver=deliver, settings=settings, calls=calls, jobs=jobs, jitter=jitter
        )
        self.scheduler.on("digest-retry", self.digests.retry)
        self.scheduler.on("watch", self.watches.poll)
        self.scheduler.on("delivery", self.outbox.retry)

    # -- counters ------------------------------------------------------------------------------

    polls = _Counter()
    feed_polls = _Counter()
    card_updates = _Counter()
    delivered = _Counter()

    # -- lifecycle -----------------------------------------------------------------------------

    def limiter_for(self, team_id: str) -> PriorityRateLimiter:
        """The limiter of the team's MetaStudio project; commands take ``Priority.COMMAND`` here."""
        return self._limiter if self._limiter is not None else self._limiters.get(team_id)

    @property
    def running(self) -> bool:
        return self.scheduler.running

    async def start(self) -> None:
        """Start the scheduler, arm every active watch's and feed's job, resume owed deliveries."""
        if self.running:
            return
        self.scheduler.start()
        self.outbox.active = True
        if self.shards.leased:
            await self.shards.start()
            return
        await self.watches.rearm(self._rng.uniform)
        await self.feeds.rearm()
        digests = await self.digests.store.active_digests()
        for team_id in {digest.team_id for digest in digests}:
            self.digests.sync_team(team_id, [d for d in digests if d.team_id == team_id])
        await self._resume("follow-ups started")

    async def stop(self, grace: float = STOP_TIMEOUT) -> None:
        """Stop the scheduler and polls; let in-flight deliveries finish (at most ``grace`` seconds)."""
        if not self.scheduler.started:
            return
        # Leases first: the next owner starts at its next heartbeat while our deliveries finish.
        await self.shards.stop()
        await self.scheduler.stop(grace)
        self.outbox.active = False
        self.watches.clear()
        self.feeds.clear()
        self.digests.clear()

    # -- watches -------------------------------------------------------------------------------

    def _running_changed(self, team_id: str, running: int) -> None:
        """A workspace's count of running watches changed: its sweep job runs while it is 2 or more.

        Covers every place its watches are armed or dropped: ``start``, a shard gained or synced,
        a watch created, closed, expired or unwatched, a shard lost, a workspace forgotten.
        """
        self.sweeps.sync(team_id, running)

    async def watch(self, **request: Unpack[WatchRequest]) -> WatchResult:
        """Make ``channel_id`` hear once when the task finishes; ``message_ts`` is its card, kept live.

        Watching again from the same channel returns ``created=False``; a new ``message_ts``
        then replaces the old one, so the newest card is the one kept up to date. ``locale`` is
        the channel's language, kept by the card and its alert for the watch's whole life.
        With ``step_expires_at`` the subscriber is a Workflow Builder step whose ``channel_id``
        is its function execution id: the outbox completes it when the watch ends for it.
        """
        self._departed.discard(request["team_id"])
        result = await self.watches.watch(**request)
        if result.created:
            await self.shards.announce(request["team_id"])
        log.info(
            "watching task" if result.created else "already watching task",
            extra={
                "team": request["team_id"],
                "task_id": request["task_id"],
                "channel": request["channel_id"],
                "user": request["user_id"],
            },
        )
        return result

    async def set_card_ts(self, subscriber_id: int, message_ts: str) -> None:
        """Record the card a subscriber's channel shows, when it is posted after ``watch()``."""
        await self.watches.set_card_ts(subscriber_id, message_ts)

    async def unwatch(self, *, team_id: str, task_id: str, channel_id: str) -> bool:
        """Stop telling ``channel_id`` about the task. False when it was not watching it."""
        return await self.watches.unwatch(team_id=team_id, task_id=task_id, channel_id=channel_id)

    async def watching(
        self, *, team_id: str, channel_id: str
    ) -> tuple[list[ChannelWatch], FeedRecord | None]:
        """What the channel follows: its watched tasks, oldest first, and its feed if any."""
        watches = await self.storage.channel_watches(team_id=team_id, channel_id=channel_id)
        feed = await self.feeds.store.channel_feed(team_id=team_id, channel_id=channel_id)
        return watches, feed

    # -- feeds ---------------------------------------------------------------------------------

    async def subscribe(self, **request: Unpack[FeedRequest]) -> tuple[FeedRecord, bool]:
        """Announce in ``channel_id`` every task that finishes from now on (only ``resources``, if given).

        Subscribing again changes the filter but never replays what finished in between.
        """
        self._departed.discard(request["team_id"])
        feed, created = await self.feeds.subscribe(**request)
        if created:
            await self.shards.announce(request["team_id"])
        log.info(
            "feed subscribed" if created else "feed updated",
            extra={"team": request["team_id"], "channel": request["channel_id"]},
        )
        return feed, created

    async def unsubscribe(self, *, team_id: str, channel_id: str) -> bool:
        return await self.feeds.unsubscribe(team_id=team_id, channel_id=channel_id)

    async def _close_feed(self, team_id: str, feed_id: int, channel_id: str) -> str | None:
        return await self.feeds.close(team_id, feed_id, channel_id)

    # -- digests -------------------------------------------------------------------------------

    async def set_digest(self, request: DigestRequest) -> DigestRecord:
        """Give the channel a digest at the hour it chose (replacing its schedule if it had one)."""
        digest = await self.digests.set(request)
        await self.shards.announce(request.team_id)
        log.info("digest set", extra={"team": request.team_id, "channel": request.channel_id})
        return digest

    async def digest_off(self, *, team_id: str, channel_id: str) -> bool:
        return await self.digests.off(team_id=team_id, channel_id=channel_id)

    async def channel_digest(self, *, team_id: str, channel_id: str) -> DigestRecord | None:
        return await self.digests.store.channel_digest(team_id=team_id, channel_id=channel_id)

    async def _close_digest(self, digest_id: int) -> str | None:
        return await self.digests.close(digest_id)

    # -- shards --------------------------------------------------------------------------------

    async def _gain(self, team_ids: set[str]) -> None:
        """Shards just leased: arm their jobs from the tables, first polls spread over one interval."""
        await self._rearm_teams(team_ids, lambda: self._rng.uniform(0, self.policy.base))
        await self._resume("shards re-armed", team_ids)

    async def _resume(self, event: str, team_ids: set[str] | None = None) -> None:
        """Start every delivery still owed (only these workspaces' if given), then log what is armed."""
        pending = await self.deliveries.pending_deliveries(team_ids)
        for delivery in pending:
            self.outbox.start(delivery)
        log.info(
            "%s: %d watches, %d feeds, %d deliveries owed",
            event,
            len(self.watches),
            len(self.feeds),
            len(pending),
            extra={} if team_ids is None else {"teams": sorted(team_ids)},
        )

    async def _sync(self, team_ids: set[str]) -> None:
        """Shards kept: pick up watches, feeds and owed deliveries other replicas left since the last heartbeat.

        A delivery is owed here when a replica that had lost the shard closed a watch in flight:
        it does not deliver (``Outbox``), so the owner does, within one heartbeat.
        """
        await self._rearm_teams(team_ids, lambda: self._rng.uniform(0, min(1.0, self.policy.base)))
        pending = await self.deliveries.pending_deliveries(team_ids)
        self.outbox.resume(d for d in pending if self.shards.owns(d.team_id))

    async def _rearm_teams(self, team_ids: set[str], first_delay: Callable[[], float]) -> None:
        watches = await self.storage.active_watches(team_ids)
        feeds = await self.feeds.store.active_feeds(team_ids)
        digests = await self.digests.store.active_digests(team_ids)
        jobs: list[tuple[str, float]] = []
        for team_id in team_ids:
            if not self.shards.owns(team_id) or team_id in self._departed:
                continue
            team_watches = [w for w in watches if w.team_id == team_id]
            jobs += self.watches.sync_team(team_id, team_watches, first_delay)
            self.feeds.sync_team(team_id, [f for f in feeds if f.team_id == team_id])
            self.digests.sync_team(team_id, [d for d in digests if d.team_id == team_id])
        await self.scheduler.arm(jobs)

    def _lose(self, team_ids: set[str]) -> None:
        for team_id in team_ids:
            self.watches.forget_team(team_id)
            self.sweeps.forget_team(team_id)
            self.feeds.forget_team(team_id)
            self.digests.forget_team(team_id)
            self.outbox.forget_team(team_id)

    async def forget_team(self, team_id: str) -> None:
        """Remove every job of a workspace that uninstalled; its rows are deleted by the caller.

        Until it watches or subscribes again (a new install), a heartbeat that read its rows
        before they were deleted does not re-arm them.
        """
        self._departed.add(team_id)
        self.watches.forget_team(team_id)
        self.sweeps.forget_team(team_id)
        self.feeds.forget_team(team_id)
        self.digests.forget_team(team_id)
