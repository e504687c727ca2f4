"""Exactly one alert per channel across ``kill -9`` and SIGTERM, with taskbot as a real OS process.

The bot runs as ``python -m bot.cli serve``; the MetaStudio simulator and the Slack stand-in run
in the test process on loopback. Watches are made with signed ``/task watch`` commands over
HTTP. The stand-in can hold its answer to ``chat.postMessage`` after recording the post, which
is exactly the window the exactly-once protocol guards: the alert is in Slack, the bot has not
recorded it yet.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.deliveries import DeliveryRow
from bot.devtools import simulator as sim
from bot.devtools.demo import is_alert
from bot.devtools.slack_standin import SlackStandIn
from bot.servers import serve_asgi
from tests.databases import open_database
from tests.support.cli import SERVE_START_SECONDS, free_port, serving_env
from tests.support.waiting import eventually

SIGNING_SECRET = "c7a5e5c7a5e5c7a5e5c7a5e5c7a5e5c7"  # 32 hex characters, the shape Slack issues
RESOURCE = "knowledge-intent-question-create"
CONFIRMED = "I'll tell this channel"


class HoldingSlack(SlackStandIn):
    """The stand-in, able to record a post and then hold (or delay) its answer."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: set[str] = set()
        self.released = asyncio.Event()
        self.delay = 0.0

    async def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        result = await super()._api_chat_postMessage(params)
        if channel in self.hold:
            await self.released.wait()
        elif self.delay:
            await asyncio.sleep(self.delay)
        return result

    def alerts(self) -> collections.Counter[str]:
        return collections.Counter(m.channel or "" for m in self.messages if is_alert(m))


@dataclass
class Cloud:
    simulator: sim.Simulator
    slack: HoldingSlack
    simulator_url: str


@pytest.fixture
async def cloud() -> AsyncIterator[Cloud]:
    simulator = sim.Simulator(tasks=[])
    slack = HoldingSlack()
    async with serve_asgi(simulator.app) as simulator_url, serve_asgi(slack.app) as slack_url:
        slack.base_url = slack_url
        try:
            yield Cloud(simulator, slack, simulator_url)
        finally:
            # Held answers go out so the stand-in's server can stop.
            slack.released.set()


class BotProcess:
    """``taskbot serve`` as a child process, its log in a file."""

    def __init__(self, cloud: Cloud, database_url: str, log_path: Path) -> None:
        self.cloud = cloud
        self.port = free_port()
        # Taken from the environment only in multi-workspace mode (installed_per_workspace).
        self.encryption_key = Fernet.generate_key().decode()
        self.log_path = log_path
        self.env = serving_env(
            SIGNING_SECRET,
            cloud.simulator_url,
            cloud.slack.api_url,
            METASTUDIO_MAX_RETRIES="1",
            DATABASE_URL=database_url,
            PORT=str(self.port),
            TASKBOT_POLL_SECONDS="0.2",
            TASKBOT_MAX_POLL_SECONDS="1",
            TASKBOT_CARD_UPDATE_SECONDS="0.5",
            TASKBOT_API_RATE="500",
            # On PostgreSQL a restart after kill -9 waits for the dead process's shard leases.
            TASKBOT_LEASE_SECONDS="3",
            TASKBOT_LOG_FORMAT="json",
        )
        self.process: asyncio.subprocess.Process | None = None

    def installed_per_workspace(self) -> BotProcess:
        """Multi-workspace mode (OAuth installs at the stand-in), not the one bot token; stored
        secrets are encrypted with ``encryption_key``."""
        for name in (
            "SLACK_BOT_TOKEN",
            "HUAWEICLOUD_SDK_AK",
            "HUAWEICLOUD_SDK_SK",
            "HUAWEICLOUD_SDK_PROJECT_ID",
        ):
            self.env.pop(name)
        self.env.update(
            SLACK_CLIENT_ID=self.cloud.slack.client_id,
            SLACK_CLIENT_SECRET=self.cloud.slack.client_secret,
            TASKBOT_ENCRYPTION_KEY=self.encryption_key,
            TASKBOT_ALLOWED_ENDPOINT_HOSTS="http://127.0.0.1",
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, http: httpx.AsyncClient) -> None:
        for _attempt in range(3):
            if await self._start_once(http):
                return
            # The free port was taken before the bot bound it (another listener of this test
            # asked the kernel for a port too): pick another one.
            self.port = free_port()
            self.env["PORT"] = str(self.port)
        raise AssertionError("taskbot serve found no free port\n" + self.log())

    async def _start_once(self, http: httpx.AsyncClient) -> bool:
        """True once /healthz answers; False when the port turned out to be in use."""
        started_at = len(self.log())
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "serve", env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + SERVE_START_SECONDS
        while True:
            if self.process.returncode is not None and "Address already in use" in self.log()[started_at:]:
                return False
            assert self.process.returncode is None, self.log()
            try:
                if (await http.get(f"{self.url}/healthz")).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "taskbot serve did not come up\n" + self.log()
            await asyncio.sleep(0.05)

    def send(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    async def watch(self, http: httpx.AsyncClient, task_id: str, channel: str) -> None:
        body, headers = self.cloud.slack.slash_command(
            SIGNING_SECRET, f"watch {task_id}", channel_id=channel, user_id="U0" + channel[2:]
        )
        response = await http.post(f"{self.url}/slack/events", content=body, headers=headers)
        assert response.status_code == 200

    async def kill_if_running(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def add_tasks(simulator: sim.Simulator, finishes_in: list[float], first: int = 0) -> list[str]:
    """Tasks that finish ``finishes_in`` seconds from now; their ids.

    Numbered from ``first``: adding a number again replaces that task (a new end, same id).
    """
    now = time.time()
    ids = []
    for number, seconds in enumerate(finishes_in, start=first):
        task_id = f"c4a50000000000000000000000{number:06x}"
        duration = seconds + 2.0
        simulator.add_task(
            sim.SimTask(
                task_id=task_id,
                task_name=f"Import {number}",
                resource=RESOURCE,
                total_count=500,
                duration_seconds=duration,
                begin_time_ms=round((now + seconds - duration) * 1000),
            )
        )
        ids.append(task_id)
    return ids


async def watch_all(bot: BotProcess, http: httpx.AsyncClient, tasks: dict[str, str]) -> None:
    """One signed ``/task watch`` per channel; waits for every confirmation."""
    slack = bot.cloud.slack
    await asyncio.gather(*(bot.watch(http, task_id, channel) for channel, task_id in tasks.items()))
    try:
        await slack.wait_for(lambda ms: sum(CONFIRMED in m.text for m in ms) >= len(tasks), timeout=15)
    except TimeoutError:
        pytest.fail("not every watch was confirmed: " + repr([(m.via, m.text[:80]) for m in slack.messages]))
    assert sum(CONFIRMED in m.text for m in slack.messages if m.via == "response_url") == len(tasks)


@contextlib.asynccontextmanager
async def two_bots(
    cloud: Cloud, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[BotProcess, BotProcess, httpx.AsyncClient]]:
    """A first bot and the one that takes over from it, on one database; neither outlives the test."""
    first = BotProcess(cloud, database_url, tmp_path / "first.log")
    second = BotProcess(cloud, database_url, tmp_path / "second.log")
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            yield first, second, http
        finally:
            await first.kill_if_running()
            await second.kill_if_running()


async def start_and_watch(
    bot: BotProcess, http: httpx.AsyncClient, prefix: str, finishes_in: list[float]
) -> dict[str, str]:
    """Start ``bot``, add tasks finishing ``finishes_in`` seconds from now, and watch each from its
    own channel (``prefix`` and a number); {channel: task id}."""
    await bot.start(http)
    ids = add_tasks(bot.cloud.simulator, finishes_in)
    channels = {f"{prefix}{n:03d}": task_id for n, task_id in enumerate(ids)}
    await watch_all(bot, http, channels)
    return channels


async def deliveries(database_url: str) -> list[DeliveryRow]:
    async with open_database(database_url) as database, AsyncSession(database.engine) as session:
        return list((await session.scalars(select(DeliveryRow))).all())


# --- kill -9 ---------------------------------------------------------------------------------------


async def test_sigkill_mid_run_then_restart_alerts_every_channel_exactly_once(
    cloud: Cloud, database_url: str, tmp_path: Path
) -> None:
    slack = cloud.slack
    # These channels' posts reach Slack, but the bot never hears back before it dies.
    held = {f"C0CRASH{n:03d}" for n in (8, 16)}
    slack.hold = set(held)
    async with two_bots(cloud, database_url, tmp_path) as (first, second, http):
        # 50 tasks, running while the watches are made (however slow the machine), then
        # finishing one after another over 3 s (the same ids, replaced).
        channels = await start_and_watch(first, http, "C0CRASH", [600.0] * 50)
        add_tasks(cloud.simulator, [0.5 + 0.06 * n for n in range(50)])

        def mid_run() -> bool:
            alerted = slack.alerts()
            return all(alerted[c] for c in held) and sum(alerted.values()) >= len(held) + 10

        await eventually(mid_run, within=15, what="some alerts")
        first.send(signal.SIGKILL)
        assert await first.wait(5) == -signal.SIGKILL
        at_kill = slack.alerts()
        assert 0 < len(at_kill) < len(channels), at_kill
        slack.hold.clear()
        slack.released.set()
        owed = [d for d in await deliveries(database_url) if d.status in ("pending", "sending")]
        assert {d.channel_id for d in owed if d.status == "sending"} >= held

        await second.start(http)
        await tell_every_channel_then_stop(second, slack, channels, database_url, within=20)

    assert slack.alerts() == collections.Counter(dict.fromkeys(channels, 1))
    # The held posts were found in the channel by their metadata key, not posted again.
    for channel in held:
        posts = [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == channel]
        assert len(posts) == 1
    assert "already posted; not posting again" in second.log()
    rows = await deliveries(database_url)
    assert sorted(d.channel_id for d in rows) == sorted(channels)
    ts_by_channel = {m.channel: m.ts for m in slack.messages if is_alert(m)}
    for row in rows:
        assert row.status == "sent" and row.slack_ts == ts_by_channel[row.channel_id]
    assert "Traceback" not in first.log() + second.log()


async def tell_every_channel_then_stop(
    bot: BotProcess, slack: SlackStandIn, channels: Collection[str], database_url: str, *, within: float
) -> None:
    """Wait until every channel has its alert and every delivery is recorded as sent, then stop
    ``bot`` with SIGTERM: it must exit 0."""

    async def recorded() -> bool:
        return sum(d.status == "sent" for d in await deliveries(database_url)) >= len(channels)

    await eventually(
        lambda: len(slack.alerts()) == len(channels), within=within, what="every channel's alert"
    )
    await eventually(recorded, what="every delivery recorded as sent")
    bot.send(signal.SIGTERM)
    assert await bot.wait(15) == 0, bot.log()


# --- SIGTERM -------------------------------------------------------------------------------------


async def test_sigterm_finishes_in_flight_deliveries_and_exits_zero(
    cloud: Cloud, sqlite_url: str, tmp_path: Path
) -> None:
    slack = cloud.slack
    async with two_bots(cloud, sqlite_url, tmp_path) as (first, second, http):
        channels = await start_and_watch(first, http, "C0TERM", [3.0 + 0.01 * n for n in range(20)])
        # Every answer to chat.postMessage now takes a second: deliveries are in flight.
        slack.delay = 1.0
        await eventually(lambda: len(slack.alerts()) >= 1, within=15, what="the first alert")
        first.send(signal.SIGTERM)
        stopping = time.monotonic()
        assert await first.wait(15) == 0, first.log()
        stop_seconds = time.monotonic() - stopping
        # Up to 8 deliveries at a time, a second each: about 3 s for 20, never the 10 s grace.
        assert stop_seconds < 8, stop_seconds
        assert "unfinished" not in first.log()

        after_stop = slack.alerts()
        rows = await deliveries(sqlite_url)
        # Every alert that was due when SIGTERM came is out, exactly once, and recorded.
        assert rows and all(r.status == "sent" for r in rows)
        assert after_stop == collections.Counter({r.channel_id: 1 for r in rows})
        ts_by_channel = {m.channel: m.ts for m in slack.messages if is_alert(m)}
        assert all(r.slack_ts == ts_by_channel[r.channel_id] for r in rows)

        slack.delay = 0.0
        await second.start(http)
        started = [r for r in second.records() if str(r.get("msg", "")).startswith("follow-ups started")]
        assert started and "0 deliveries owed" in started[0]["msg"]
        # Watches still open at SIGTERM are polled again and told; nothing is told twice.
        await tell_every_channel_then_stop(second, slack, channels, sqlite_url, within=15)
    assert slack.alerts() == collections.Counter(dict.fromkeys(channels, 1))
    assert "Traceback" not in first.log() + second.log()
