"""Why APScheduler's in-memory job store is the timer and our tables are the record (issue 3).

APScheduler 3's ``SQLAlchemyJobStore`` is synchronous: every add, reschedule and due-job query
runs on the event loop's thread. This runs the same workload on the memory store and on the
SQLAlchemy store (a SQLite file): ``--jobs`` one-shot jobs, each re-armed by its own run
``--interval`` seconds later with jitter, as taskbot's watches are, while a 20 ms ticker
measures event-loop lag. Run: ``python -m bench.bench_jobstore [--jobs 1000] [--seconds 30]``.

It then prices the clock's share of one poll: ``--watches`` one-shot jobs of taskbot's own
scheduler (``bot.followups.scheduler.Scheduler``: the job comes due, runs, and is armed again
with the delay it returns, ``--mean-delay`` s on average, about 125 runs/s for 10,000 jobs as
under the default poll policy) against bare ``loop.call_later`` timers that start a task per
run, the clock it replaced, in the same run: CPU per run and loop lag over ``--cycle-seconds``.
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
    if SCHEDULER is not None:  # not once the run is over: the store is shutting down
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
    scheduler, SCHEDULER = SCHEDULER, None
    scheduler.shutdown(wait=False)
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


async def _lag_ticker(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        expected = loop.time() + 0.02
        await asyncio.sleep(0.02)
        lags.append(max(0.0, loop.time() - expected))


async def _measure(seconds: float, runs: list[int]) -> tuple[float, float]:
    """CPU microseconds per run over ``seconds``, and the loop lag p99 in ms meanwhile."""
    lags: list[float] = []
    ticker = asyncio.create_task(_lag_ticker(lags))
    before, cpu = runs[0], time.process_time()
    await asyncio.sleep(seconds)
    used, done = time.process_time() - cpu, runs[0] - before
    ticker.cancel()
    return used / max(1, done) * 1e6, percentile([lag * 1000 for lag in lags], 99)


async def cycle_cost(
    watches: int, seconds: float, mean_delay: float
) -> dict[str, tuple[float, float, float]]:
    """One watch job's cycle (due, run, armed again with the delay it returns), ``watches`` jobs
    at about ``watches / mean_delay`` runs/s: taskbot's ``Scheduler``, then bare ``call_later``
    timers that start a task per run (the clock it replaced). Per clock: CPU us per run, runs/s,
    loop-lag p99 ms. The run itself does nothing, so this is the clock's own cost per poll."""
    rng = random.Random(1)
    results: dict[str, tuple[float, float, float]] = {}

    runs = [0]

    async def poll(key: str) -> float | None:
        runs[0] += 1
        return rng.uniform(0.5, 1.5) * mean_delay

    scheduler = Scheduler()
    scheduler.on("watch", poll)
    scheduler.start()
    await scheduler.arm((f"watch:{n}", rng.uniform(0, mean_delay)) for n in range(watches))
    await asyncio.sleep(1.0)
    start_runs = runs[0]
    cpu_us, lag_p99 = await _measure(seconds, runs)
    results["APScheduler (Scheduler)"] = (cpu_us, (runs[0] - start_runs) / seconds, lag_p99)
    await scheduler.stop(1.0)

    loop = asyncio.get_running_loop()
    handles: dict[int, asyncio.TimerHandle] = {}
    tasks: set[asyncio.Task[None]] = set()
    runs[0] = 0

    async def bare_poll(key: int) -> None:
        runs[0] += 1
        handles[key] = loop.call_later(rng.uniform(0.5, 1.5) * mean_delay, start_bare, key)

    def start_bare(key: int) -> None:
        task = loop.create_task(bare_poll(key))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for n in range(watches):
        handles[n] = loop.call_later(rng.uniform(0, mean_delay), start_bare, n)
    await asyncio.sleep(1.0)
    start_runs = runs[0]
    cpu_us, lag_p99 = await _measure(seconds, runs)
    results["loop.call_later"] = (cpu_us, (runs[0] - start_runs) / seconds, lag_p99)
    for handle in handles.values():
        handle.cancel()
    return results


async def main(jobs: int, seconds: float, watches: int, mean_delay: float, cycle_seconds: float) -> None:
    # CRITICAL: shutting a store down mid-run cancels runs in flight, which APScheduler logs.
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
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
    print(
        f"one watch job's cycle (due, run, armed again), {watches} jobs, ~{watches / mean_delay:.0f} runs/s:"
    )
    for clock, (cpu_us, per_s, lag_p99) in (await cycle_cost(watches, cycle_seconds, mean_delay)).items():
        print(
            f"  {clock:<24} {cpu_us:6.1f} us CPU per run, {per_s:.0f} runs/s, loop lag p99 {lag_p99:.1f} ms"
        )


if __name__ == "__main__":
    run_benchmark(main, jobs=1000, seconds=30.0, watches=10_000, mean_delay=80.0, cycle_seconds=20.0)
