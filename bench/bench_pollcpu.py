"""CPU per poll of the bot, before and after, against the floor of bare signed-GET loops (issues 12, 19).

One process serves the MetaStudio simulator (``--watches`` tasks that run far longer than the
benchmark) and the Slack stand-in (``bench.bench_watch services``). Every measurement then runs
in a fresh process of its own, one after the other, against those same servers:

* ``bot``: the real ``Runtime`` and ``FollowUps`` behind the Bolt app under uvicorn (SQLite
  file, uvloop as ``taskbot serve`` runs), re-arming one watch row per task at a 1-second poll
  interval, so polling runs flat out. After a warm-up, its CPU time (``time.process_time``,
  every thread) over ``--seconds`` is divided by the polls made in it. With ``--base DIR`` the
  same is measured for the code of another checkout (its own venv, ``DIR/.venv``), e.g. the
  commit before this work: ``git worktree add /work/wt-perf-base f73fcf7``.
* ``floor-httpx``: ``POLL_CONCURRENCY`` workers looping ``GET /v2/{project}/ies/task/{id}``
  through one ``httpx.AsyncClient`` built by ``bot.metastudio.transport.new_client`` (the bot's
  own transport and settings: httpcore, pool, CAs), each signed with
  ``bot.metastudio.signer.sign`` and parsed with ``response.json()`` (issue 19's floor); CPU time
  divided by requests.
* ``floor-aiohttp``: the same loop through one ``aiohttp.ClientSession``, the stack the client
  used before issue 19 (today's figure on record; aiohttp is imported here in ``bench/`` only).

Each run rotates the order of the checkouts (``--step DIR``, repeatable, adds intermediate
ones: which change bought what). A last pass runs the bot of base and new under cProfile and
prints each profile's own time by package and its top entries.

Run: ``python -m bench.bench_pollcpu --base /work/wt-perf-base --runs 3`` (about 8 minutes;
without ``--base``, this tree only). The base checkout needs only its files and a venv:
``git archive <commit> | tar -x -C DIR`` and a ``DIR/.venv`` symlink to this tree's venv do.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import os
import pstats
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
TREE = HERE.parent.parent
FINISH_WITHIN = 1e7  # no task finishes during the run: every poll is a running-task poll
WARMUP = 5.0
PROFILE_SECONDS = 10.0


# --- the measured processes ---------------------------------------------------------------------
# These run with the tree's own venv and code (``PYTHONPATH`` = that tree), so they use only what
# the base commit has too.


async def bot_child(opts: argparse.Namespace) -> dict[str, Any]:
    from pydantic import SecretStr

    from bench.bench_watch import bench_tasks, preload
    from bot.app import Runtime, create_asgi
    from bot.config import Settings
    from bot.db.base import Database
    from bot.db.schema import ensure_schema
    from bot.devtools import simulator as sim
    from bot.devtools.slack_standin import DEMO_BOT_TOKEN
    from bot.servers import serve_asgi

    logging.getLogger("taskbot").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)
    tasks = bench_tasks(opts.watches, now=opts.now, finish_within=FINISH_WITHIN, seed=opts.seed)
    with tempfile.TemporaryDirectory(prefix="taskbot-pollcpu-") as tmp:
        settings = Settings(
            slack_bot_token=SecretStr(DEMO_BOT_TOKEN),
            slack_signing_secret=SecretStr(secrets.token_hex(16)),
            slack_api_url=opts.slack + "/api/",
            cloud_ak=sim.DEMO_ACCESS_KEY,
            cloud_sk=SecretStr(sim.DEMO_SECRET_KEY),
            cloud_project_id=sim.DEMO_PROJECT_ID,
            endpoint=opts.simulator,
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}",
            poll_seconds=1.0,
            max_poll_seconds=1.0,
            api_rate=100_000.0,
            log_level="WARNING",
        )
        database = Database(settings.database_url)
        try:
            await ensure_schema(database.engine, migrate_on_start=True)
        finally:
            await database.dispose()
        await preload(settings.database_url, [t.task_id for t in tasks], 0)
        runtime = Runtime(settings)
        async with serve_asgi(create_asgi(settings, runtime)):
            followups = runtime.followups
            await asyncio.sleep(WARMUP)  # first polls spread over one interval, connections open
            # CPU time, not wall time: on a loaded box wall time charges other processes to us.
            profile = cProfile.Profile(time.process_time) if opts.profile else None
            if profile is not None:
                profile.enable()
            polls0, cpu0, wall0 = followups.polls, time.process_time(), time.perf_counter()
            await asyncio.sleep(opts.seconds)
            polls1, cpu1, wall1 = followups.polls, time.process_time(), time.perf_counter()
            if profile is not None:
                profile.disable()
                profile.dump_stats(opts.profile)
    return {"cpu": cpu1 - cpu0, "count": polls1 - polls0, "wall": wall1 - wall0}


def _signed_headers(host: str, path: str) -> dict[str, str]:
    import httpx

    from bot.devtools import simulator as sim
    from bot.metastudio import signer

    return signer.sign(
        access_key=sim.DEMO_ACCESS_KEY,
        secret_key=sim.DEMO_SECRET_KEY,
        method="GET",
        path=path,
        params=httpx.QueryParams(),
        headers={"Host": host, "Content-Type": "application/json", "X-Project-Id": sim.DEMO_PROJECT_ID},
    )


async def floor_child(opts: argparse.Namespace, stack: str) -> dict[str, Any]:
    """Signed GETs with a JSON parse, ``POLL_CONCURRENCY`` at a time: CPU seconds, requests, wall."""
    import aiohttp
    import httpx

    from bench.bench_watch import bench_tasks
    from bot.devtools import simulator as sim
    from bot.followups import POLL_CONCURRENCY

    task_ids = [
        t.task_id
        for t in bench_tasks(opts.watches, now=opts.now, finish_within=FINISH_WITHIN, seed=opts.seed)
    ]
    endpoint = opts.simulator
    host = httpx.URL(endpoint).netloc.decode()
    count = 0
    stop_at = 0.0

    def path_of(i: int) -> str:
        return f"/v2/{sim.DEMO_PROJECT_ID}/ies/task/{task_ids[i % len(task_ids)]}"

    async def httpx_worker(http: httpx.AsyncClient, offset: int) -> None:
        nonlocal count
        i = offset
        while time.perf_counter() < stop_at:
            path = path_of(i)
            response = await http.get(endpoint + path, headers=_signed_headers(host, path))
            response.raise_for_status()
            response.json()
            count += 1
            i += POLL_CONCURRENCY

    async def aiohttp_worker(http: aiohttp.ClientSession, offset: int) -> None:
        nonlocal count
        i = offset
        while time.perf_counter() < stop_at:
            path = path_of(i)
            async with http.get(endpoint + path, headers=_signed_headers(host, path)) as response:
                response.raise_for_status()
                json.loads(await response.read())
            count += 1
            i += POLL_CONCURRENCY

    async def measure(run: Any) -> dict[str, Any]:
        nonlocal count, stop_at
        stop_at = time.perf_counter() + WARMUP
        await asyncio.gather(*(run(k) for k in range(POLL_CONCURRENCY)))
        count, stop_at = 0, time.perf_counter() + opts.seconds
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(run(k) for k in range(POLL_CONCURRENCY)))
        return {"cpu": time.process_time() - cpu0, "count": count, "wall": time.perf_counter() - wall0}

    if stack == "httpx":
        from bot.metastudio import transport

        async with transport.new_client(connect_timeout=10, read_timeout=10) as client:
            return await measure(lambda k: httpx_worker(client, k))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        return await measure(lambda k: aiohttp_worker(session, k))


def child_main(opts: argparse.Namespace) -> None:
    from bot.cli import run_fast

    async def run() -> int:
        result = await (bot_child(opts) if opts.command == "bot" else floor_child(opts, opts.command[6:]))
        print(json.dumps(result), flush=True)
        return 0

    sys.exit(run_fast(run()))


# --- the orchestrator ---------------------------------------------------------------------------


@dataclass
class Measured:
    label: str
    cpu: float
    count: int
    wall: float

    @property
    def ms(self) -> float:
        return self.cpu / self.count * 1000

    def line(self) -> str:
        unit = "poll" if self.label.startswith("bot") else "request"
        return (
            f"{self.label:14s} {self.count:6d} {unit}s in {self.wall:4.1f} s ({self.count / self.wall:5.0f}/s), "
            f"CPU {self.cpu:5.2f} s -> {self.ms:.3f} ms per {unit} ({1000 / self.ms:5.0f} per CPU-second)"
        )


async def run_child(
    tree: Path,
    command: str,
    urls: dict[str, str],
    opts: argparse.Namespace,
    profile: str | None = None,
    name: str = "new",
) -> Measured:
    python = tree / ".venv" / "bin" / "python"
    args = [
        "-c",
        "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
        str(HERE),
        command,
        "--simulator",
        urls["simulator"],
        "--slack",
        urls["slack"],
        "--now",
        repr(opts.now),
        "--watches",
        str(opts.watches),
        "--seed",
        str(opts.seed),
        "--seconds",
        str(PROFILE_SECONDS if profile else opts.seconds),
    ]
    if profile:
        args += ["--profile", profile]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    process = await asyncio.create_subprocess_exec(
        str(python), *args, cwd=tree, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command} in {tree} failed ({process.returncode}):\n{err.decode()[-3000:]}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    label = f"bot ({name})" if command == "bot" else command
    return Measured(label, result["cpu"], result["count"], result["wall"])


GROUPS = (
    "bot/metastudio",
    "bot/followups",
    "bot/",
    "httpcore",
    "httpx",
    "anyio",
    "h11",
    "sniffio",
    "aiohttp",
    "yarl",
    "multidict",
    "sqlalchemy",
    "aiosqlite",
    "apscheduler",
    "prometheus_client",
    "pydantic",
    "uvicorn",
    "asyncio",
    "json",
    "logging",
)


def package_of(filename: str) -> str:
    """The group of a profiled file: the path inside site-packages names the library; elsewhere a
    path segment (a checkout's directory may be named like a library, e.g. ``/work/wt/httpx``)."""
    if filename == "~":
        return "builtins"
    _, marker, tail = filename.rpartition("site-packages/")
    for group in GROUPS:
        name = group.rstrip("/")
        if (
            (tail.startswith(name + "/") or tail.startswith(name + "."))
            if marker
            else f"/{name}/" in filename
        ):
            return group
    return "other"


def by_package(stats: pstats.Stats) -> str:
    """Own time (tottime) summed per package, so the waste can be placed."""
    totals: dict[str, float] = {}
    raw = stats.stats  # type: ignore[attr-defined]
    for (filename, _, name), (_, _, tottime, _, _) in raw.items():
        key = package_of(filename)
        if filename == "~" and ("hmac" in name or "sha256" in name or "openssl" in name):
            key = "hashing"
        totals[key] = totals.get(key, 0.0) + tottime
    whole = sum(totals.values())
    lines = [f"{k:18s} {v:7.3f} s {v / whole:6.1%}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]
    return "own time by package:\n  " + "\n  ".join(lines) + "\n"


def top_entries(path: str, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(path, stream=out)
    out.write(by_package(stats))
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


async def main_async(opts: argparse.Namespace) -> int:
    from bench.bench_watch import services

    # name -> checkout; "new" is this one. Each run rotates their order.
    trees: dict[str, Path] = {}
    if opts.base is not None:
        trees["base"] = opts.base
    for step in opts.step:
        trees[step.name] = step
    trees["new"] = TREE
    opts.now = time.time()
    print(
        f"bench_pollcpu: {opts.watches} watches of running tasks, poll interval 1 s, {opts.runs} runs of "
        f"{opts.seconds:g} s; " + ", ".join(f"{k} = {v}" for k, v in trees.items()) + f"; load {loadavg()}",
        flush=True,
    )
    rows: list[dict[str, Measured]] = []
    async with services(opts.now, opts.watches, FINISH_WITHIN, opts.seed) as urls:
        for run in range(opts.runs):
            names = list(trees)
            order = names[run % len(names) :] + names[: run % len(names)]
            row: dict[str, Measured] = {}
            for name in order:
                row[name] = await run_child(trees[name], "bot", urls, opts, name=name)
            for stack in ("httpx", "aiohttp"):
                row[stack] = await run_child(TREE, f"floor-{stack}", urls, opts)
            rows.append(row)
            print(f"run {run + 1} (load {loadavg()}):", flush=True)
            for measured in row.values():
                print("  " + measured.line(), flush=True)
            print("  " + ratios(row), flush=True)
        profiles: list[tuple[str, str, Measured]] = []
        if opts.profile:
            with tempfile.TemporaryDirectory(prefix="taskbot-pollcpu-prof-") as tmp:
                for name in [n for n in ("base", "new") if n in trees]:
                    path = str(Path(tmp) / f"{name}.prof")
                    measured = await run_child(trees[name], "bot", urls, opts, profile=path, name=name)
                    profiles.append((measured.label, top_entries(path, opts.top), measured))
    print("\nsummary (ms CPU per poll or request; per CPU-second in brackets):")
    for key in [*trees, "httpx", "aiohttp"]:
        values = [r[key].ms for r in rows]
        print(f"  {key:14s} " + "  ".join(f"{v:.3f} ({1000 / v:.0f})" for v in values))
    for label, text, measured in profiles:
        print(f"\n=== {label} under cProfile ({PROFILE_SECONDS:g} s): {measured.line()}\n{text}")
    return 0


def ratios(row: dict[str, Measured]) -> str:
    new = row["new"].ms
    parts = [
        f"new/floor-httpx {new / row['httpx'].ms:.2f} (target <= 1.5)",
        f"new/floor-aiohttp {new / row['aiohttp'].ms:.2f}",
        f"floor-httpx/floor-aiohttp {row['httpx'].ms / row['aiohttp'].ms:.2f}",
    ]
    if "base" in row:
        parts.append(f"base/floor-aiohttp {row['base'].ms / row['aiohttp'].ms:.2f}")
        for name, measured in row.items():
            if name not in {"base", "httpx", "aiohttp"}:
                parts.append(f"CPU per poll {name}/base {measured.ms / row['base'].ms:.2f}x")
    return "ratios: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "bot", "floor-httpx", "floor-aiohttp"]
    )
    parser.add_argument("--base", default=None, help="another checkout (with .venv) to measure as 'base'")
    parser.add_argument(
        "--step",
        action="append",
        type=Path,
        default=[],
        help="an intermediate checkout (with .venv), measured too, named by its directory",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--watches", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    # The measured processes' own arguments.
    parser.add_argument("--simulator", default="")
    parser.add_argument("--slack", default="")
    parser.add_argument("--now", type=float, default=0.0)
    parser.add_argument("--profile", dest="profile_out", default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    opts.base = Path(opts.base).resolve() if opts.base else None
    opts.step = [step.resolve() for step in opts.step]
    if opts.command != "run":
        opts.profile = opts.profile_out
        child_main(opts)
        return
    sys.path.insert(0, str(TREE))
    from bot.cli import run_fast

    sys.exit(run_fast(main_async(opts)))


if __name__ == "__main__":
    main()
