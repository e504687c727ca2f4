"""Follow-ups at scale: one process watches 10,000 tasks on the simulator.

Three processes, all on 127.0.0.1:

* this one is the bot: the real ``Engine`` and ``FollowUps`` (APScheduler in-memory timers,
  SQLite file storage through aiosqlite) behind the real Bolt/Starlette HTTP app under uvicorn,
  on uvloop as ``taskbot serve`` runs; it also runs a ticker that measures event-loop lag;
* ``bench.bench_watch services``: the MetaStudio simulator (the demo set plus the bench
  tasks) and the Slack stand-in, plus ``GET /_stats`` with the simulator's request counts;
* ``bench.bench_watch burst``: the load generator that sends the ``/task`` burst on raw sockets.

Phases: first a baseline, the same bot with no watches at all, takes the same ``/task`` burst
(its ack is the yardstick of the run's); then the watches are written (one active row each, as
``/task watch`` leaves them, plus 1,000 channels on one long-running task) and a new bot re-arms
them from the tables, as after a restart; the tasks progress and finish while the run is
measured; halfway through, 200 signed ``/task <id>`` commands arrive at once.

Reports polls per second, event-loop lag, RSS per watch, MetaStudio calls per finished task
(measured, from the simulator's own counts) against a naive fixed-interval poll (computed
from each task's watch start and end time), alert delay, ack and command-to-card latency
during the burst, and polls of the 1,000-channel task per poll interval.

Run: ``python -m bench.bench_watch`` (defaults below; ``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import func, insert, select
from starlette.types import Receive, Scope, Send

from bench.common import (
    bench_settings,
    import_task,
    migrate_schema,
    percentile,
    raw_burst,
    services_process,
    summary_ms,
)
from bot.app import Runtime, create_asgi
from bot.config import Settings
from bot.db.base import Database
from bot.db.followups import SubscriberRow, WatchRow
from bot.devtools import simulator as sim
from bot.devtools.simulator.tasks import SimTask
from bot.devtools.slack_standin import DEMO_TEAM_ID, SlackStandIn
from bot.servers import serve_asgi

ID_PREFIX = "a"
SHARED_TASK_ID = "c" * 31 + "1"  # watched by many channels; runs far longer than the benchmark
BURST_TASK_ID = "c" * 31 + "2"  # the /task burst asks for this one (running, so a live card)
QUEUED_FRACTION = 0.25


# --- the tasks ---------------------------------------------------------------------------------


def bench_tasks(count: int, *, now: float, finish_within: float, seed: int) -> list[SimTask]:
    """``count`` tasks that all finish between 10 s and ``finish_within`` s after ``now``.

    Three in four are running already (counts rise linearly); one in four is still queued
    (begins later, reads as running with no progress until then), so the poller sees both
    moving and quiet tasks. Deterministic for a given ``now`` and ``seed``.
    """
    rng = random.Random(seed)
    tasks = []
    width = 32 - len(ID_PREFIX)
    for index in range(count):
        finishes_in = rng.uniform(10.0, finish_within)
        if rng.random() < QUEUED_FRACTION:
            duration = finishes_in * rng.uniform(0.2, 0.6)  # begins in the future
        else:
            duration = finishes_in + rng.uniform(0.5, 3.0) * finish_within
        tasks.append(
            import_task(
                f"{ID_PREFIX}{index:0{width}x}",
                f"Bench import {index}",
                total_count=rng.randint(100, 50_000),
                duration_seconds=duration,
                begin_time_ms=round((now + finishes_in - duration) * 1000),
                failure_rate=rng.choice((0.0, 0.0, 0.001, 0.02)),
            )
        )
    return tasks


def long_task(task_id: str, now: float) -> SimTask:
    return import_task(
        task_id,
        "Long import",
        total_count=50_000,
        duration_seconds=86_400,
        begin_time_ms=round((now - 60) * 1000),
    )


# --- process 2: simulator and Slack stand-in ------------------------------------------------


class WithStats:
    """The simulator's ASGI app plus ``GET /_stats``: show requests per task id."""

    def __init__(self, simulator: sim.Simulator) -> None:
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/_stats":
            shows = {key: n for (kind, key), n in self.simulator.requests.items() if kind == "show"}
            body = json.dumps({"show": shows}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.simulator.app(scope, receive, send)


async def services_main(now: float, count: int, finish_within: float, seed: int) -> int:
    tasks = [
        *sim.demo_tasks(now),
        *bench_tasks(count, now=now, finish_within=finish_within, seed=seed),
        long_task(SHARED_TASK_ID, now),
        long_task(BURST_TASK_ID, now),
    ]
    simulator = sim.Simulator(tasks)
    slack = SlackStandIn()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve_asgi(WithStats(simulator)) as simulator_url, serve_asgi(slack.app) as slack_url:
        slack.base_url = slack_url
        print(json.dumps({"simulator": simulator_url, "slack": slack_url}), flush=True)
        await stop.wait()
    return 0


def services(
    now: float, count: int, finish_within: float, seed: int
) -> AbstractAsyncContextManager[dict[str, str]]:
    args = ["services", "--now", repr(now), "--watches", str(count), "--finish-within", str(finish_within)]
    return services_process("bench.bench_watch", *args, "--seed", str(seed), start_timeout=120)


# --- process 3: the /task burst --------------------------------------------------------------


async def burst_main(bot_url: str, slack_url: str, secret: str, commands: int, text: str) -> int:
    requester = SlackStandIn()  # only signs requests; response_url points at the served stand-in
    requester.base_url = slack_url
    requests = [
        requester.slash_command(secret, text, channel_id=f"CBURST{i:04d}", user_id="U0BURST")
        for i in range(commands)
    ]
    results = await raw_burst(bot_url, "/slack/events", requests)
    print(
        json.dumps(
            {
                "ack": [r.ack_seconds for r in results],
                "sent_wall": [r.sent_wall for r in results],
                "status": [r.status for r in results],
            }
        ),
        flush=True,
    )
    return 0


async def run_burst(bot_url: str, slack_url: str, secret: str, commands: int) -> dict[str, list[Any]]:
    args = ["burst", "--bot", bot_url, "--slack", slack_url, "--secret", secret, "--commands", str(commands)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_watch", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    result: dict[str, list[Any]] = json.loads(out)
    return result


# --- process 1: the bot, measured ------------------------------------------------------------


class LagTicker:
    """Sleeps ``period`` again and again and records how late each wake-up is."""

    def __init__(self, period: float = 0.02) -> None:
        self.period = period
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.period
            await asyncio.sleep(self.period)
            self.lags.append(max(0.0, loop.time() - expected))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def mark(self) -> int:
        return len(self.lags)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


async def bounded_gather(calls: Sequence[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    slots = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with slots:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def preload(url: str, task_ids: Sequence[str], shared_channels: int) -> float:
    """Write one active watch and one subscriber per task id, and one watch of
    ``SHARED_TASK_ID`` with ``shared_channels`` subscribers, in one transaction."""
    database = Database(url)
    started = time.perf_counter()
    await database.create_all()
    now = datetime.now(UTC)
    expires = now + timedelta(hours=24)
    watches = [
        {
            "id": i + 1,
            "team_id": DEMO_TEAM_ID,
            "task_id": task_id,
            "status": "active",
            "created_at": now,
            "expires_at": expires,
            "closed_at": None,
            "snapshot": None,
        }
        for i, task_id in enumerate(task_ids)
    ]
    subscribers = [
        {
            "id": i + 1,
            "watch_id": i + 1,
            "team_id": DEMO_TEAM_ID,
            "channel_id": f"C{i:08d}",
            "user_id": "U0BENCH",
            "message_ts": None,
            "created_at": now,
            "status": "active",
            "closed_reason": None,
        }
        for i in range(len(task_ids))
    ]
    shared_id = len(task_ids) + 1
    watches.append({**watches[0], "id": shared_id, "task_id": SHARED_TASK_ID})
    subscribers += [
        {**subscribers[0], "id": shared_id + i, "watch_id": shared_id, "channel_id": f"CSHARE{i:04d}"}
        for i in range(shared_channels)
    ]
    async with database.engine.begin() as conn:
        if watches:
            await conn.execute(insert(WatchRow), watches)
            await conn.execute(insert(SubscriberRow), subscribers)
    await database.dispose()
    return time.perf_counter() - started


async def baseline_burst(
    settings: Settings, urls: dict[str, str], tmp: str, secret: str, commands: int
) -> dict[str, list[Any]]:
    """The burst against a bot with an empty database: the ack figure with no watches at all."""
    empty = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{Path(tmp) / 'empty.db'}"})
    await migrate_schema(empty.database_url)
    runtime = Runtime(empty)
    async with serve_asgi(create_asgi(empty, runtime)) as bot_url:
        await run_burst(bot_url, urls["slack"], secret, 1)  # Bolt's auth.test, as in the run
        result = await run_burst(bot_url, urls["slack"], secret, commands)
    gc.collect()
    return result


def naive_calls(watched_at: float, ends_at: float, interval: float) -> int:
    """Polls a fixed-interval poller (first poll one interval after the watch) makes until it sees the end."""
    return max(1, math.ceil((ends_at - watched_at) / interval))


@dataclass
class Options:
    watches: int
    shared_channels: int
    commands: int
    poll_seconds: float
    max_poll_seconds: float
    api_rate: float
    finish_within: float
    run_seconds: float
    naive_seconds: float
    seed: int


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)
    polls: list[int] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)


async def bot_main(opts: Options) -> int:
    import faulthandler
    import logging

    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    # A hard bound on the whole run, whatever happens to the event loop: dump stacks and exit.
    faulthandler.dump_traceback_later(opts.run_seconds + 180, exit=True)

    logging.getLogger("taskbot").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    now = time.time()
    tasks = bench_tasks(opts.watches, now=now, finish_within=opts.finish_within, seed=opts.seed)
    ends_at = {t.task_id: t.end_time_ms / 1000 for t in tasks}
    secret = secrets.token_hex(16)
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="taskbot-bench-") as tmp:
        async with services(now, opts.watches, opts.finish_within, opts.seed) as urls:
            settings = bench_settings(
                urls,
                f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
                slack_signing_secret=SecretStr(secret),
                poll_seconds=opts.poll_seconds,
                max_poll_seconds=opts.max_poll_seconds,
                api_rate=opts.api_rate,
            )
            # 0. The baseline: the same burst against the same bot with no watches, same services.
            baseline = await baseline_burst(settings, urls, tmp, secret, opts.commands)
            await migrate_schema(settings.database_url)
            # 1. The watches: 10,000 active rows, as a bot that has been running finds them at
            # start; Engine.start() re-arms each one (first polls spread over one interval).
            preload_seconds = await preload(
                settings.database_url, [t.task_id for t in tasks], opts.shared_channels
            )
            runtime = Runtime(settings)
            gc.collect()
            rss_before = rss_bytes()
            started = time.perf_counter()
            async with serve_asgi(create_asgi(settings, runtime)) as bot_url, httpx.AsyncClient() as http:
                start_seconds = time.perf_counter() - started
                engine_started = time.time()
                # Bolt's first request calls auth.test; as in bench_ack, one command warms it up.
                await run_burst(bot_url, urls["slack"], secret, 1)
                followups = runtime.followups
                ticker = LagTicker()
                ticker.start()

                watched_at = dict.fromkeys(ends_at, engine_started)
                shared_since = time.time()
                shared_polls_before = (
                    (await http.get(urls["simulator"] + "/_stats")).json()["show"].get(SHARED_TASK_ID, 0)
                )

                # 2. The run: sample the poll counter and RSS every second; the burst halfway.
                samples = Samples()
                burst: dict[str, list[Any]] | None = None
                burst_lag_mark: tuple[int, int] = (0, 0)
                run_started = time.perf_counter()
                deadline = run_started + opts.run_seconds
                burst_at = run_started + opts.run_seconds / 2
                burst_task: asyncio.Task[dict[str, list[Any]]] | None = None
                burst_load = ""
                while time.perf_counter() < deadline:
                    samples.times.append(time.perf_counter())
                    samples.polls.append(followups.polls)
                    samples.rss.append(rss_bytes())
                    if burst_task is None and time.perf_counter() >= burst_at:
                        burst_load = loadavg()
                        lag_start = ticker.mark()
                        burst_task = asyncio.create_task(
                            run_burst(bot_url, urls["slack"], secret, opts.commands)
                        )
                    if burst_task is not None and burst_task.done() and burst is None:
                        burst = burst_task.result()
                        burst_lag_mark = (lag_start, ticker.mark())
                    if len(samples.times) % 15 == 0:
                        elapsed = samples.times[-1] - run_started
                        window = samples.polls[-1] - samples.polls[-15] if len(samples.polls) > 15 else 0
                        recent = [lag * 1000 for lag in ticker.lags[-500:]]
                        print(
                            f"  [{elapsed:5.0f} s] polls {samples.polls[-1]} (~{window / 15:.0f}/s), "
                            f"delivered {followups.delivered}, lag p99 {percentile(recent, 99):.0f} ms, "
                            f"RSS {samples.rss[-1] / 2**20:.0f} MiB, load {loadavg()}",
                            flush=True,
                        )
                    await asyncio.sleep(1.0)
                if burst_task is not None and burst is None:
                    burst = await burst_task
                    burst_lag_mark = (lag_start, ticker.mark())
                run_seconds = time.perf_counter() - run_started
                load_end = loadavg()
                shared_elapsed = time.time() - shared_since
                stats = (await http.get(urls["simulator"] + "/_stats")).json()["show"]
                recorded = (await http.get(urls["slack"] + "/_recorded")).json()
                async with runtime.database.engine.connect() as conn:
                    rows = (
                        await conn.execute(
                            select(WatchRow.task_id, WatchRow.status, WatchRow.closed_at).where(
                                WatchRow.task_id.startswith(ID_PREFIX)
                            )
                        )
                    ).all()
                    watch_rows = int(
                        (await conn.execute(select(func.count()).select_from(WatchRow))).scalar_one()
                    )
                await ticker.stop()
                delivered = followups.delivered
    # --- figures ---
    finished = {task_id for task_id, status, _ in rows if status == "finished"}
    ours = [stats.get(t, 0) for t in finished]
    naive = [naive_calls(watched_at[t], ends_at[t], opts.naive_seconds) for t in finished]
    naive_base = [naive_calls(watched_at[t], ends_at[t], opts.poll_seconds) for t in finished]
    alert_walls = {m["channel"]: m["wall"] for m in recorded if m["via"] == "chat.postMessage"}
    channel_task = {f"C{i:08d}": t.task_id for i, t in enumerate(tasks)}
    alert_delays = [
        alert_walls[c] - ends_at[t] for c, t in channel_task.items() if t in finished and c in alert_walls
    ]
    per_second = [
        (samples.polls[i + 1] - samples.polls[i]) / (samples.times[i + 1] - samples.times[i])
        for i in range(len(samples.times) - 1)
    ]
    shared_polls = stats.get(SHARED_TASK_ID, 0) - shared_polls_before
    assert burst is not None
    acks = burst["ack"]
    cards = {
        m["channel"]: m["wall"]
        for m in recorded
        if m["via"] == "chat.postMessage" and m["channel"].startswith("CBURST")
    }
    card_times = [
        cards[f"CBURST{i:04d}"] - sent
        for i, sent in enumerate(burst["sent_wall"])
        if f"CBURST{i:04d}" in cards
    ]
    lag_ms = [lag * 1000 for lag in ticker.lags]
    burst_lags = [lag * 1000 for lag in ticker.lags[burst_lag_mark[0] : burst_lag_mark[1]]]

    print(
        f"bench_watch: {opts.watches} watches in one process (bot: Engine + Bolt HTTP on uvloop, SQLite file)"
    )
    print(
        f"settings: TASKBOT_POLL_SECONDS={opts.poll_seconds:g} TASKBOT_MAX_POLL_SECONDS={opts.max_poll_seconds:g} "
        f"TASKBOT_API_RATE={opts.api_rate:g} finish-within={opts.finish_within:g}s run={opts.run_seconds:g}s "
        f"naive-interval={opts.naive_seconds:g}s seed={opts.seed}"
    )
    print(f"load average: start {load_start}, burst {burst_load}, end {load_end} (cores: {os.cpu_count()})")
    print(
        f"  start-up:              {opts.watches} watch rows written in {preload_seconds:.1f} s (one transaction); "
        f"bot start re-armed them in {start_seconds:.1f} s"
    )
    print(
        f"  polls/s:               mean {statistics.fmean(per_second):.0f}, median {statistics.median(per_second):.0f}, "
        f"min {min(per_second):.0f} (1-s samples over {run_seconds:.0f} s; {followups.polls} polls in all)"
    )
    print(
        f"  event-loop lag:        p50 {percentile(lag_ms, 50):.1f} ms, p99 {percentile(lag_ms, 99):.1f} ms, "
        f"max {max(lag_ms):.1f} ms (20 ms ticker, n={len(lag_ms)})"
    )
    print(
        f"  RSS per watch:         {(max(samples.rss) - rss_before) / opts.watches / 1024:.1f} KiB peak, "
        f"{(samples.rss[len(samples.rss) // 4] - rss_before) / opts.watches / 1024:.1f} KiB at 1/4 run "
        f"(RSS {rss_before / 2**20:.0f} MiB -> peak {max(samples.rss) / 2**20:.0f} MiB)"
    )
    print(
        f"  watches finished:      {len(finished)} of {opts.watches}; alerts delivered {delivered}; rows {watch_rows}"
    )
    if finished:
        print(
            f"  calls per finished task: adaptive {statistics.fmean(ours):.2f} (measured), "
            f"naive fixed {opts.naive_seconds:g} s {statistics.fmean(naive):.2f} (computed), "
            f"fixed {opts.poll_seconds:g} s {statistics.fmean(naive_base):.2f} (computed); "
            f"ratio adaptive/naive {statistics.fmean(ours) / statistics.fmean(naive):.2f}"
        )
    if alert_delays:
        print(
            f"  alert after task end:  p50 {percentile(alert_delays, 50):.1f} s, p99 {percentile(alert_delays, 99):.1f} s "
            f"(n={len(alert_delays)})"
        )
    print(
        f"  /task burst x{len(acks)} mid-run: ack {summary_ms(acks)}; statuses {sorted(set(burst['status']))}"
    )
    base_acks = baseline["ack"]
    print(
        f"  the same burst, no watches (baseline, same run): ack {summary_ms(base_acks)}; "
        f"ack p99 ratio {percentile(acks, 99) / percentile(base_acks, 99):.2f} (target <= 1.2)"
    )
    if card_times:
        print(f"  command-to-card:       {summary_ms(card_times)} ({len(card_times)} of {len(acks)} cards)")
    if burst_lags:
        print(
            f"  loop lag during burst: p99 {percentile(burst_lags, 99):.1f} ms, max {max(burst_lags):.1f} ms"
        )
    intervals = shared_elapsed / opts.poll_seconds
    print(
        f"  shared task:           {opts.shared_channels} channels on one running task, "
        f"{shared_polls} polls in {shared_elapsed:.0f} s = {shared_polls / intervals:.2f} per "
        f"{opts.poll_seconds:g}-s interval"
    )
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="role")
    s = sub.add_parser("services")
    s.add_argument("--now", type=float, required=True)
    s.add_argument("--watches", type=int, required=True)
    s.add_argument("--finish-within", type=float, required=True)
    s.add_argument("--seed", type=int, required=True)
    b = sub.add_parser("burst")
    b.add_argument("--bot", required=True)
    b.add_argument("--slack", required=True)
    b.add_argument("--secret", required=True)
    b.add_argument("--commands", type=int, default=200)
    parser.add_argument("--watches", type=int, default=10_000)
    parser.add_argument("--shared-channels", type=int, default=1_000)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--max-poll-seconds", type=float, default=300.0)
    parser.add_argument("--api-rate", type=float, default=10_000.0)
    parser.add_argument("--finish-within", type=float, default=600.0)
    parser.add_argument("--run-seconds", type=float, default=150.0)
    parser.add_argument("--naive-seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from bot.cli import run_fast

    if args.role == "services":
        sys.exit(run_fast(services_main(args.now, args.watches, args.finish_within, args.seed)))
    if args.role == "burst":
        sys.exit(asyncio.run(burst_main(args.bot, args.slack, args.secret, args.commands, BURST_TASK_ID)))
    opts = Options(
        watches=args.watches,
        shared_channels=args.shared_channels,
        commands=args.commands,
        poll_seconds=args.poll_seconds,
        max_poll_seconds=args.max_poll_seconds,
        api_rate=args.api_rate,
        finish_within=args.finish_within,
        run_seconds=args.run_seconds,
        naive_seconds=args.naive_seconds,
        seed=args.seed,
    )
    sys.exit(run_fast(bot_main(opts)))


if __name__ == "__main__":
    main()
