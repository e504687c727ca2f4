"""The follow-ups' clock (``bot.followups.timers.Timers``) on a real event loop: one pending run
per job id, re-arming replaces it, a job never runs twice at once, ``stop()`` fires nothing more."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bot.followups.timers import Timers


@contextlib.asynccontextmanager
async def started(hold: asyncio.Event | None = None) -> AsyncIterator[tuple[Timers, list[str]]]:
    """Running timers whose ``watch`` jobs record their key (and wait for ``hold``, if given)."""
    timers = Timers()
    runs: list[str] = []

    async def job(key: str) -> None:
        runs.append(key)
        if hold is not None:
            await hold.wait()

    timers.on("watch", job)
    timers.start()
    try:
        yield timers, runs
    finally:
        await timers.stop(1.0)


async def test_rearming_replaces_the_pending_run() -> None:
    async with started() as (timers, runs):
        timers.schedule("watch:1", 30.0)
        timers.schedule("watch:1", 0.05)
        timers.schedule("watch:2", 0.05)
        assert timers.busy("watch:1") and timers.busy("watch:2")
        await asyncio.sleep(0.3)
        assert sorted(runs) == ["1", "2"]
        assert not timers.busy("watch:1")


async def test_unscheduled_jobs_do_not_run() -> None:
    async with started() as (timers, runs):
        timers.schedule("watch:1", 0.05)
        timers.unschedule("watch:1")
        timers.unschedule("watch:9")  # never scheduled: nothing to do
        assert not timers.busy("watch:1")
        await asyncio.sleep(0.2)
        assert runs == []


async def test_a_job_due_while_its_last_run_is_still_running_is_skipped() -> None:
    hold = asyncio.Event()
    async with started(hold) as (timers, runs):
        timers.schedule("watch:1", 0.0)
        await asyncio.sleep(0.05)
        assert runs == ["1"] and timers.busy("watch:1")
        timers.schedule("watch:1", 0.0)
        await asyncio.sleep(0.05)
        assert runs == ["1"]
        hold.set()
        await asyncio.sleep(0.05)
        assert not timers.busy("watch:1")


async def test_stop_cancels_pending_runs_and_refuses_new_ones() -> None:
    async with started() as (timers, runs):
        timers.schedule("watch:1", 0.1)
        await timers.stop(1.0)
        timers.schedule("watch:2", 0.0)
        await asyncio.sleep(0.3)
        assert runs == []
        assert not timers.running and not timers.busy("watch:1") and not timers.busy("watch:2")
