"""Why APScheduler's in-memory job store is the timer and our tables are the record (issue 3).

APScheduler 3's ``SQLAlchemyJobStore`` is synchronous: every add, reschedule and due-job query
runs on the event loop's thread. This runs the same workload on the memory store and on the
SQLAlchemy store (a SQLite file): ``--jobs`` one-shot jobs, each re-armed by its own run
``--interval`` seconds later with jitter, as taskbot's watches are, while a 20 ms ticker
measures event-loop lag. Run: ``python -m bench.bench_jobstore [--jobs 1000] [--seconds 30]``.
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


async def main(jobs: int, seconds: float) -> None:
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


if __name__ == "__main__":
    run_benchmark(main, jobs=1000, seconds=30.0)
