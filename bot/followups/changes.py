"""The workspace's list call as a change detector for its watches.

A watch planned by its estimate alone may wait minutes (up to ``max_poll_seconds``) while its
task ends early, usually because it failed. One list call (``SearchTask``, newest first) per
workspace every ``PollPolicy.list_seconds`` serves every watch in it, and a row is as fresh as a
poll. ``detect`` (pure) sorts the workspace's watches by what one sweep's rows show:

* **poll now**: the row shows the task ended, restarted, moving again after quiet polls, or
  running ahead of its estimate so that it ends before the planned poll (``listed_due``);
* **fold**: any other row is a free observation: the watch's cadence takes it and its next
  poll is planned from it, within the listed ceiling (``max_poll_seconds``);
* **unlisted**: the watch was not on the pages fetched (the list is newest first, so a long
  task falls off as newer ones arrive), or the sweep failed: its next poll comes within the
  unlisted ceiling (``polling.UNLISTED_CEILING``).

``ListSweeps.sweep(team_id)`` is one sweep: it reads the list through ``listing.list_window``
(the feeds' and digests' list call: the same limiter, poll slots and paging rules; another page
only while ``more_pages`` says one pays) and hands ``detect``'s result to
``Watches.apply_changes``. It is the ``changes:<team>`` interval job, every ``list_seconds``
(±10%). ``ListSweeps.sync`` keeps that job armed exactly while the workspace is owned here and
has ``sweep_wanted`` running watches (two or more): the watches tell it their count each time it
changes. With fewer, a watch alone is polled as cheaply as listed.

May import what ``bot.followups`` may.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.followups.listing import list_failed, list_window
from bot.followups.polling import Cadence, PollPolicy, listed_due, more_pages, sweep_wanted
from bot.followups.shared import Jobs, PollCalls
from bot.metastudio.errors import MetaStudioError
from bot.metastudio.models import Task

__all__ = ["Changes", "ListSweeps", "WatchPlan", "Watched", "detect", "sweep_job"]

log = logging.getLogger("taskbot.followups")


def sweep_job(team_id: str) -> str:
    """The id of the workspace's sweep job on the follow-ups' clock."""
    return f"changes:{team_id}"


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """What the detector needs to know of one running watch."""

    watch_id: int
    task_id: str
    cadence: Cadence
    next_poll_at: float
    """When its next poll is planned, on the watches' clock."""
    listed: bool
    """Whether the last sweep showed it."""


@dataclass(frozen=True, slots=True)
class Changes:
    """What one sweep means for the workspace's watches."""

    now: float
    poll_now: tuple[int, ...] = ()
    """Watch ids whose row calls for a poll at once."""
    fold: tuple[tuple[int, Task], ...] = ()
    """(watch id, its row): a free observation, folded into the cadence with the listed ceiling."""
    unlisted: tuple[int, ...] = ()
    """Watch ids the sweep did not show (or every watch, when the sweep failed)."""


def detect(
    plans: Iterable[WatchPlan],
    rows: Sequence[Task],
    *,
    now: float,
    finished_codes: frozenset[str] = frozenset(),
) -> Changes:
    """Sort the watches by what one sweep's ``rows`` show of their tasks."""
    by_task = {row.task_id: row for row in rows}
    poll_now: list[int] = []
    fold: list[tuple[int, Task]] = []
    unlisted: list[int] = []
    for plan in plans:
        row = by_task.get(plan.task_id)
        if row is None:
            unlisted.append(plan.watch_id)
        elif listed_due(
            plan.cadence,
            now=now,
            next_poll_at=plan.next_poll_at,
            processed=row.processed_count,
            total=row.total_count,
            finished=row.is_finished(finished_codes),
        ):
            poll_now.append(plan.watch_id)
        else:
            fold.append((plan.watch_id, row))
    return Changes(now=now, poll_now=tuple(poll_now), fold=tuple(fold), unlisted=tuple(unlisted))


class Watched(Protocol):
    """What a sweep needs of the watches (``bot.followups.watches.Watches``)."""

    def plans(self, team_id: str) -> list[WatchPlan]: ...

    def apply_changes(self, changes: Changes) -> None: ...


@dataclass(eq=False, repr=False, kw_only=True)
class ListSweeps:
    """One list sweep per workspace: the ``changes:<team>`` job, every ``policy.list_seconds``."""

    watches: Watched
    finished_codes: frozenset[str]
    policy: PollPolicy
    calls: PollCalls
    jobs: Jobs

    def sync(self, team_id: str, running: int) -> None:
        """The workspace now has ``running`` running watches: arm its sweep job, or cancel it.

        Armed only when there is none pending, so watches coming and going do not put the next
        sweep off; the first sweep comes one interval after the job is armed (the watches' own
        first polls are due sooner anyway). Cancelled below two watches, and then the watch left
        goes back to the unlisted ceiling, as after a failed sweep.
        """
        job_id = sweep_job(team_id)
        scheduler = self.jobs.scheduler
        if not self.jobs.owns(team_id):
            scheduler.cancel(job_id)
        elif not sweep_wanted(self.policy, running):
            if scheduler.pending(job_id):
                scheduler.cancel(job_id)
                # No sweep is coming: a watch the last one showed must not wait for the next.
                plans = self.watches.plans(team_id)
                unlisted = tuple(plan.watch_id for plan in plans if plan.listed)
                if unlisted:
                    self.watches.apply_changes(Changes(now=self.jobs.clock(), unlisted=unlisted))
        elif not scheduler.pending(job_id):
            seconds = self.policy.list_seconds
            scheduler.every(job_id, self.sweep, seconds, args=(team_id,), jitter=self.policy.jitter * seconds)

    def forget_team(self, team_id: str) -> None:
        self.jobs.scheduler.cancel(sweep_job(team_id))

    async def sweep(self, team_id: str) -> Changes:
        """Fetch the list, detect, and apply the result to the workspace's watches."""
        now = self.jobs.clock()
        if not self.jobs.owns(team_id):
            # The shard moved: its new owner sweeps; the watches here are being forgotten.
            self.forget_team(team_id)
            return Changes(now=now)
        plans = self.watches.plans(team_id)
        rows: list[Task] = []
        if sweep_wanted(self.policy, len(plans)):
            try:
                fetched = await self.fetch(team_id, {plan.task_id for plan in plans})
            except asyncio.CancelledError:
                raise
            except MetaStudioError as exc:
                # No list this time: nobody may wait for it, so every watch falls back to its own polls.
                list_failed(exc, "list sweep failed (%s)", team_id=team_id)
            except Exception:
                log.exception("list sweep failed", extra={"team": team_id})
            else:
                if fetched is None:
                    return Changes(now=now)  # stopping
                rows = fetched
        # The watches may have moved while the pages were fetched: detect against the latest plans.
        latest = self.watches.plans(team_id)
        now = self.jobs.clock()
        if not sweep_wanted(self.policy, len(latest)):
            # Too few watches left for the next sweep to come (``sync`` cancels it): no row may
            # put a poll off.
            changes = Changes(now=now, unlisted=tuple(plan.watch_id for plan in latest))
        else:
            changes = detect(latest, rows, now=now, finished_codes=self.finished_codes)
        self.watches.apply_changes(changes)
        return changes

    async def fetch(self, team_id: str, watched: Collection[str]) -> list[Task] | None:
        """The list's rows, newest first, page after page while ``more_pages`` says one pays; None
        when the follow-ups are stopping."""
        unseen = set(watched)
        pages = 0

        def more_wanted(page: list[Task]) -> bool:
            nonlocal pages
            pages += 1
            unseen.difference_update(task.task_id for task in page)
            return more_pages(self.policy, pages=pages, page_full=True, unseen=len(unseen))

        listed = await list_window(
            self.calls,
            team_id,
            more_wanted=more_wanted,
            max_pages=self.policy.list_max_pages,
            on_call=self._count_call,
        )
        return None if listed is None else list(listed.values())

    def _count_call(self) -> None:
        self.calls.stats.list_pages += 1
