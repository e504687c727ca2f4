"""The clock of the follow-ups, and the gates their background work passes.

All timers live in one APScheduler ``AsyncIOScheduler`` with an in-memory job store (jobs
``watch:<id>``, ``feed:<team>``, ``delivery:<id>``), each a one-shot ``DateTrigger`` set again
after every run. The scheduler is only the clock: the tables are the truth, and the follow-ups
rebuild every timer from them at start. A job only starts a tracked task and returns, so a slow
poll never makes APScheduler skip a run. ``stop()`` cancels polls at once and lets other work
(closes, deliveries) finish within a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

__all__ = ["Backlog", "Timers"]

log = logging.getLogger("taskbot.followups")

JobHandler = Callable[[str], Coroutine[Any, Any, None] | None]
"""Called with a job's key; a coroutine is run as a tracked poll, ``None`` means handled."""


class Timers:
    """One-shot timers by job id, and the background tasks they start."""

    def __init__(self) -> None:
        self._scheduler: AsyncIOScheduler | None = None
        self.stopping = False
        self._handlers: dict[str, JobHandler] = {}
        self._running_jobs: dict[str, asyncio.Task[None]] = {}
        self._polls: set[asyncio.Task[Any]] = set()
        self._work: set[asyncio.Task[Any]] = set()

    def on(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    @property
    def running(self) -> bool:
        return self._scheduler is not None and not self.stopping

    @property
    def started(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        self.stopping = False
        scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
        )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self, grace: float) -> None:
        """Stop the clock, cancel polls, let other work finish for at most ``grace`` seconds."""
        if self._scheduler is None:
            return
        self.stopping = True
        scheduler, self._scheduler = self._scheduler, None
        if scheduler.running:
            scheduler.shutdown(wait=False)
        polls = set(self._polls)
        for task in polls:
            task.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # A close in flight may queue deliveries while we wait: wait for those too.
        while self._work:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(set(self._work), timeout=remaining)
        leftovers = set(self._work)
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*polls, *leftovers, return_exceptions=True)
        if leftovers:
            log.warning(
                "stopped with %d follow-up tasks unfinished; they resume at the next start", len(leftovers)
            )
        self._running_jobs.clear()
        # Let the scheduler's deferred shutdown run before the loop may close.
        await asyncio.sleep(0)

    def schedule(self, job_id: str, delay: float) -> None:
        if self.stopping or self._scheduler is None:
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

    def unschedule(self, job_id: str) -> None:
        if self._scheduler is not None:
            with contextlib.suppress(JobLookupError):
                self._scheduler.remove_job(job_id)

    def busy(self, job_id: str) -> bool:
        """Whether the job is due or running."""
        if job_id in self._running_jobs:
            return True
        return self._scheduler is not None and self._scheduler.get_job(job_id) is not None

    def spawn_work(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Work that stop() lets finish: closes, redraws, deliveries."""
        return self._spawn(coro, self._work, name)

    async def _fire(self, job_id: str) -> None:
        """The one APScheduler job function: start the work as our own task and return at once."""
        if self.stopping or job_id in self._running_jobs:
            return
        kind, _, key = job_id.partition(":")
        handler = self._handlers.get(kind)
        if handler is None:
            log.error("unknown follow-up job %s", job_id)
            return
        coro = handler(key)
        if coro is None:
            return
        task = self._spawn(coro, self._polls, job_id)
        self._running_jobs[job_id] = task
        task.add_done_callback(lambda _: self._running_jobs.pop(job_id, None))

    @staticmethod
    def _spawn(coro: Coroutine[Any, Any, Any], group: set[asyncio.Task[Any]], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"followups:{name}")
        group.add(task)
        task.add_done_callback(group.discard)
        return task


class Backlog:
    """Closes and alerts started but not yet recorded; polls wait while there are too many.

    Polls are the elastic load: with thousands of watches and a raised rate they can keep the
    event loop busy without pause, and then every SQLite transaction crawls: each of its steps
    (hops to an aiosqlite thread and back) waits its turn behind the polls' callbacks. In the
    10,000-watch benchmark a close took 15 s and alerts fell minutes behind. Results must be
    recorded before more are fetched, so polls pause until the backlog is short again.
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
