"""The follow-ups' clock (``bot.followups.scheduler.Scheduler``, APScheduler underneath) on a real
event loop: one pending run per job id, re-arming replaces it, a one-shot job is armed again with
the delay its run returns, a job never runs twice at once, a late job still runs, ``stop()``
cancels runs quietly and fires nothing more, and nothing under ``bot/followups`` sets loop timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC
from pathlib import Path

import pytest
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger

import bot.followups
from bot.followups.scheduler import JOB_DEFAULTS, Scheduler
from tests.followups.test_followups import scheduler_passed
from tests.support.waiting import eventually


@contextlib.asynccontextmanager
async def started(
    hold: asyncio.Event | None = None, delays: list[float | None] | None = None
) -> AsyncIterator[tuple[Scheduler, list[str]]]:
    """A running scheduler whose ``watch`` jobs record their key, wait for ``hold`` (if given) and
    return the next of ``delays`` (None when there are none left)."""
    scheduler = Scheduler()
    runs: list[str] = []
    pending = list(delays or [])

    async def job(key: str) -> float | None:
        runs.append(key)
        if hold is not None:
            await hold.wait()
        return pending.pop(0) if pending else None

    scheduler.on("watch", job)
    scheduler.start()
    try:
        yield scheduler, runs
    finally:
        await scheduler.stop(1.0)


async def test_rearming_replaces_the_pending_run() -> None:
    async with started() as (scheduler, runs):
        scheduler.once("watch:1", 30.0)
        scheduler.once("watch:1", 0.05)
        scheduler.once("watch:2", 0.05)
        assert scheduler.busy("watch:1") and scheduler.busy("watch:2")
        await eventually(lambda: sorted(runs) == ["1", "2"], within=5, what="both runs")
        await eventually(lambda: not scheduler.busy("watch:1"), within=5, what="the run to end")
        assert sorted(runs) == ["1", "2"]


async def test_a_run_that_returns_a_delay_is_armed_again_with_it() -> None:
    async with started(delays=[0.0, 0.0, None]) as (scheduler, runs):
        scheduler.once("watch:1", 0.0)
        await eventually(lambda: runs == ["1", "1", "1"], within=5, what="three runs")
        await eventually(lambda: not scheduler.busy("watch:1"), within=5, what="no run armed")
        assert runs == ["1", "1", "1"]


async def test_many_jobs_armed_at_once_all_run() -> None:
    async with started() as (scheduler, runs):
        await asyncio.wait_for(scheduler.arm((f"watch:{n}", 0.0) for n in range(250)), 5)  # 3 chunks
        assert scheduler._scheduler is not None and scheduler._scheduler.state == STATE_RUNNING  # resumed
        await eventually(lambda: len(runs) == 250, within=10, what="every armed job's run")
        assert sorted(runs, key=int) == [str(n) for n in range(250)]


async def test_cancel_removes_the_pending_run() -> None:
    async with started() as (scheduler, runs):
        scheduler.once("watch:1", 0.05)
        scheduler.cancel("watch:1")
        scheduler.cancel("watch:9")  # never armed: nothing to do
        assert not scheduler.busy("watch:1")
        # A job due after it has run: the cancelled one would have run first.
        scheduler.once("watch:2", 0.1)
        await eventually(lambda: runs, within=5, what="the later job's run")
        assert runs == ["2"]


async def test_a_job_due_while_its_last_run_is_still_running_runs_after_it() -> None:
    """max_instances=1 skips it, and APScheduler drops a skipped one-shot job: it is owed, not lost."""
    hold = asyncio.Event()
    async with started(hold) as (scheduler, runs):
        scheduler.once("watch:1", 0.0)
        await eventually(lambda: runs == ["1"], within=5, what="the first run")
        scheduler.once("watch:1", 0.0)  # a shard regained while the poll runs arms the watch again
        await scheduler_passed(scheduler, 0.0)  # its due time has come and gone
        assert runs == ["1"]
        hold.set()
        await eventually(lambda: runs == ["1", "1"], within=5, what="the skipped run, owed")
        await eventually(lambda: not scheduler.busy("watch:1"), within=5, what="the run to end")
        assert runs == ["1", "1"]


async def test_a_job_due_while_its_last_run_is_still_running_does_not_run_twice() -> None:
    hold = asyncio.Event()
    async with started(hold, delays=[0.0]) as (scheduler, runs):
        scheduler.once("watch:1", 0.0)
        await eventually(lambda: runs == ["1"], within=5, what="the first run")
        assert scheduler.busy("watch:1")
        scheduler.once("watch:1", 0.0)  # due while the first run holds: max_instances=1 skips it
        await scheduler_passed(scheduler, 0.0)  # its due time has come and gone
        assert runs == ["1"]
        hold.set()
        # The run asked for another one (delay 0.0): it comes after the first has ended.
        await eventually(lambda: runs == ["1", "1"], within=5, what="the re-armed run")
        await eventually(lambda: not scheduler.busy("watch:1"), within=5, what="the run to end")


async def test_a_late_one_shot_job_still_runs() -> None:
    """misfire_grace_time=None: a run that comes seconds late (a blocked loop) is not dropped."""
    assert JOB_DEFAULTS == {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}
    async with started() as (scheduler, runs):
        scheduler.once("watch:1", 0.01)
        time.sleep(1.5)  # noqa: ASYNC251 - the point: the loop is blocked past the default grace of 1 s
        await eventually(lambda: runs == ["1"], within=5, what="the late run")


async def test_interval_jobs_run_again_until_cancelled() -> None:
    async with started() as (scheduler, _):
        ticks: list[str] = []

        async def tick(name: str) -> None:
            ticks.append(name)

        scheduler.every("feed:T1", tick, 0.05, args=["T1"], first=0.0)
        await eventually(lambda: len(ticks) >= 3, within=5, what="three ticks")
        scheduler.reschedule("feed:T1", 30.0)  # the next run is 30 s away now
        await scheduler_passed(scheduler, 0.0)  # a run submitted before has started by now
        count = len(ticks)
        await scheduler_passed(scheduler, 0.3)  # six intervals of the old schedule
        assert len(ticks) == count and scheduler.busy("feed:T1")
        scheduler.cancel("feed:T1")
        assert not scheduler.busy("feed:T1")


async def test_calendar_jobs_run_at_their_trigger_times_and_once_at_once_when_owed() -> None:
    async with started() as (scheduler, _):
        runs: list[float] = []

        async def digest(digest_id: int) -> None:
            runs.append(time.monotonic())

        # Every second of the clock, the way a digest's CronTrigger names its minute.
        scheduler.every("digest:1", digest, CronTrigger(second="*", timezone=UTC), args=[1])
        await eventually(lambda: len(runs) >= 2, within=5, what="two runs on the calendar")
        assert runs[1] - runs[0] >= 0.5
        # A run owed now (all replicas were down at its time) comes first, before the calendar.
        scheduler.every("digest:2", digest, CronTrigger(year=2099, timezone=UTC), args=[2], first=0.0)
        count = len(runs)
        await eventually(lambda: len(runs) > count, within=2, what="the owed run at once")
        assert scheduler.busy("digest:2")  # still armed for its next fire time
        scheduler.cancel("digest:1")
        scheduler.cancel("digest:2")
        assert not scheduler.busy("digest:1") and not scheduler.busy("digest:2")


async def test_stop_cancels_runs_quietly_and_refuses_new_ones(caplog: pytest.LogCaptureFixture) -> None:
    hold = asyncio.Event()
    async with started(hold) as (scheduler, runs):
        scheduler.once("watch:1", 0.0)
        scheduler.once("watch:2", 0.1)
        await eventually(lambda: runs == ["1"], within=5, what="the first run")
        with caplog.at_level(logging.INFO):
            await scheduler.stop(1.0)
        scheduler.once("watch:3", 0.0)
        # Another scheduler's job, due after watch:2 was, has run. Both time their runs with the
        # loop's timers, which fire in order: had watch:2 or watch:3 stayed armed, it would have
        # run first.
        async with started() as (witness, _):
            await scheduler_passed(witness, 0.2)
        assert runs == ["1"]
        assert not scheduler.running and not any(scheduler.busy(f"watch:{n}") for n in (1, 2, 3))
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_stop_lets_work_finish_within_the_grace_period() -> None:
    async with started() as (scheduler, _):
        done = asyncio.Event()

        async def deliver() -> None:
            await asyncio.sleep(0.2)
            done.set()

        scheduler.spawn_work(deliver(), "delivery:1")
        await scheduler.stop(5.0)
        assert done.is_set()


def test_nothing_in_the_follow_ups_sets_loop_timers() -> None:
    package = Path(bot.followups.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text()
        assert "call_later" not in text and "call_at" not in text, source.name
