"""CPU per poll of the bot, against the floor of a bare signed-GET loop, plus a profile (issue 12).

Two processes on 127.0.0.1:

* ``bench.bench_watch services``: the MetaStudio simulator (real server) with ``--watches``
  tasks that run far longer than the benchmark, and the Slack stand-in;
* this one: first the bot (the real ``Runtime`` and ``FollowUps`` behind the Bolt app under
  uvicorn, SQLite file, as ``bench_watch`` runs it) re-arming that many watch rows with a
  1-second poll interval, so polling saturates the process. Its CPU time
  (``time.process_time``, every thread) over a measured window is divided by the polls made
  in it. Then a window under cProfile, for the profile. Then, with the bot stopped, the
  floor: ``POLL_CONCURRENCY`` workers looping ``GET /v2/{project}/ies/task/{id}`` through one
  ``httpx.AsyncClient``, each request signed with ``bot.metastudio.signer.sign`` and its body
  parsed with ``response.json()``; CPU time divided by requests.

Run: ``python -m bench.bench_pollcpu`` (``--watches 2000 --seconds 20``; about 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import pstats
import secrets
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import SecretStr

from bench.bench_watch import bench_tasks, loadavg, preload, services
from bot.app import Runtime, create_asgi
from bot.config import Settings
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_BOT_TOKEN
from bot.followups.watches import POLL_CONCURRENCY
from bot.metastudio import signer
from bot.servers import serve_asgi

FINISH_WITHIN = 1e7  # no task finishes during the run: every poll is a running-task poll


async def measure_bot(followups: object, seconds: float) -> tuple[float, int]:
    polls0, cpu0 = followups.polls, time.process_time()  # type: ignore[attr-defined]
    await asyncio.sleep(seconds)
    polls1, cpu1 = followups.polls, time.process_time()  # type: ignore[attr-defined]
    return cpu1 - cpu0, polls1 - polls0


async def floor_loop(endpoint: str, task_ids: list[str], seconds: float) -> tuple[float, int, float]:
    """Signed GETs with a JSON parse, ``POLL_CONCURRENCY`` at a time: CPU seconds, requests, wall."""
    host = httpx.URL(endpoint).netloc.decode()
    count = 0
    stop_at = time.perf_counter() + seconds

    async def worker(http: httpx.AsyncClient, offset: int) -> None:
        nonlocal count
        i = offset
        while time.perf_counter() < stop_at:
            path = f"/v2/{sim.DEMO_PROJECT_ID}/ies/task/{task_ids[i % len(task_ids)]}"
            headers = signer.sign(
                access_key=sim.DEMO_ACCESS_KEY,
                secret_key=sim.DEMO_SECRET_KEY,
                method="GET",
                path=path,
                params=httpx.QueryParams(),
                headers={
                    "Host": host,
                    "Content-Type": "application/json",
                    "X-Project-Id": sim.DEMO_PROJECT_ID,
                },
            )
            response = await http.get(endpoint + path, headers=headers)
            response.raise_for_status()
            response.json()
            count += 1
            i += POLL_CONCURRENCY

    async with httpx.AsyncClient(timeout=10) as http:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(http, k) for k in range(POLL_CONCURRENCY)))
        return time.process_time() - cpu0, count, time.perf_counter() - wall0


GROUPS = (
    "bot/metastudio",
    "bot/followups",
    "bot/storage",
    "bot/polling",
    "bot/progress",
    "bot/",
    "httpcore",
    "httpx",
    "anyio",
    "h11",
    "sniffio",
    "sqlalchemy",
    "aiosqlite",
    "apscheduler",
    "pydantic",
    "uvicorn",
    "asyncio",
    "json",
    "hmac",
    "hashlib",
    "logging",
)


def by_package(stats: pstats.Stats) -> str:
    """Own time (tottime) summed per package, so the waste can be placed."""
    totals: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _, name), (_, _, tottime, _, _) in raw.items():
        key = next((g for g in GROUPS if g in filename), "builtins" if filename == "~" else "other")
        if filename == "~" and ("hmac" in name or "sha256" in name or "openssl" in name):
            key = "hashing"
        totals[key] = totals.get(key, 0.0) + tottime
    whole = sum(totals.values())
    lines = [f"{k:16s} {v:7.3f} s {v / whole:6.1%}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    return "own time by package:\n  " + "\n  ".join(lines) + "\n"


def top_entries(profile: cProfile.Profile, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    out.write(by_package(stats))
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit * 2)
    return out.getvalue()


async def main_async(watches: int, seconds: float, seed: int, top: int) -> int:
    logging.getLogger("taskbot").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    now = time.time()
    tasks = bench_tasks(watches, now=now, finish_within=FINISH_WITHIN, seed=seed)
    task_ids = [t.task_id for t in tasks]
    load_start = loadavg()
    with tempfile.TemporaryDirectory(prefix="taskbot-pollcpu-") as tmp:
        async with services(now, watches, FINISH_WITHIN, seed) as urls:
            settings = Settings(
                slack_bot_token=SecretStr(DEMO_BOT_TOKEN),
                slack_signing_secret=SecretStr(secrets.token_hex(16)),
                slack_api_url=urls["slack"] + "/api/",
                cloud_ak=sim.DEMO_ACCESS_KEY,
                cloud_sk=SecretStr(sim.DEMO_SECRET_KEY),
                cloud_project_id=sim.DEMO_PROJECT_ID,
                endpoint=urls["simulator"],
                database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
                poll_seconds=1.0,
                max_poll_seconds=1.0,
                api_rate=100_000.0,
                log_level="WARNING",
            )
            await preload(settings.database_url, task_ids, 0)
            runtime = Runtime(settings)
            async with serve_asgi(create_asgi(settings, runtime)):
                followups = runtime.followups
                await asyncio.sleep(5.0)  # warm-up: first polls spread over one interval
                bot_cpu, bot_polls = await measure_bot(followups, seconds)
                profile = cProfile.Profile()
                profile.enable()
                prof_cpu, prof_polls = await measure_bot(followups, min(10.0, seconds))
                profile.disable()
                load_bot = loadavg()
            floor_cpu, floor_requests, floor_wall = await floor_loop(urls["simulator"], task_ids, seconds)
            floor_profile = cProfile.Profile()
            floor_profile.enable()
            _, floor_prof_requests, _ = await floor_loop(urls["simulator"], task_ids, min(10.0, seconds))
            floor_profile.disable()
    per_poll = bot_cpu / bot_polls * 1000
    per_request = floor_cpu / floor_requests * 1000
    print(f"bench_pollcpu: {watches} watches of running tasks, poll interval 1 s (saturating), seed {seed}")
    print(f"load average: start {load_start}, after the bot windows {load_bot}")
    print(
        f"  bot:   {bot_polls} polls in {seconds:g} s ({bot_polls / seconds:.0f}/s), CPU {bot_cpu:.2f} s "
        f"-> {per_poll:.3f} ms CPU per poll ({1000 / per_poll:.0f} polls per CPU-second)"
    )
    print(
        f"  floor: {floor_requests} signed GETs + JSON parse in {floor_wall:.1f} s "
        f"({floor_requests / floor_wall:.0f}/s, {POLL_CONCURRENCY} at a time), CPU {floor_cpu:.2f} s "
        f"-> {per_request:.3f} ms CPU per request"
    )
    print(f"  ratio bot/floor: {per_poll / per_request:.2f} (target <= 2)")
    print(
        f"  under cProfile: {prof_polls} polls, {prof_cpu / max(1, prof_polls) * 1000:.3f} ms CPU per poll "
        "(profiler overhead included)\n"
    )
    print(top_entries(profile, top))
    print(f"floor under cProfile ({floor_prof_requests} requests):")
    print(by_package(pstats.Stats(floor_profile, stream=io.StringIO())))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watches", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    from bot.cli import run_fast

    sys.exit(run_fast(main_async(args.watches, args.seconds, args.seed, args.top)))


if __name__ == "__main__":
    main()
