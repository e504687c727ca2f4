"""The watches' change detector on the real engine: early ends seen by the list sweep.

The real ``FollowUps`` engine (its timers, a SQLite file, ``ListSweeps``) against the MetaStudio
simulator and the Slack stand-in on loopback sockets, in this process. ``--tasks`` tasks start
together in one workspace, durations uniform in [``--min-seconds``, ``--max-seconds``]; one in
three ends early (``ends_early_at_seconds``: ``end_time`` set, counts frozen) at 30%-95% of its
duration. Two engines watch the same tasks at once, each on its own simulator:

* **sweeps**: the engine as it runs, its ``changes:<team>`` job sweeping the list every
  ``list_seconds`` (25 s ±10%) while two watches or more run;
* **no sweeps**: the same engine with a policy that never sweeps (``list_min_watches`` out of
  reach), so every watch is unlisted (the 27 s ceiling alone).

Reports, per engine, MetaStudio calls per finished task (polls and list pages, counted by the
simulator) against a naive 5 s poll (computed), and the alert delay (the stand-in's receipt of
the alert minus the task's ``end_time``) for early ends and for the others.

Run: ``python -m bench.bench_changes`` (30 tasks of 3-10 min; about 12 minutes, light on CPU);
``--tasks 50 --min-seconds 600 --max-seconds 1200`` for longer tasks (about 22 minutes).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from pydantic import SecretStr
from slack_sdk.web.async_client import AsyncWebClient

from bench.common import import_task, percentile, run_benchmark
from bot.config import Settings
from bot.db.base import Database
from bot.db.followups import FollowUpStore
from bot.devtools import simulator as sim_module
from bot.devtools.simulator import SimTask, Simulator
from bot.devtools.slack_standin import DEMO_BOT_TOKEN, DEMO_TEAM_ID, SlackStandIn
from bot.followups import DELIVERY_EVENT, FollowUps
from bot.followups.polling import PollPolicy
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.credentials import AkSk
from bot.servers import serve_asgi
from bot.slack.poster import SlackPoster

TEAM = DEMO_TEAM_ID


@dataclass(frozen=True)
class Planned:
    task: SimTask
    early: bool


def plan_tasks(count: int, low: float, high: float, rng: random.Random) -> list[Planned]:
    begin_ms = round(time.time() * 1000)
    planned = []
    for number in range(count):
        duration = rng.uniform(low, high)
        early = number % 3 == 0
        planned.append(
            Planned(
                import_task(
                    f"{number + 1:032x}",
                    f"bench {number}",
                    total_count=rng.randint(1_000, 100_000),
                    duration_seconds=duration,
                    begin_time_ms=begin_ms,
                    ends_early_at_seconds=duration * rng.uniform(0.3, 0.95) if early else None,
                ),
                early,
            )
        )
    return planned


@asynccontextmanager
async def engine_on(
    stack: AsyncExitStack,
    planned: list[Planned],
    slack: SlackStandIn,
    slack_client: AsyncWebClient,
    db_url: str,
    *,
    sweeps: bool,
) -> AsyncIterator[tuple[FollowUps, Simulator]]:
    sim = Simulator(tasks=[p.task for p in planned])
    sim_url = await stack.enter_async_context(serve_asgi(sim.app))
    credentials = AkSk(
        project_id=sim_module.DEMO_PROJECT_ID,
        access_key=sim_module.DEMO_ACCESS_KEY,
        secret_key=SecretStr(sim_module.DEMO_SECRET_KEY),
    )
    metastudio = MetaStudioClient(endpoint=sim_url, credentials=credentials)
    stack.push_async_callback(metastudio.aclose)
    database = Database(db_url)
    await database.create_all()
    stack.push_async_callback(database.dispose)

    async def metastudio_for(_team: str) -> MetaStudioClient:
        return metastudio

    async def slack_for(_team: str) -> AsyncWebClient:
        return slack_client

    settings = Settings(api_rate=1000.0, watch_max_hours=1.0)
    policy = PollPolicy.from_intervals(settings.poll_seconds, settings.max_poll_seconds)
    engine = FollowUps(
        settings,
        FollowUpStore(database),
        metastudio_for=metastudio_for,
        poster=SlackPoster(slack_for),
        policy=policy if sweeps else replace(policy, list_min_watches=sys.maxsize),
    )
    await engine.start()
    try:
        yield engine, sim
    finally:
        await engine.stop(grace=2)


def alerted_at(slack: SlackStandIn, channel: str, task_ids: list[str]) -> dict[str, float]:
    """Task id -> when the stand-in received its alert in ``channel`` (wall clock)."""
    seen: dict[str, float] = {}
    for message in slack.messages:
        if message.channel != channel or message.via != "chat.postMessage":
            continue
        if (message.payload.get("metadata") or {}).get("event_type") != DELIVERY_EVENT:
            continue
        text = json.dumps(message.payload)
        for task_id in task_ids:
            if task_id in text:
                seen.setdefault(task_id, message.wall)
                break
    return seen


def report(name: str, planned: list[Planned], sim: Simulator, alerts: dict[str, float]) -> str:
    calls = sum(sim.requests[("show", p.task.task_id)] for p in planned) + sim.requests[("list", "")]
    naive = sum(math.ceil((p.task.end_time_ms - p.task.begin_time_ms) / 5000) + 1 for p in planned)
    lines = [
        f"| {name} | {calls / len(planned):.1f} | {calls / naive:.3f} | {sim.requests[('list', '')]} | "
        f"{len(alerts)} of {len(planned)} |"
    ]
    for kind, early in (("early end", True), ("others", False)):
        delays = [
            alerts[p.task.task_id] - p.task.end_time_ms / 1000
            for p in planned
            if p.early == early and p.task.task_id in alerts
        ]
        if delays:
            lines.append(
                f"|   {kind} (n={len(delays)}): alert delay p50 {percentile(delays, 50):.1f} s, "
                f"p95 {percentile(delays, 95):.1f} s, max {max(delays):.1f} s | | | | |"
            )
    return "\n".join(lines)


async def main(tasks: int, min_seconds: float, max_seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    planned = plan_tasks(tasks, min_seconds, max_seconds, rng)
    slack = SlackStandIn()
    async with AsyncExitStack() as stack:
        slack.base_url = await stack.enter_async_context(serve_asgi(slack.app))
        slack_client = AsyncWebClient(token=DEMO_BOT_TOKEN, base_url=slack.api_url)
        workdir = stack.enter_context(tempfile.TemporaryDirectory())
        runs: dict[str, tuple[FollowUps, Simulator]] = {}
        for name in ("sweeps", "no sweeps"):
            db_url = f"sqlite+aiosqlite:///{workdir}/{name.replace(' ', '_')}.db"
            runs[name] = await stack.enter_async_context(
                engine_on(stack, planned, slack, slack_client, db_url, sweeps=name == "sweeps")
            )
        channels = {"sweeps": "C0SWEEPS01", "no sweeps": "C0ALONE001"}
        ids = [p.task.task_id for p in planned]
        for name, (engine, _sim) in runs.items():
            for p in planned:
                await engine.watch(
                    team_id=TEAM, task_id=p.task.task_id, channel_id=channels[name], user_id="U0BENCH01"
                )
        deadline = time.time() + max_seconds + 120
        while time.time() < deadline:
            if all(len(alerted_at(slack, channel, ids)) == tasks for channel in channels.values()):
                break
            await asyncio.sleep(1.0)
        print(
            f"bench_changes: {tasks} tasks at once in one workspace, {min_seconds:g}-{max_seconds:g} s, seed {seed}"
        )
        print(f"early ends: {sum(p.early for p in planned)}; naive 5 s poll computed from each task's end\n")
        print("| engine | calls per finished task | x naive 5 s | list calls | alerts |")
        print("|---|---|---|---|---|")
        for name, (_engine, sim) in runs.items():
            print(report(name, planned, sim, alerted_at(slack, channels[name], ids)))
        durations = [p.task.end_time_ms / 1000 - p.task.begin_time_ms / 1000 for p in planned]
        print(f"\nmean time to end {statistics.fmean(durations):.0f} s")


if __name__ == "__main__":
    run_benchmark(main, tasks=30, min_seconds=180.0, max_seconds=600.0, seed=26)
