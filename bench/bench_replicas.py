"""Several ``taskbot serve`` replicas on PostgreSQL: throughput, failover time, database load.

Everything runs on 127.0.0.1 on this box (two cores carry the replicas, the simulator,
PostgreSQL and the load generator, so they bound the total). Three parts, one run:

1. **Throughput.** ``bench.bench_watch services`` (the MetaStudio simulator, which counts
   polls at ``GET /_stats``, and the Slack stand-in) in their own process; N = 1, 2, 3
   replicas on one fresh database holding ``--watches`` active watches spread over
   ``--teams`` workspaces (the shards), poll interval 1 s so polling saturates. Each phase
   waits until the shards are spread (every replica holds its fair share), warms up, then
   measures a window: polls (simulator and each replica's ``taskbot_polls_total``), CPU of each
   replica (``/proc/<pid>/stat``), SQL statements (each replica's
   ``taskbot_db_statements_total``) and commits (``pg_stat_database.xact_commit``). Baseline:
   one replica, same run.
2. **Database load.** The same, with the default poll settings: no watches (idle: lease
   heartbeats and probes only), then ``--db-watches`` watches.
3. **Failover.** Three replicas, ``--failover-watches`` watches over 6 workspaces, each replica
   reaching an in-process simulator through a listener of its own, so every poll is tagged with
   its replica. SIGKILL the owner of one workspace at a random point of its heartbeat cycle;
   failover time = from the kill to the first poll of an orphaned workspace's task by another
   replica. The killed replica is started again and the shards re-spread before the next run.
   Repeated ``--failover-runs`` times per lease in ``--leases`` (default 30 s and 3 s;
   ``--failover-runs 0`` skips it).
4. **Lease statements at scale.** ``--cost-watches`` (100,000) watches over ``--cost-teams``
   (1,000) workspaces leased by ``--cost-replicas`` (70) owners: the median time of each
   statement a replica runs between and at heartbeats, and of the probe as it was before it
   stopped scanning the watches (baseline, same run).

Run: ``python -m bench.bench_replicas`` (about 15 minutes with the defaults, 8 with
``--failover-runs 0``; ``--quick`` for a smoke run). Needs the local PostgreSQL (``TASKBOT_TEST_POSTGRES_DSN`` or
postgresql://postgres@127.0.0.1:5432). Results: BENCHMARKS.md "Several replicas".
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import random
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bench.bench_watch import SHARED_TASK_ID, bench_tasks, loadavg, long_task, preload, services
from bench.common import free_port, migrate_schema, percentile, run_benchmark, wait_for_ok
from bot.db.base import Database
from bot.db.deliveries import DeliveryStore
from bot.db.followups import FollowUpStore, WatchRow
from bot.db.leases import LeaseStore, ShardLeaseRow
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_BOT_TOKEN
from bot.servers import serve_asgi

FINISH_WITHIN = 1e7  # tasks outlast the run: polling is the whole load
ADMIN_DSN = os.environ.get("TASKBOT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TICKS = os.sysconf("SC_CLK_TCK")
FAILOVER_TEAMS = 6


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def box_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole box so far, all cores (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


def simulator_pid() -> int | None:
    """The ``bench_watch services`` process this benchmark started (simulator + Slack stand-in)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and b"bench.bench_watch" in cmdline and b"services" in cmdline:
                return int(entry)
    return None


# --- replicas and the database ---------------------------------------------------------------


@dataclass
class Replica:
    slot: int
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        full = {
            **os.environ,
            **self.env,
            "PORT": str(self.port),
            "TASKBOT_LOG_LEVEL": "WARNING",
            "TASKBOT_REPLICA_ID": f"r{self.slot}",
        }
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", env=full, stdout=asyncio.subprocess.DEVNULL
        )

    async def ready(self, http: httpx.AsyncClient) -> None:
        await wait_for_ok(
            http, f"{self.url}/readyz", attempts=1200, failure="taskbot serve did not become ready"
        )

    async def counters(self, http: httpx.AsyncClient) -> dict[str, float]:
        """This replica's taskbot_polls_total and taskbot_db_statements_total."""
        text = (await http.get(f"{self.url}/metrics")).text
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in ("taskbot_polls_total", "taskbot_db_statements_total"):
                    found[sample.name] = sample.value
        return found

    async def stop(self, sig: int = 15) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(sig)
            await self.process.wait()


@contextlib.asynccontextmanager
async def fleet(envs: list[dict[str, str]]) -> AsyncIterator[list[Replica]]:
    started = [Replica(slot, env) for slot, env in enumerate(envs)]
    try:
        for replica in started:
            await replica.start()
        async with httpx.AsyncClient() as http:
            for replica in started:
                await replica.ready(http)
        yield started
    finally:
        for replica in started:
            if replica.process is not None and replica.process.returncode is None:
                replica.process.terminate()
        for replica in started:
            if replica.process is not None:
                await replica.process.wait()


@contextlib.asynccontextmanager
async def fresh_database(task_ids: list[str], teams: int) -> AsyncIterator[tuple[str, str]]:
    """A new database with one active watch per task id, spread round robin over ``teams``."""
    name = f"taskbot_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    base = ADMIN_DSN.rsplit("/", 1)[0]
    url = f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    try:
        await migrate_schema(url)
        if task_ids:
            await preload(url, task_ids, 0)
            connection = await asyncpg.connect(f"{base}/{name}")
            try:
                for table, key in (("watches", "id"), ("subscribers", "watch_id")):
                    await connection.execute(
                        f"UPDATE {table} SET team_id = 'T0BENCH' || lpad(({key} % $1)::text, 3, '0')", teams
                    )
            finally:
                await connection.close()
        yield name, f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def lease_owners(dsn: str) -> dict[str, str]:
    """Team -> owner (``host:pid:…``) of every unexpired lease."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT team_id, owner FROM shard_leases WHERE expires_at > now()")
    finally:
        await connection.close()
    return {row["team_id"]: row["owner"] for row in rows}


async def spread(dsn: str, replicas: int, teams: int, timeout: float = 120.0) -> dict[str, str]:
    """Wait until every team is leased and each replica holds its fair share; team -> owner."""
    share = math.ceil(teams / replicas)
    deadline = time.monotonic() + timeout
    while True:
        owners = await lease_owners(dsn)
        per_owner = list(collections.Counter(owners.values()).values())
        if len(owners) == teams and len(per_owner) == replicas and max(per_owner) <= share:
            return owners
        if time.monotonic() > deadline:
            raise RuntimeError(f"shards did not spread: {owners}")
        await asyncio.sleep(0.2)


async def commits(dsn: str, name: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name)
        )
    finally:
        await connection.close()


# --- parts 1 and 2: a measured window ----------------------------------------------------------


@dataclass
class Phase:
    label: str
    replicas: int
    seconds: float
    polls: int
    replica_polls: list[float]
    cpu: list[float]
    statements: list[float]
    commits: int
    simulator_cpu: float = float("nan")
    box_busy: float = float("nan")
    """Fraction of all cores busy during the window (every process on the box)."""

    def line(self) -> str:
        per_poll = sum(self.cpu) / self.polls * 1000 if self.polls else float("nan")
        cpu = ", ".join(f"{c / self.seconds:.0%}" for c in self.cpu)
        split = "/".join(f"{p / self.seconds:.0f}" for p in self.replica_polls)
        statements = "/".join(f"{s / self.seconds:.1f}" for s in self.statements)
        per_poll_statements = sum(self.statements) / self.polls if self.polls else float("nan")
        return (
            f"{self.label}, {self.replicas} replica(s): {self.polls / self.seconds:6.1f} polls/s "
            f"(per replica {split}), CPU per poll {per_poll:.2f} ms, CPU [{cpu}] of one core, "
            f"statements/s per replica [{statements}] ({per_poll_statements:.2f} per poll), "
            f"commits/s {self.commits / self.seconds:.1f} total; simulator process CPU "
            f"{self.simulator_cpu / self.seconds:.0%}, box {self.box_busy:.0%} busy"
        )


async def measure(
    label: str,
    count: int,
    env: dict[str, str],
    db: tuple[str, str],
    teams: int,
    polls_at: Callable[[], Awaitable[int]],
    warmup: float,
    seconds: float,
) -> Phase:
    name, dsn = db
    async with fleet([env] * count) as running, httpx.AsyncClient(timeout=10) as http:
        if teams:
            await spread(dsn, count, teams)
        await asyncio.sleep(warmup)
        before = [await r.counters(http) for r in running]
        cpu0 = [cpu_seconds(r.process.pid) for r in running if r.process]
        polls0, commits0 = await polls_at(), await commits(dsn, name)
        simulator = simulator_pid()
        sim0, box0 = cpu_seconds(simulator) if simulator else float("nan"), box_busy_seconds()
        await asyncio.sleep(seconds)
        sim1, box1 = cpu_seconds(simulator) if simulator else float("nan"), box_busy_seconds()
        polls1, commits1 = await polls_at(), await commits(dsn, name)
        cpu1 = [cpu_seconds(r.process.pid) for r in running if r.process]
        after = [await r.counters(http) for r in running]
    return Phase(
        label,
        count,
        seconds,
        polls1 - polls0,
        [b["taskbot_polls_total"] - a["taskbot_polls_total"] for a, b in zip(before, after, strict=True)],
        [b - a for a, b in zip(cpu0, cpu1, strict=True)],
        [
            b["taskbot_db_statements_total"] - a["taskbot_db_statements_total"]
            for a, b in zip(before, after, strict=True)
        ],
        commits1 - commits0,
        sim1 - sim0,
        (box1[0] - box0[0]) / (box1[1] - box0[1]),
    )


# --- part 3: failover ------------------------------------------------------------------------


class Tagged:
    """The in-process simulator behind one listener per replica slot; logs (time, slot, task)."""

    def __init__(self, simulator: sim.Simulator) -> None:
        self.simulator = simulator
        self.polls: list[tuple[float, int, str]] = []

    def listener(self, slot: int) -> Callable[..., Awaitable[None]]:
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and "/ies/task/" in scope["path"]:
                self.polls.append((time.monotonic(), slot, scope["path"].rsplit("/", 1)[-1]))
            await self.simulator.app(scope, receive, send)

        return app


def slot_of(owner: str, replicas: list[Replica]) -> int:
    pid = int(owner.split(":")[1])
    return next(r.slot for r in replicas if r.process is not None and r.process.pid == pid)


async def failover_runs(
    base_env: dict[str, str], lease: float, watches: int, runs: int, rng: random.Random
) -> list[float]:
    tasks = bench_tasks(watches, now=time.time(), finish_within=FINISH_WITHIN, seed=rng.randrange(1 << 30))
    # preload() also writes one watch of SHARED_TASK_ID: the simulator has it too, so it is polled.
    tagged = Tagged(sim.Simulator([*tasks, long_task(SHARED_TASK_ID, time.time())]))
    team_of = {t.task_id: f"T0BENCH{(n + 1) % FAILOVER_TEAMS:03d}" for n, t in enumerate(tasks)}
    found: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serve_asgi(tagged.listener(slot))) for slot in range(3)]
        _name, dsn = await stack.enter_async_context(
            fresh_database([t.task_id for t in tasks], FAILOVER_TEAMS)
        )
        env = {
            **base_env,
            "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
            "TASKBOT_LEASE_SECONDS": str(lease),
            "TASKBOT_POLL_SECONDS": "1",
            "TASKBOT_MAX_POLL_SECONDS": "2",
        }
        envs = [{**env, "METASTUDIO_ENDPOINT": url} for url in urls]
        running = await stack.enter_async_context(fleet(envs))
        async with httpx.AsyncClient() as http:
            for run in range(runs):
                owners = await spread(dsn, 3, FAILOVER_TEAMS, timeout=4 * lease + 60)
                # Kill at a random point of the victim's heartbeat cycle.
                await asyncio.sleep(rng.uniform(0, lease / 3))
                owners = await lease_owners(dsn)
                victim = slot_of(owners[f"T0BENCH{run % FAILOVER_TEAMS:03d}"], running)
                orphaned = {team for team, owner in owners.items() if slot_of(owner, running) == victim}
                process = running[victim].process
                assert process is not None
                process.kill()
                killed = time.monotonic()
                await process.wait()
                deadline = killed + 2 * lease + 30
                while True:
                    taken = [
                        t
                        for t, slot, task in tagged.polls
                        if t > killed and slot != victim and team_of.get(task) in orphaned
                    ]
                    if taken:
                        found.append(min(taken) - killed)
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("no takeover")
                    await asyncio.sleep(0.02)
                print(
                    f"  lease {lease:g} s, run {run + 1}: first poll by the new owner {found[-1]:.2f} s after SIGKILL",
                    flush=True,
                )
                await running[victim].start()
                await running[victim].ready(http)
    return found


# --- part 4: what the lease statements cost at scale ---------------------------------------------


async def probe_before(database: Database) -> bool:
    """``LeaseStore.claimable`` as it was before it stopped scanning the watches (a same-run baseline)."""
    async with database.transactions.read() as session:
        expired = select(ShardLeaseRow.team_id).where(ShardLeaseRow.expires_at <= func.now())
        unleased = select(WatchRow.team_id).where(
            WatchRow.status == "active",
            ~select(ShardLeaseRow.team_id).where(ShardLeaseRow.team_id == WatchRow.team_id).exists(),
        )
        return bool(await session.scalar(select(expired.exists() | unleased.exists())))


async def statement_costs(watches: int, teams: int, replicas: int, calls: int) -> list[tuple[str, float]]:
    """Median time of each lease statement with ``watches`` over ``teams`` leased by ``replicas`` owners."""
    ids = [f"{n:032x}" for n in range(watches)]
    results = []
    async with fresh_database(ids, teams) as (_name, dsn):
        database = Database(dsn.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            leases, store = LeaseStore(database), FollowUpStore(database)
            owners = [f"bench:{n}:owner" for n in range(replicas)]
            for owner in owners:
                await leases.renew(owner, 3600)
            for owner in owners:
                await leases.claim(owner, 3600, owned=0)
            mine = {team for team, who in (await leases.owners()).items() if who == owners[0]}
            share = len(mine)
            timed: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("probe before (claimable scanning the watches)", lambda: probe_before(database)),
                ("probe now (claimable, lease rows only)", leases.claimable),
                ("renew (one UPDATE of a replica's leases)", lambda: leases.renew(owners[0], 3600)),
                ("claim (fair share, nothing free)", lambda: leases.claim(owners[0], 3600, owned=share)),
                (
                    f"heartbeat re-read: active watches of {share} workspaces",
                    lambda: store.active_watches(mine),
                ),
                (
                    f"heartbeat re-read: owed deliveries of {share} workspaces",
                    lambda: DeliveryStore(store.database).pending_deliveries(mine),
                ),
            ]
            for label, call in timed:
                await call()
                samples = []
                for _ in range(calls):
                    started = time.perf_counter()
                    await call()
                    samples.append(time.perf_counter() - started)
                results.append((label, statistics.median(samples)))
                print(f"  {label}: {results[-1][1] * 1000:.1f} ms", flush=True)
        finally:
            await database.dispose()
    return results


# --- main ------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    now = time.time()
    count = max(args.watches, args.db_watches)
    ids = [t.task_id for t in bench_tasks(count, now=now, finish_within=FINISH_WITHIN, seed=args.seed)]
    load_start = loadavg()
    rng = random.Random(args.seed)
    phases: list[Phase] = []
    async with services(now, count, FINISH_WITHIN, args.seed) as urls, httpx.AsyncClient(timeout=10) as http:

        async def polls_at() -> int:
            shows = (await http.get(f"{urls['simulator']}/_stats")).json()["show"]
            return sum(int(n) for n in shows.values())

        base_env = {
            "SLACK_BOT_TOKEN": DEMO_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": secrets.token_hex(16),
            "SLACK_API_URL": urls["slack"] + "/api/",
            "HUAWEICLOUD_SDK_AK": sim.DEMO_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": sim.DEMO_SECRET_KEY,
            "HUAWEICLOUD_SDK_PROJECT_ID": sim.DEMO_PROJECT_ID,
            "METASTUDIO_ENDPOINT": urls["simulator"],
            "TASKBOT_API_RATE": "100000",
        }
        parts = [
            (
                f"throughput, {args.watches} watches, poll 1 s",
                ids[: args.watches],
                {"TASKBOT_POLL_SECONDS": "1", "TASKBOT_MAX_POLL_SECONDS": "1"},
                args.warmup,
            ),
            ("idle, no watches, default settings", [], {}, args.warmup),
            (
                f"db load, {args.db_watches} watches, default settings",
                ids[: args.db_watches],
                {},
                max(args.warmup, 12.0),
            ),
        ]
        for label, task_ids, extra, warmup in parts:
            async with fresh_database(task_ids, args.teams) as (name, dsn):
                env = {
                    **base_env,
                    **extra,
                    "DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
                }
                for replicas in (1, 2, 3):
                    phase = await measure(
                        label,
                        replicas,
                        env,
                        (name, dsn),
                        args.teams if task_ids else 0,
                        polls_at,
                        warmup,
                        args.seconds,
                    )
                    phases.append(phase)
                    print(phase.line(), flush=True)
        costs = await statement_costs(args.cost_watches, args.cost_teams, args.cost_replicas, calls=20)
        failovers = {}
        for lease in args.leases if args.failover_runs else []:
            failovers[lease] = await failover_runs(
                base_env, lease, args.failover_watches, args.failover_runs, rng
            )

    print()
    print(
        f"bench_replicas: {args.teams} workspaces, window {args.seconds:g} s, seed {args.seed}; "
        f"load average start {load_start}, end {loadavg()}; cores: {os.cpu_count()}"
    )
    for phase in phases:
        print(phase.line())
    for label in dict.fromkeys(p.label for p in phases):
        group = [p for p in phases if p.label == label]
        base = group[0]
        for phase in group[1:]:
            if base.polls and phase.polls:
                cpu_ratio = (sum(phase.cpu) / phase.polls) / (sum(base.cpu) / base.polls)
                print(
                    f"  {label}: {phase.replicas}x vs 1x: polls/s {phase.polls / base.polls:.2f}, "
                    f"CPU per poll {cpu_ratio:.2f}"
                )
    print(
        f"lease statements, {args.cost_watches} watches in {args.cost_teams} workspaces leased by "
        f"{args.cost_replicas} replicas, median of 20 calls:"
    )
    for label, seconds in costs:
        print(f"  {label}: {seconds * 1000:.1f} ms")
    print(f"  probe before / now: {costs[0][1] / costs[1][1]:.0f}x")
    for lease, times in failovers.items():
        print(
            f"failover, lease {lease:g} s, {len(times)} runs: p50 {statistics.median(times):.2f} s, "
            f"max {max(times):.2f} s, min {min(times):.2f} s (p90 {percentile(times, 90):.2f} s)"
        )
    return 0


async def main(**options: Any) -> None:
    args = argparse.Namespace(**options)
    if args.quick:
        args.watches, args.db_watches, args.seconds, args.warmup = 200, 500, 4.0, 2.0
        args.failover_runs, args.leases = 1, [3.0]
        args.cost_watches, args.cost_teams, args.cost_replicas = 2000, 100, 7
    raise SystemExit(await main_async(args))


if __name__ == "__main__":
    run_benchmark(
        main,
        watches=2000,
        db_watches=10000,
        teams=12,
        seconds=20.0,
        warmup=5.0,
        failover_watches=60,
        failover_runs=5,
        leases=[30.0, 3.0],
        cost_watches=100_000,
        cost_teams=1000,
        cost_replicas=70,
        seed=13,
        quick=False,
    )
