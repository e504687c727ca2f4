"""Why APScheduler's in-memory job store is the timer and our tables are the record (issue 3).

APScheduler 3's ``SQLAlchemyJobStore`` is synchronous: every add, reschedule and due-job query
runs on the event loop's thread. This runs the same workload on the memory store and on the
SQLAlchemy store (a SQLite file): ``--jobs`` one-shot jobs, each re-armed by its own run
``--interval`` seconds later with jitter, as taskbot's watches are, while a 20 ms ticker
measures event-loop lag. Run: ``python -m bench.bench_jobstore [--jobs 1000] [--seconds 30]``.

It then prices one re-arm of taskbot's own scheduler (``bot.followups.scheduler.Scheduler.once``:
``add_job`` with a ``DateTrigger`` and the wake-up that follows) with ``--watches`` jobs in the
memory store, against the ``loop.call_later`` timer it replaced, in the same run: CPU seconds
per re-arm, wake-ups included (``--rearms`` of each).
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bench.common import percentile, run_benchmark
from bot.followups.scheduler import Scheduler

SCHEDULER: AsyncIOScheduler | None = None
RUNS = 0
INTERVAL = 5.0


def _arm(job_id: str, delay: float) -> None:
    assert SCHEDULER is not None
    SCHEDULER.add_job(
        fire,
        trigger=DateTrigger(run_date=datetime.now(UTC) + timedelta(seconds=delay), timezone=UTC),
        args=[job_id],
        id=job_id,
        replace_existing=True,
    )


async def fire(job_id: str) -> None:
    """A module-level coroutine, so the SQLAlchemy store can pickle a reference to it."""
    global RUNS
    RUNS += 1
    _arm(job_id, INTERVAL * random.uniform(0.9, 1.1))


async def run(store: str, jobs: int, seconds: float, workdir: Path) -> dict[str, Any]:
    global SCHEDULER, RUNS
    RUNS = 0
    jobstore: Any = (
        MemoryJobStore() if store == "memory" else SQLAlchemyJobStore(url=f"sqlite:///{workdir / 'jobs.db'}")
    )
    SCHEDULER = AsyncIOScheduler(
        jobstores={"default": jobstore},
        timezone=UTC,
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
    )
    SCHEDULER.start()
    armed = time.perf_counter()
    for n in range(jobs):
        _arm(f"watch:{n}", random.uniform(0, INTERVAL))
    arm_seconds = time.perf_counter() - armed
    lags: list[float] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        expected = loop.time() + 0.02
        await asyncio.sleep(0.02)
        lags.append(max(0.0, loop.time() - expected))
    SCHEDULER.shutdown(wait=False)
    await asyncio.sleep(0)
    ms = [lag * 1000 for lag in lags]
    return {
        "store": store,
        "arm_s": arm_seconds,
        "runs_per_s": RUNS / seconds,
        "wanted_per_s": jobs / INTERVAL,
        "p50": percentile(ms, 50),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


async def _settle() -> None:
    """Let every queued wake-up run (AsyncIOScheduler wakes up at the loop's next turn)."""
    for _ in range(3):
        await asyncio.sleep(0)


async def rearm_cost(watches: int, rearms: int) -> tuple[float, float]:
    """CPU microseconds per re-arm: taskbot's ``Scheduler.once``, then a bare ``call_later`` timer."""

    async def poll(key: str) -> float | None:
        return None

    scheduler = Scheduler()
    scheduler.on("watch", poll)
    scheduler.start()
    rng = random.Random(1)
    with scheduler.batch():
        for n in range(watches):
            scheduler.once(f"watch:{n}", rng.uniform(60, 600))
    await _settle()
    started = time.process_time()
    for i in range(rearms):
        scheduler.once(f"watch:{i % watches}", rng.uniform(60, 600))
        if i % 100 == 99:
            await _settle()  # as in the bot: a few re-arms per turn of the loop, each with its wake-up
    await _settle()
    apscheduler_us = (time.process_time() - started) / rearms * 1e6
    await scheduler.stop(1.0)

    loop = asyncio.get_running_loop()
    handles = {n: loop.call_later(rng.uniform(60, 600), print) for n in range(watches)}
    started = time.process_time()
    for i in range(rearms):
        key = i % watches
        handles[key].cancel()
        handles[key] = loop.call_later(rng.uniform(60, 600), print)
        if i % 100 == 99:
            await _settle()
    await _settle()
    call_later_us = (time.process_time() - started) / rearms * 1e6
    for handle in handles.values():
        handle.cancel()
    return apscheduler_us, call_later_us


async def main(jobs: int, seconds: float, watches: int, rearms: int) -> None:
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    print(
        f"APScheduler 3 job stores: {jobs} one-shot jobs re-armed every ~{INTERVAL:g} s, {seconds:g} s each"
    )
    for store in ("memory", "sqlalchemy"):
        with tempfile.TemporaryDirectory() as workdir:
            r = await run(store, jobs, seconds, Path(workdir))
        print(
            f"  {r['store']:<10}  armed in {r['arm_s']:.2f} s; runs {r['runs_per_s']:.0f}/s of {r['wanted_per_s']:.0f}/s wanted; "
            f"loop lag p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms"
        )
    ours, bare = await rearm_cost(watches, rearms)
    print(
        f"re-arm, {watches} jobs armed: Scheduler.once {ours:.1f} us CPU, loop.call_later {bare:.1f} us "
        f"({ours / bare:.1f}x; {rearms} re-arms each, wake-ups included)"
    )


if __name__ == "__main__":
    run_benchmark(main, jobs=1000, seconds=30.0, watches=10_000, rearms=20_000)
