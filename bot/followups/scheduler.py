"""The clock of the follow-ups: one APScheduler 3 ``AsyncIOScheduler`` with its in-memory job store.

Every wait of the follow-ups is a job with an id of its own:

* ``watch:<id>``: the watch's polls. A one-shot ``DateTrigger`` job whose run is the poll
  itself. The poll returns the delay before the next one (the poll policy's, never past the
  watch's expiry, so the expiry is a run of the same job), and the job is armed again with it
  once the run has ended (``_ended``, an ``EVENT_JOB_EXECUTED`` listener). Re-arming from inside
  the run would not do: the run still counts towards ``max_instances``, so a job due at once
  would be skipped, and a skipped one-shot job is gone, its watch with it. (A one-shot job
  armed from elsewhere that comes due during a run is skipped too; it runs once that run ends.)
* ``feed:<team>``: the workspace's list poll, an ``IntervalTrigger`` job, rescheduled with a
  longer interval while MetaStudio fails.
* ``changes:<team>``: the workspace's list sweep, the watches' change detector
  (``bot.followups.changes``), an ``IntervalTrigger`` job every ``PollPolicy.list_seconds``
  (±10%), armed while the workspace has two running watches or more;
* ``delivery:<id>``: one delivery's retry after its backoff, a one-shot job.
* ``digest:<id>``: a channel's digest, a ``CronTrigger`` job in the timezone of whoever set it
  (``bot.followups.digests``).
* ``lease:heartbeat`` and ``lease:probe``: the shard lease heartbeat and the one-second probe
  between heartbeats (``bot.followups.shards``), both interval jobs.

Job defaults, for every job:

* ``misfire_grace_time=None``: a job runs however late it is. With APScheduler's default of
  1 s, a one-shot job whose run comes more than a second late (a busy loop, a suspended
  process) is dropped without a word, and the watch it polls is never polled again;
* ``coalesce=True``: runs missed while the loop was busy make one run, not a burst;
* ``max_instances=1``: a job never runs twice at once, so one watch is never polled twice at
  once, and a slow feed poll skips the interval it overran instead of overlapping it.

The memory store is only the timer: the tables are the record, and the follow-ups arm every
job again from them at start (a crash loses no alert, only the timers). Closes, card redraws
and deliveries are not job runs but tracked tasks (``spawn_work``): ``stop()`` cancels the polls
at once and lets that work finish within a grace period, so SIGTERM never cuts an alert in half.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

__all__ = ["JOB_DEFAULTS", "Scheduler"]

log = logging.getLogger("taskbot.followups")

JOB_DEFAULTS: Final = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
ARM_CHUNK: Final = 100
"""One-shot jobs armed per turn of the event loop by ``arm``."""

Rearmed = Callable[[str], Awaitable[float | None]]
"""A one-shot job of one kind, called with its key: the delay before its next run, or None."""


class Scheduler:
    """The follow-ups' jobs on APScheduler, and the tracked work that ``stop()`` drains."""

    def __init__(self) -> None:
        self._scheduler: AsyncIOScheduler | None = None
        self.stopping = False
        self._kinds: dict[str, Callable[[str], Awaitable[Any]]] = {}
        self._submitted_ids: set[str] = set()
        """Ids of the jobs submitted to run whose run has not ended."""
        self._idle = asyncio.Event()
        """Set while no run is submitted."""
        self._idle.set()
        self._skipped: set[str] = set()
        """One-shot jobs that came due while their last run was still running (``max_instances``)."""
        self._runs: set[asyncio.Task[Any]] = set()
        """The runs in progress, which stop() cancels."""
        self._work: set[asyncio.Task[Any]] = set()

    def on(self, kind: str, run: Rearmed) -> None:
        """``<kind>:<key>`` one-shot jobs run ``run(key)``, armed again with the delay it returns."""
        self._kinds[kind] = self._job(run)

    @property
    def running(self) -> bool:
        return self._scheduler is not None and not self.stopping

    @property
    def started(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        self.stopping = False
        scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=dict(JOB_DEFAULTS))
        scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        scheduler.add_listener(self._skip, EVENT_JOB_MAX_INSTANCES)
        scheduler.add_listener(self._ended, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self, grace: float) -> None:
        """Remove every job, cancel the runs in progress (polls), let other work finish for at most ``grace`` s."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        self.stopping = True
        scheduler.pause()
        scheduler.remove_all_jobs()
        runs = set(self._runs)
        for run in runs:
            run.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # A close in flight may queue deliveries while we wait: wait for those too. Runs
        # submitted but not started yet return at once (``_job``); wait for them as well, since
        # shutting down would cancel them before they start, which APScheduler logs as an error.
        while self._work or self._submitted_ids:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            waiters: set[asyncio.Future[Any]] = set(self._work)
            idle = asyncio.ensure_future(self._idle.wait()) if self._submitted_ids else None
            if idle is not None:
                waiters.add(idle)
            await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if idle is not None:
                idle.cancel()
        leftovers = set(self._work)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*runs, *leftovers, return_exceptions=True)
        if leftovers:
            log.warning(
                "stopped with %d follow-up tasks unfinished; they resume at the next start", len(leftovers)
            )
        self._scheduler = None
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # AsyncIOScheduler shuts down at the loop's next turn
        self._submitted_ids.clear()
        self._skipped.clear()
        self._idle.set()

    # -- jobs ----------------------------------------------------------------------------------

    def once(self, job_id: str, delay: float) -> None:
        """Run the ``<kind>:<key>`` job once, ``delay`` seconds from now, replacing its pending run."""
        if not self.running:
            return
        assert self._scheduler is not None
        kind, _, key = job_id.partition(":")
        self._scheduler.add_job(
            self._kinds[kind],
            DateTrigger(run_date=_after(delay), timezone=UTC),
            args=(key,),
            id=job_id,
            replace_existing=True,
        )

    def every(
        self,
        job_id: str,
        run: Callable[..., Awaitable[Any]],
        interval: float | BaseTrigger,
        *,
        args: Sequence[Any] = (),
        first: float | None = None,
        jitter: float = 0.0,
    ) -> None:
        """Run ``run(*args)`` every ``interval``: seconds (give or take ``jitter``), or each fire time
        of a trigger (a digest's ``CronTrigger``). The first run comes in ``first`` seconds if given,
        else when the interval or the trigger says."""
        if not self.running:
            return
        assert self._scheduler is not None
        trigger = (
            interval
            if isinstance(interval, BaseTrigger)
            else IntervalTrigger(seconds=interval, jitter=jitter or None, timezone=UTC)
        )
        first_run: dict[str, Any] = {} if first is None else {"next_run_time": _after(first)}
        self._scheduler.add_job(
            self._job(run), trigger, args=args, id=job_id, replace_existing=True, **first_run
        )

    def reschedule(self, job_id: str, seconds: float, *, jitter: float = 0.0) -> None:
        """Give an interval job a new interval, counted from now."""
        if not self.running:
            return
        assert self._scheduler is not None
        trigger = IntervalTrigger(seconds=seconds, jitter=jitter or None, timezone=UTC)
        with contextlib.suppress(JobLookupError):
            self._scheduler.reschedule_job(job_id, trigger=trigger)

    def run_soon(self, job_id: str) -> None:
        """Bring a pending job's next run forward to now (nothing if it has no pending run)."""
        if not self.running:
            return
        assert self._scheduler is not None
        with contextlib.suppress(JobLookupError):
            self._scheduler.modify_job(job_id, next_run_time=datetime.now(UTC))

    def cancel(self, job_id: str) -> None:
        """Remove the job's pending run; a run in progress finishes, and arms it again only if it asks to."""
        if self._scheduler is None:
            return
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id)

    def pending(self, job_id: str) -> bool:
        """Whether the job has a next run armed (an interval job keeps one while it runs)."""
        return self._scheduler is not None and self._scheduler.get_job(job_id) is not None

    def busy(self, job_id: str) -> bool:
        """Whether the job is pending or running."""
        return job_id in self._submitted_ids or self.pending(job_id)

    async def arm(self, jobs: Iterable[tuple[str, float]]) -> None:
        """Arm many one-shot jobs, ``(job id, delay)``: at start, 10,000 watches; on a shard gained, a workspace's.

        The scheduler is paused meanwhile: APScheduler wakes up after every ``add_job`` while
        running, and 10,000 wake-ups queued at once would stall the loop; paused, it queues none
        and looks for due jobs once, at ``resume``. Each ``add_job`` costs some 50 us, so the
        jobs go in ``ARM_CHUNK`` at a time and requests are served in between; no job runs
        until all are armed.
        """
        scheduler = self._scheduler
        if scheduler is None or self.stopping:
            return
        batch = list(jobs)
        scheduler.pause()
        try:
            for start in range(0, len(batch), ARM_CHUNK):
                for job_id, delay in batch[start : start + ARM_CHUNK]:
                    self.once(job_id, delay)
                if start + ARM_CHUNK < len(batch):
                    await asyncio.sleep(0)
        finally:
            if not self.stopping:
                scheduler.resume()

    def spawn_work(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Work that stop() lets finish: closes, redraws, deliveries."""
        task = asyncio.get_running_loop().create_task(coro, name=f"followups:{name}")
        self._work.add(task)
        task.add_done_callback(self._work.discard)
        return task

    # -- runs --------------------------------------------------------------------------------

    def _job(self, run: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``run`` as APScheduler runs it: a run that stop() can cancel quietly.

        A run submitted just before stop() returns at once; one in progress is cancelled and
        ends without an error (APScheduler would log a cancelled job's traceback).
        """

        @functools.wraps(run)
        async def job(*args: Any) -> Any:
            if self.stopping:
                return None
            task = asyncio.current_task()
            assert task is not None
            self._runs.add(task)
            try:
                return await run(*args)
            except asyncio.CancelledError:
                if self.stopping:
                    return None
                raise
            finally:
                self._runs.discard(task)

        return job

    def _submitted(self, event: JobEvent) -> None:
        self._submitted_ids.add(event.job_id)
        self._idle.clear()

    def _skip(self, event: JobEvent) -> None:
        # APScheduler drops a one-shot job it skipped; its run is owed once the last one ends.
        if event.job_id.partition(":")[0] in self._kinds:
            self._skipped.add(event.job_id)

    def _ended(self, event: JobExecutionEvent) -> None:
        """A run ended; a one-shot job that asked for another run, or came due meanwhile, is armed again."""
        self._submitted_ids.discard(event.job_id)
        if not self._submitted_ids:
            self._idle.set()
        delay = event.retval if event.exception is None else None
        if event.job_id in self._skipped:
            self._skipped.discard(event.job_id)
            delay = 0.0
        if isinstance(delay, int | float) and event.job_id.partition(":")[0] in self._kinds:
            self.once(event.job_id, delay)


def _after(delay: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=max(0.0, delay))
