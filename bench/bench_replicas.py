"""Polls/s, CPU per poll and database load with 1, 2 and 3 ``taskbot serve`` replicas on PostgreSQL.

Processes on 127.0.0.1, all on this box (two cores bound the total):

* ``bench.bench_watch services``: the MetaStudio simulator (``GET /_stats`` counts polls per
  task) with ``--watches`` tasks that outlast the run, and the Slack stand-in;
* N ``taskbot serve`` processes sharing one fresh PostgreSQL database, into which ``--watches``
  active watch rows (one team) were written; poll interval 1 s, so polling is the load.

Each phase: start N replicas, warm up, then measure a window: polls at the simulator
(``/_stats`` delta), CPU of each replica (``/proc/<pid>/stat`` utime + stime), and the
database's committed transactions (``pg_stat_database.xact_commit`` delta; pg_stat_statements
is not installed here, and every taskbot statement runs in its own short transaction or a
few per transaction, so commits are a lower bound on statements). The idle phases run the
same replicas on a database with no watches.

Assumption, stated in the output: without shard leases on this branch every replica re-arms
and polls every watch, so N replicas make N polls per watch interval; the per-poll CPU and
the per-replica database load are what this measures. The shared rate bucket (bot/db/fleet.py)
is on: every poll takes one token with one UPDATE, so the API rate is set high here.

Run: ``python -m bench.bench_replicas`` (``--watches 2000 --seconds 15``; about 3 minutes).
Needs the local PostgreSQL (``TASKBOT_TEST_POSTGRES_DSN`` or postgresql://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from bench.bench_watch import bench_tasks, loadavg, preload, services
from bench.common import free_port, migrate_schema, wait_for_ok
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_BOT_TOKEN

FINISH_WITHIN = 1e7
ADMIN_DSN = os.environ.get("TASKBOT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Replica:
    process: asyncio.subprocess.Process
    url: str


@contextlib.asynccontextmanager
async def replicas(count: int, env: dict[str, str]) -> AsyncIterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for index in range(count):
            port = free_port()
            full = {
                **os.environ,
                **env,
                "PORT": str(port),
                "TASKBOT_LOG_LEVEL": "WARNING",
                "TASKBOT_REPLICA_ID": f"r{index}",
            }
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "serve", env=full, stdout=asyncio.subprocess.DEVNULL
            )
            started.append(Replica(process, f"http://127.0.0.1:{port}"))
        async with httpx.AsyncClient() as http:
            for replica in started:
                ready = f"{replica.url}/readyz"
                await wait_for_ok(http, ready, attempts=600, failure="taskbot serve did not become ready")
        yield started
    finally:
        for replica in started:
            replica.process.terminate()
        for replica in started:
            await replica.process.wait()


async def polls_at(http: httpx.AsyncClient, simulator: str) -> int:
    shows = (await http.get(f"{simulator}/_stats")).json()["show"]
    return sum(int(n) for n in shows.values())


async def commits(admin: asyncpg.Connection, name: str | None) -> int:
    if name is None:
        return 0
    # pg_stat_database is updated when a backend reports; force our view to be fresh.
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    return int(await admin.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name))


@dataclass
class Phase:
    replicas: int
    watches: int
    seconds: float
    polls: int
    cpu: list[float]
    commits: int

    def line(self) -> str:
        per_poll = sum(self.cpu) / self.polls * 1000 if self.polls else float("nan")
        cpu = ", ".join(f"{c / self.seconds:.0%}" for c in self.cpu)
        return (
            f"  {self.replicas} replica(s), {self.watches:>5} watches: {self.polls / self.seconds:7.0f} polls/s, "
            f"CPU per poll {per_poll:.3f} ms, CPU per replica [{cpu}] of one core, "
            f"db {self.commits / self.seconds:7.0f} commits/s total, "
            f"{self.commits / self.seconds / self.replicas:6.0f} per replica"
        )


async def phase(
    count: int,
    watches: int,
    env: dict[str, str],
    urls: dict[str, str],
    name: str,
    warmup: float,
    seconds: float,
) -> Phase:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        async with replicas(count, env) as running, httpx.AsyncClient(timeout=10) as http:
            await asyncio.sleep(warmup)
            polls0, commits0 = await polls_at(http, urls["simulator"]), await commits(admin, name)
            cpu0 = [cpu_seconds(r.process.pid) for r in running]
            await asyncio.sleep(seconds)
            polls1, commits1 = await polls_at(http, urls["simulator"]), await commits(admin, name)
            cpu1 = [cpu_seconds(r.process.pid) for r in running]
    finally:
        await admin.close()
    return Phase(
        count,
        watches,
        seconds,
        polls1 - polls0,
        [b - a for a, b in zip(cpu0, cpu1, strict=True)],
        commits1 - commits0,
    )


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[tuple[str, str]]:
    name = f"taskbot_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    await migrate_schema(url)
    try:
        yield name, url
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def main_async(watches: int, seconds: float, warmup: float, seed: int) -> int:
    now = time.time()
    task_ids = [t.task_id for t in bench_tasks(watches, now=now, finish_within=FINISH_WITHIN, seed=seed)]
    results: list[Phase] = []
    load_start = loadavg()
    async with services(now, watches, FINISH_WITHIN, seed) as urls:
        base_env = {
            "SLACK_BOT_TOKEN": DEMO_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": secrets.token_hex(16),
            "SLACK_API_URL": urls["slack"] + "/api/",
            "HUAWEICLOUD_SDK_AK": sim.DEMO_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": sim.DEMO_SECRET_KEY,
            "HUAWEICLOUD_SDK_PROJECT_ID": sim.DEMO_PROJECT_ID,
            "METASTUDIO_ENDPOINT": urls["simulator"],
            "TASKBOT_POLL_SECONDS": "1",
            "TASKBOT_MAX_POLL_SECONDS": "1",
            "TASKBOT_API_RATE": "100000",
        }
        # Baseline, same run: one replica on SQLite, the in-process limiter, no shared bucket.
        with tempfile.TemporaryDirectory(prefix="taskbot-replicas-") as tmp:
            sqlite_url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            await migrate_schema(sqlite_url)
            await preload(sqlite_url, task_ids, 0)
            baseline = await phase(
                1, watches, {**base_env, "DATABASE_URL": sqlite_url}, urls, None, warmup, seconds
            )
            print("SQLite baseline:", baseline.line(), flush=True)
        for loaded in (False, True):
            async with fresh_database() as (name, url):
                if loaded:
                    await preload(url, task_ids, 0)
                env = {**base_env, "DATABASE_URL": url}
                for count in (1, 2, 3):
                    result = await phase(count, watches if loaded else 0, env, urls, name, warmup, seconds)
                    results.append(result)
                    print(result.line(), flush=True)
    print(f"bench_replicas: {watches} watches of running tasks (one team), poll interval 1 s, seed {seed}")
    print(f"load average: start {load_start}, end {loadavg()}; cores: {os.cpu_count()}")
    print("assumption: no shard leases on this branch, so each replica polls every watch")
    print("baseline, 1 replica on SQLite (in-process rate limiter):")
    print(baseline.line())
    for result in results:
        print(result.line())
    base = next(r for r in results if r.watches and r.replicas == 1)
    for result in results:
        if result.watches and result.replicas > 1:
            print(
                f"  ratio {result.replicas}x/1x: polls/s {result.polls / base.polls:.2f}, "
                f"CPU per poll {(sum(result.cpu) / result.polls) / (sum(base.cpu) / base.polls):.2f}"
            )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--watches", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main_async(args.watches, args.seconds, args.warmup, args.seed)))


if __name__ == "__main__":
    main()
