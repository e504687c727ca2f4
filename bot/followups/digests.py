"""Digests: a channel's summary of the project's finished tasks, at the hour it chose.

Each digest is one ``digest:<id>`` job on a ``CronTrigger`` in the timezone of the person who
set it, armed on the replica that owns the workspace (``bot.followups.shards``) and re-armed from
the table at start and on every shard gained. A run:

1. reads the digest row and asks ``due_run`` which fire time is owed (None: another replica, or
   an earlier attempt, already recorded it);
2. lists the workspace's tasks once for all its digests firing together (``list_window``, the
   feeds' paging rules), and summarizes those that finished in the period;
3. records the run and queues its message in one transaction (``DigestStore.record_run``), so
   the outbox posts it exactly once, whatever crashes after that.

A crash before 3 leaves the run owed: the next start (or the next owner) finds it with
``due_run`` and posts it then, marked late. MetaStudio failing at 2 retries the run with backoff
(``digest-retry:<id>``); the period stays the same, so nothing is lost or counted twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from bot.aio.backoff import backoff_delay
from bot.config import Settings
from bot.db.digests import Cadence, DigestRecord, DigestStore
from bot.followups.digest_schedule import due_run, period_start, summarize, trigger_for
from bot.followups.listing import LIST_CLOCK_SLACK_MS, list_failed, list_window
from bot.followups.shared import Deliver, Jobs, PollCalls
from bot.metastudio.errors import MetaStudioError
from bot.metastudio.models import Task

__all__ = ["LATE_AFTER", "DigestRequest", "Digests"]

log = logging.getLogger("taskbot.followups")

LATE_AFTER: Final = timedelta(minutes=10)
"""A run posted this long after its hour says it is late."""
RETRY_FIRST: Final = 30.0
RETRY_CEILING: Final = 30 * 60.0


@dataclass(frozen=True, slots=True)
class DigestRequest:
    """A channel's digest as ``/task digest`` sets it."""

    team_id: str
    channel_id: str
    user_id: str
    cadence: Cadence
    hour: int
    minute: int
    weekday: int | None
    timezone: str
    quiet: bool
    locale: str | None


@dataclass(frozen=True, slots=True)
class _Listing:
    since: datetime
    until: datetime
    tasks: list[Task]


@dataclass(eq=False, repr=False, kw_only=True)
class Digests:
    store: DigestStore
    deliver: Deliver
    settings: Settings
    calls: PollCalls
    jobs: Jobs
    jitter: Callable[[float], float]
    _armed: dict[str, set[int]] = field(init=False, default_factory=dict)
    """Workspace -> the digest ids whose jobs this replica armed."""
    _retries: dict[int, int] = field(init=False, default_factory=dict)
    _listing_locks: dict[str, asyncio.Lock] = field(init=False, default_factory=dict)
    _listings: dict[str, _Listing] = field(init=False, default_factory=dict)
    """The last list of each workspace, reused by its other digests firing for the same hour."""

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._armed.values())

    def clear(self) -> None:
        self._armed.clear()
        self._listings.clear()
        self._retries.clear()

    # -- commands ------------------------------------------------------------------------------

    async def set(self, request: DigestRequest) -> DigestRecord:
        digest = await self.store.set_digest(
            team_id=request.team_id,
            channel_id=request.channel_id,
            user_id=request.user_id,
            cadence=request.cadence,
            weekday=request.weekday,
            hour=request.hour,
            minute=request.minute,
            timezone=request.timezone,
            quiet=request.quiet,
            locale=request.locale,
        )
        if self.jobs.owns(digest.team_id):
            self._arm(digest)
        return digest

    async def off(self, *, team_id: str, channel_id: str) -> bool:
        digest_id = await self.store.digest_off(team_id=team_id, channel_id=channel_id)
        if digest_id is None:
            return False
        self._disarm(team_id, digest_id)
        return True

    async def close(self, digest_id: int) -> str | None:
        """Remove a digest the bot can no longer post for; whom to tell."""
        digest = await self.store.get_digest(digest_id)
        if digest is not None:
            self._disarm(digest.team_id, digest_id)
        return await self.store.close_digest(digest_id)

    # -- shards ------------------------------------------------------------------------------------

    def sync_team(self, team_id: str, digests: Sequence[DigestRecord]) -> None:
        """Arm the jobs of one owned workspace's digests (and drop those no longer in the table)."""
        wanted = {digest.id for digest in digests}
        for digest_id in self._armed.get(team_id, set()) - wanted:
            self._disarm(team_id, digest_id)
        for digest in digests:
            self._arm(digest)

    def forget_team(self, team_id: str) -> None:
        for digest_id in list(self._armed.get(team_id, ())):
            self._disarm(team_id, digest_id)
        self._listings.pop(team_id, None)

    def _arm(self, digest: DigestRecord) -> None:
        """Arm (or re-arm, with a schedule that may have changed) the digest's job; run at once if owed."""
        now = datetime.fromtimestamp(self.jobs.clock(), UTC)
        self._armed.setdefault(digest.team_id, set()).add(digest.id)
        self.jobs.scheduler.every(
            f"digest:{digest.id}",
            self.run,
            trigger_for(digest),
            args=(digest.id,),
            first=0.0 if due_run(digest, now) is not None else None,
        )

    def _disarm(self, team_id: str, digest_id: int) -> None:
        self._armed.get(team_id, set()).discard(digest_id)
        self.jobs.scheduler.cancel(f"digest:{digest_id}")
        self.jobs.scheduler.cancel(f"digest-retry:{digest_id}")
        self._retries.pop(digest_id, None)

    # -- runs --------------------------------------------------------------------------------------

    async def run(self, digest_id: int) -> None:
        """The ``digest:<id>`` job: post the owed run, if any; retry later while MetaStudio fails."""
        if not await self._run_once(digest_id):
            failures = self._retries.get(digest_id, 0) + 1
            self._retries[digest_id] = failures
            delay = backoff_delay(retries=failures - 1, first=RETRY_FIRST, ceiling=RETRY_CEILING)
            self.jobs.scheduler.once(f"digest-retry:{digest_id}", self.jitter(delay))
        else:
            self._retries.pop(digest_id, None)

    async def retry(self, key: str) -> float | None:
        """The ``digest-retry:<id>`` one-shot job."""
        await self.run(int(key))
        return None

    async def _run_once(self, digest_id: int) -> bool:
        """One attempt; False when it must be tried again later."""
        digest = await self.store.get_digest(digest_id)
        if digest is None or not self.jobs.owns(digest.team_id):
            return True
        now = datetime.fromtimestamp(self.jobs.clock(), UTC)
        fire_at = due_run(digest, now)
        if fire_at is None:
            return True
        since = period_start(digest, fire_at)
        try:
            tasks = await self._listed(digest.team_id, since=since, until=fire_at)
        except asyncio.CancelledError:
            raise
        except MetaStudioError as exc:
            list_failed(
                exc, "digest run failed (%s); will retry", team_id=digest.team_id, channel=digest.channel_id
            )
            return False
        if tasks is None:
            return True
        report = summarize(
            tasks,
            since=since,
            until=fire_at,
            finished_codes=self.settings.finished_codes,
            late=now - fire_at >= LATE_AFTER,
        )
        skip = digest.quiet and report.finished == 0
        delivery = await self.store.record_run(digest, fire_at=fire_at, report=None if skip else report)
        log.info(
            "digest run recorded" if delivery else "digest run skipped",
            extra={"team": digest.team_id, "channel": digest.channel_id},
        )
        if delivery is not None:
            self.deliver(delivery)
        return True

    async def _listed(self, team_id: str, *, since: datetime, until: datetime) -> list[Task] | None:
        """The workspace's tasks that may have finished in ``[since, until)``: one list call for all
        of its digests firing for the same hour (the first lists the widest period any of them needs)."""
        lock = self._listing_locks.setdefault(team_id, asyncio.Lock())
        async with lock:
            cached = self._listings.get(team_id)
            if cached is not None and cached.until == until and cached.since <= since:
                return cached.tasks
            widest = since
            for digest_id in self._armed.get(team_id, ()):
                other = await self.store.get_digest(digest_id)
                if other is not None and due_run(other, until) == until:
                    widest = min(widest, period_start(other, until))
            # A task that finished in the period began before its end; one that began more than
            # the longest watch before the period is not listed (docs: what a digest cannot see).
            begin_ms = int((widest.timestamp() - self.settings.watch_max_hours * 3600) * 1000)
            end_ms = int(until.timestamp() * 1000) + LIST_CLOCK_SLACK_MS
            listed = await list_window(self.calls, team_id, begin_ms=begin_ms, end_ms=end_ms)
            if listed is None:
                return None
            tasks = list(listed.values())
            self._listings[team_id] = _Listing(widest, until, tasks)
            return tasks
