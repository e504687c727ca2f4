"""The clock of the follow-ups, and the gates their background work passes.

All timers are one-shot event-loop timers (``loop.call_later``), one per job id
(``watch:<id>``, ``feed:<team>``, ``delivery:<id>``), set again after every run; setting a job
again replaces its timer. The clock keeps nothing: the tables are the truth, and the follow-ups
rebuild every timer from them at start. A job only starts a tracked task and returns, so a slow
poll never delays another job, and a job is never started twice at once. ``stop()`` cancels
polls at once and lets other work (closes, deliveries) finish within a grace period.

Why not APScheduler (used here before, with an in-memory store and a ``DateTrigger`` per run):
with thousands of watches it re-armed a job per poll, and that cost (``add_job`` with its
signature check, the store's sorted list, a wake-up per job) was 12% of a poll's CPU time
once the client was on aiohttp (``bench/bench_pollcpu.py``). Nothing here needs what it adds:
no job is persisted, none recurs, and a late timer simply runs late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

__all__ = ["Backlog", "Timers"]

log = logging.getLogger("taskbot.followups")

JobHandler = Callable[[str], Coroutine[Any, Any, None] | None]
"""Called with a job's key; a coroutine is run as a tracked poll, ``None`` means handled."""


class Timers:
    """One-shot timers by job id, and the background tasks they start."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due: dict[str, asyncio.TimerHandle] = {}
        self.stopping = False
        self._handlers: dict[str, JobHandler] = {}
        self._running_jobs: dict[str, asyncio.Task[None]] = {}
        self._polls: set[asyncio.Task[Any]] = set()
        self._work: set[asyncio.Task[Any]] = set()

    def on(self, kind: str, handler: JobHandler) -> None:
        self._handlers[kind] = handler

    @property
    def running(self) -> bool:
        return self._loop is not None and not self.stopping

    @property
    def started(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        self.stopping = False
        self._loop = asyncio.get_running_loop()

    async def stop(self, grace: float) -> None:
        """Stop the clock, cancel polls, let other work finish for at most ``grace`` seconds."""
        if self._loop is None:
            return
        self.stopping = True
        self._loop = None
        for handle in self._due.values():
            handle.cancel()
        self._due.clear()
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

    def schedule(self, job_id: str, delay: float) -> None:
        """Run the job once, ``delay`` seconds from now; replaces the job's pending run, if any."""
        if self.stopping or self._loop is None:
            return
        previous = self._due.pop(job_id, None)
        if previous is not None:
            previous.cancel()
        self._due[job_id] = self._loop.call_later(max(0.0, delay), self._fire, job_id)

    def unschedule(self, job_id: str) -> None:
        handle = self._due.pop(job_id, None)
        if handle is not None:
            handle.cancel()

    def busy(self, job_id: str) -> bool:
        """Whether the job is due or running."""
        return job_id in self._running_jobs or job_id in self._due

    def spawn_work(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Work that stop() lets finish: closes, redraws, deliveries."""
        return self._spawn(coro, self._work, name)

    def _fire(self, job_id: str) -> None:
        """The one timer callback: start the work as our own task and return at once."""
        self._due.pop(job_id, None)
        if self.stopping or job_id in self._running_jobs:
            return
        kind, _, key = job_id.partition(":")
        handler = self._handlers.get(kind)
        if handler is None:
            log.error("unknown follow-up job %s", job_id)
            return
        try:
            coro = handler(key)
        except Exception:
            log.exception("follow-up job %s failed to start", job_id)
            return
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
