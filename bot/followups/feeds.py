"""Project feeds: a channel hears about every task of the project that finishes after it subscribed.

All feeds of a team share one list poll every ``feed_poll_seconds`` (the ``feed:<team>`` interval
job of ``bot.followups.scheduler``, its interval doubled while MetaStudio fails), filtered server-side only
when every feed of the team filters. A task is announced to a feed only when it provably
finished after the feed began: its ``end_time`` says so, or the feed saw it unfinished after
subscribing. Each (feed, task) is recorded at most once ever (a unique key in the table),
and memory stays bounded by what the list shows. A feed's filters (resources, only tasks that
had failures, only one operator's tasks) are applied before anything is recorded or posted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NotRequired, TypedDict

from bot.aio.backoff import backoff_delay
from bot.config import Settings
from bot.db.deliveries import TaskSnapshot
from bot.db.feeds import FeedRecord, FeedStore
from bot.followups.listing import LIST_CLOCK_SLACK_MS, list_failed, list_window
from bot.followups.polling import PollPolicy
from bot.followups.shared import Deliver, Jobs, PollCalls
from bot.metastudio.errors import MetaStudioError
from bot.metastudio.models import Task

__all__ = ["FeedRequest", "Feeds"]

log = logging.getLogger("taskbot.followups")


class FeedRequest(TypedDict):
    """Which channel subscribes to which tasks of the project: the keywords of ``FollowUps.subscribe``."""

    team_id: str
    channel_id: str
    user_id: str
    resources: Sequence[str]
    only_failed: NotRequired[bool]
    operator: NotRequired[str | None]
    locale: NotRequired[str | None]


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


@dataclass(eq=False, repr=False, kw_only=True)
class Feeds:
    store: FeedStore
    deliver: Deliver
    settings: Settings
    policy: PollPolicy
    calls: PollCalls
    jobs: Jobs
    _teams: dict[str, _FeedTeam] = field(init=False, default_factory=dict)

    def __len__(self) -> int:
        return sum(len(team.feeds) for team in self._teams.values())

    def clear(self) -> None:
        self._teams.clear()

    async def rearm(self) -> None:
        for feed in await self.store.active_feeds():
            self._add(feed)
        for team_id in self._teams:
            self._arm(team_id)

    async def subscribe(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        resources: Sequence[str],
        only_failed: bool = False,
        operator: str | None = None,
        locale: str | None = None,
    ) -> tuple[FeedRecord, bool]:
        wanted = [r.strip() for r in resources if r and r.strip()]
        since = datetime.fromtimestamp(self.jobs.clock(), UTC)
        feed, created = await self.store.subscribe_feed(
            team_id=team_id,
            channel_id=channel_id,
            user_id=user_id,
            resources=wanted,
            since=since,
            only_failed=only_failed,
            operator=(operator or "").strip() or None,
            locale=locale,
        )
        if not self.jobs.owns(team_id):
            # Another replica owns the workspace: it starts polling at its next heartbeat.
            return feed, created
        self._add(feed)
        if not self.jobs.scheduler.busy(f"feed:{team_id}"):
            # Poll now: what is running at this moment is what the feed may announce later.
            self._arm(team_id)
        return feed, created

    async def unsubscribe(self, *, team_id: str, channel_id: str) -> bool:
        removed = await self.store.unsubscribe_feed(team_id=team_id, channel_id=channel_id)
        team = self._teams.get(team_id)
        if team is not None:
            for feed_id, feed in list(team.feeds.items()):
                if feed.channel_id == channel_id:
                    del team.feeds[feed_id]
            if not team.feeds:
                self.jobs.scheduler.cancel(f"feed:{team_id}")
                del self._teams[team_id]
        return removed

    async def close(self, team_id: str, feed_id: int, channel_id: str) -> str | None:
        """Close a feed the bot can no longer post to; returns whom to tell."""
        team = self._teams.get(team_id)
        feed = team.feeds.get(feed_id) if team is not None else None
        if feed is None:
            return None
        await self.unsubscribe(team_id=team_id, channel_id=channel_id)
        return feed.user_id

    def forget_team(self, team_id: str) -> None:
        if self._teams.pop(team_id, None) is not None:
            self.jobs.scheduler.cancel(f"feed:{team_id}")

    def sync_team(self, team_id: str, feeds: Sequence[FeedRecord]) -> None:
        """Make this replica's feed poll of one owned workspace match its active feeds."""
        if not feeds:
            self.forget_team(team_id)
            return
        team = self._teams.get(team_id)
        if team is not None:
            wanted = {feed.id for feed in feeds}
            for feed_id in [f for f in team.feeds if f not in wanted]:
                del team.feeds[feed_id]
        for feed in feeds:
            self._add(feed)
        if not self.jobs.scheduler.busy(f"feed:{team_id}"):
            self._arm(team_id)

    def _arm(self, team_id: str) -> None:
        """The team's list poll: now, then every ``feed_poll_seconds``."""
        interval = self.settings.feed_poll_seconds
        self.jobs.scheduler.every(
            f"feed:{team_id}", self.poll, interval, args=[team_id], first=0.0, jitter=self._jitter(interval)
        )

    def _jitter(self, interval: float) -> float:
        return self.policy.jitter * interval

    def _add(self, feed: FeedRecord) -> None:
        team = self._teams.get(feed.team_id)
        if team is None:
            team = self._teams[feed.team_id] = _FeedTeam(interval=self.settings.feed_poll_seconds)
        for feed_id, existing in list(team.feeds.items()):
            if existing.channel_id == feed.channel_id and feed_id != feed.id:
                del team.feeds[feed_id]
        team.feeds[feed.id] = feed

    async def poll(self, team_id: str) -> None:
        """The ``feed:<team>`` job."""
        team = self._teams.get(team_id)
        if team is None or not team.feeds:
            return
        if not self.jobs.owns(team_id):
            self.forget_team(team_id)
            return
        base = self.settings.feed_poll_seconds
        ceiling = max(base, self.settings.max_poll_seconds)
        previous = team.interval
        try:
            await self._poll_once(team_id, team)
            team.interval = base
        except asyncio.CancelledError:
            raise
        except MetaStudioError as exc:
            team.interval = backoff_delay(retries=1, first=max(team.interval, base), ceiling=ceiling)
            if exc.retry_after:
                team.interval = max(team.interval, exc.retry_after)
            list_failed(exc, "feed poll failed (%s), next in %.1f s", team.interval, team_id=team_id)
        except Exception:
            team.interval = backoff_delay(retries=1, first=max(team.interval, base), ceiling=ceiling)
            log.exception("feed poll failed", extra={"team": team_id})
        if team.interval != previous and self._teams.get(team_id) is team:
            # Backing off while MetaStudio fails, or back to the usual interval.
            self.jobs.scheduler.reschedule(
                f"feed:{team_id}", team.interval, jitter=self._jitter(team.interval)
            )

    async def _poll_once(self, team_id: str, team: _FeedTeam) -> None:
        feeds = list(team.feeds.values())
        # One list call serves every feed of the team: filter server-side only if all feeds filter.
        if all(feed.resources for feed in feeds):
            resources: tuple[str, ...] = tuple(sorted({r for feed in feeds for r in feed.resources}))
        else:
            resources = ()
        oldest_since_ms = min(feed.since.timestamp() for feed in feeds) * 1000
        # begin_time/end_time (SearchTask's own filters, epoch ms) keep each poll small: tasks that
        # began within the longest follow-up window, or earlier if still running at the last poll.
        now_ms = int(self.jobs.clock() * 1000)
        window_start = now_ms - int(self.settings.watch_max_hours * 3600 * 1000)
        if team.running_begin_ms is not None:
            window_start = min(window_start, team.running_begin_ms)

        def relevant(page: list[Task]) -> bool:
            # Newest first: once a whole page holds only tasks that ended before every feed
            # began, older pages cannot hold anything to announce.
            return any(
                not task.is_finished(self.settings.finished_codes)
                or task.task_id in team.last_seen_running
                or (task.end_time is not None and task.end_time >= oldest_since_ms)
                for task in page
            )

        listed = await list_window(
            self.calls,
            team_id,
            begin_ms=window_start,
            end_ms=now_ms + LIST_CLOCK_SLACK_MS,
            resources=resources,
            more_wanted=relevant,
        )
        if listed is None:
            return
        now = self.jobs.clock()
        running_begins = [
            t.begin_time
            for t in listed.values()
            if t.begin_time and not t.is_finished(self.settings.finished_codes)
        ]
        team.running_begin_ms = min(running_begins) if running_begins else None
        for task in listed.values():
            if not task.is_finished(self.settings.finished_codes):
                team.last_seen_running[task.task_id] = now
                continue
            for feed in feeds:
                if (feed.id, task.task_id) in team.recorded or feed.id not in team.feeds:
                    continue
                if not _wanted(feed, task):
                    continue
                if not self._finished_after(task, feed, team):
                    continue
                delivery = await self.store.record_feed_delivery(
                    feed, task_id=task.task_id, snapshot=TaskSnapshot(task=task)
                )
                team.recorded.add((feed.id, task.task_id))
                if delivery is not None:
                    log.info(
                        "feed announces task",
                        extra={"team": team_id, "task_id": task.task_id, "channel": feed.channel_id},
                    )
                    self.deliver(delivery)
            team.last_seen_running.pop(task.task_id, None)
        team.recorded = {(f, t) for f, t in team.recorded if t in listed}
        team.last_seen_running = {t: at for t, at in team.last_seen_running.items() if t in listed}

    @staticmethod
    def _finished_after(task: Task, feed: FeedRecord, team: _FeedTeam) -> bool:
        """Whether the task finished after the feed began (so it may be announced)."""
        since = feed.since.timestamp()
        if task.end_time is not None:
            return task.end_time >= since * 1000
        # No end time: only a task we saw unfinished after the subscription provably ended after it.
        seen = team.last_seen_running.get(task.task_id)
        return seen is not None and seen >= since


def _wanted(feed: FeedRecord, task: Task) -> bool:
    """Whether the feed's filters let ``task`` through."""
    if feed.resources and task.resource not in feed.resources:
        return False
    if feed.only_failed and task.failure_count <= 0:
        return False
    return not (feed.operator and task.operator != feed.operator)
