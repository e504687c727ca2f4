"""Several ``taskbot serve`` replicas on one PostgreSQL database: one poller per workspace.

Real processes, the local PostgreSQL, the MetaStudio simulator and the Slack stand-in on
loopback (as in ``tests/test_crash_recovery.py``). Each replica reaches the simulator on a
listener of its own, so the simulator's request log says which replica polled which task.
The workspaces are three team ids sent in signed slash commands to a single-workspace bot
(one bot token): enough for three shards without three OAuth installs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.db.leases import LeaseStore
from bot.devtools.slack_standin import DEMO_APP_TOKEN, sign_request
from bot.servers import serve_asgi
from tests.databases import open_database
from tests.support.waiting import eventually
from tests.test_crash_recovery import (  # noqa: F401 - cloud is a fixture
    CONFIRMED,
    SIGNING_SECRET,
    BotProcess,
    Cloud,
    add_tasks,
    cloud,
    deliveries,
)

LEASE = 3.0
POLL = 1.0
TEAMS = ("T0SHARD1", "T0SHARD2", "T0SHARD3")
# Seconds until a task finishes, for one that must not finish before the test says so.
RUNNING = 600.0

Poll = tuple[float, str, str]
"""(monotonic time, replica name, task id) of one task look-up the simulator answered."""


class Fleet:
    """Replicas sharing one database, each with its own tagged route to the simulator."""

    def __init__(self, stack: Cloud, database_url: str, tmp_path: Path) -> None:
        self.cloud = stack
        self.lease = LEASE
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.polls: list[Poll] = []
        self.replicas: dict[str, BotProcess] = {}
        self._stack = contextlib.AsyncExitStack()
        self.starts = collections.Counter[str]()

    def _tagged(self, name: str) -> Callable[..., Awaitable[None]]:
        app = self.cloud.simulator.app

        async def tagged(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and "/ies/task/" in scope["path"]:
                self.polls.append((time.monotonic(), name, scope["path"].rsplit("/", 1)[-1]))
            await app(scope, receive, send)

        return tagged

    async def add(self, name: str, http: httpx.AsyncClient, **env: str) -> BotProcess:
        url = await self._stack.enter_async_context(serve_asgi(self._tagged(name)))
        bot = BotProcess(self.cloud, self.database_url, self.tmp_path / f"{name}.log")
        bot.env.update(
            METASTUDIO_ENDPOINT=url,
            TASKBOT_LEASE_SECONDS=str(self.lease),
            TASKBOT_POLL_SECONDS=str(POLL),
            TASKBOT_MAX_POLL_SECONDS=str(2 * POLL),
            **env,
        )
        self.replicas[name] = bot
        await bot.start(http)
        return bot

    async def restart(self, name: str, http: httpx.AsyncClient) -> None:
        await self.replicas[name].start(http)

    def name_of(self, owner: str) -> str:
        pid = int(owner.split(":")[1])
        return next(n for n, b in self.replicas.items() if b.process is not None and b.process.pid == pid)

    async def owners(self) -> dict[str, str]:
        async with open_database(self.database_url) as database:
            return {team: self.name_of(who) for team, who in (await LeaseStore(database).owners()).items()}

    async def close(self) -> None:
        for bot in self.replicas.values():
            if bot.process is not None and bot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    bot.process.send_signal(signal.SIGCONT)
            await bot.kill_if_running()
        await self._stack.aclose()


@pytest.fixture
async def fleet(
    cloud: Cloud,  # noqa: F811
    postgres_url: str,
    tmp_path: Path,
) -> AsyncIterator[Fleet]:
    fleet = Fleet(cloud, postgres_url, tmp_path)
    try:
        yield fleet
    finally:
        await fleet.close()


async def watch_in(bot: BotProcess, http: httpx.AsyncClient, team: str, task_id: str, channel: str) -> None:
    slack = bot.cloud.slack
    form = slack.slash_command_fields(f"watch {task_id}", channel_id=channel, user_id="U0" + channel[2:])
    form["team_id"] = team
    body = urlencode(form).encode()
    response = await http.post(
        f"{bot.url}/slack/events", content=body, headers=sign_request(SIGNING_SECRET, body)
    )
    assert response.status_code == 200


async def watch_everywhere(
    fleet: Fleet, http: httpx.AsyncClient, finishes_in: list[float]
) -> tuple[dict[str, str], dict[str, str]]:
    """One watch per channel, spread over the teams and made through every replica in turn.

    Returns channel -> task id and task id -> team.
    """
    ids = add_tasks(fleet.cloud.simulator, finishes_in)
    bots = list(fleet.replicas.values())
    channels: dict[str, str] = {}
    team_of: dict[str, str] = {}
    jobs = []
    for number, task_id in enumerate(ids):
        channel = f"C0REPL{number:04d}"
        team = TEAMS[number % len(TEAMS)]
        channels[channel], team_of[task_id] = task_id, team
        jobs.append(watch_in(bots[number % len(bots)], http, team, task_id, channel))
    await asyncio.gather(*jobs)
    slack = fleet.cloud.slack
    await slack.wait_for(lambda ms: sum(CONFIRMED in m.text for m in ms) >= len(ids), timeout=20)
    return channels, team_of


def double_polls(
    polls: list[Poll], windows: list[tuple[float, float]], since: float
) -> list[tuple[Poll, Poll]]:
    """Consecutive polls of one task by two replicas closer than half the interval, outside ``windows``."""
    by_task: dict[str, list[Poll]] = collections.defaultdict(list)
    for poll in polls:
        if poll[0] >= since:
            by_task[poll[2]].append(poll)
    found = []
    for task_polls in by_task.values():
        task_polls.sort()
        for before, after in itertools.pairwise(task_polls):
            close = after[0] - before[0] < POLL / 2
            excused = any(start <= after[0] <= end for start, end in windows)
            if before[1] != after[1] and close and not excused:
                found.append((before, after))
    return found


def first_handovers(polls: list[Poll], team_of: dict[str, str], since: float) -> list[tuple[float, float]]:
    """One interval after each team's first change of poller since ``since``: a shard handed back
    (a fair-share rebalance) is polled at once by its new owner, just after the old one's last
    poll. Only the first change per team is excused; two replicas both polling keep alternating."""
    windows = []
    for team in set(team_of.values()):
        mine = sorted(p for p in polls if p[0] >= since and team_of.get(p[2]) == team)
        switch = next((after for before, after in itertools.pairwise(mine) if before[1] != after[1]), None)
        if switch is not None:
            windows.append((switch[0], switch[0] + POLL))
    return windows


def first_poll_by_other(
    polls: list[Poll], team_of: dict[str, str], teams: set[str], replica: str, after: float
) -> float | None:
    """When another replica first polled a task of ``teams`` after ``after``."""
    times = [t for t, name, task in polls if t > after and name != replica and team_of.get(task) in teams]
    return min(times) if times else None


def assert_one_alert_each(fleet: Fleet, channels: dict[str, str]) -> None:
    assert fleet.cloud.slack.alerts() == collections.Counter(dict.fromkeys(channels, 1))


async def every_alert_recorded_sent(fleet: Fleet, channels: dict[str, str]) -> None:
    """Wait until every channel's alert is posted and its delivery row says sent.

    A replica posts, then records the row as sent: once every row says so, no replica holds a
    delivery it has yet to post, so a duplicate would already be in the stand-in's record.
    """

    async def recorded() -> bool:
        rows = await deliveries(fleet.database_url)
        return len(fleet.cloud.slack.alerts()) == len(channels) and all(row.status == "sent" for row in rows)

    await eventually(recorded, within=60, what="every alert posted and recorded as sent")
    assert sorted(row.channel_id for row in await deliveries(fleet.database_url)) == sorted(channels)


def polls_of_each(polls: list[Poll], task_ids: Collection[str], since: float) -> int:
    """How many times the least-polled of ``task_ids`` was polled since ``since``."""
    counts = collections.Counter(task for t, _, task in polls if t >= since)
    return min(counts[task] for task in task_ids)


async def spread_over_replicas(fleet: Fleet) -> dict[str, str]:
    """Wait until every team is owned and every replica owns one; team -> replica."""
    deadline = time.monotonic() + 4 * LEASE
    while True:
        owners = await fleet.owners()
        if set(owners) == set(TEAMS) and len(set(owners.values())) == len(fleet.replicas):
            return owners
        assert time.monotonic() < deadline, f"shards not spread: {owners}"
        await asyncio.sleep(0.1)


# --- tests ----------------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_sigkill_one_of_three_replicas_its_shards_are_taken_over_and_every_channel_alerted_once(
    fleet: Fleet,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for name in ("r1", "r2", "r3"):
            await fleet.add(name, http)
        # 60 watches in 60 channels. The tasks run until the dead replica's shards are taken
        # over, then finish one after another: every alert is the survivors' to send, once.
        channels, team_of = await watch_everywhere(fleet, http, [RUNNING] * 60)
        watched = time.monotonic()
        owners = await spread_over_replicas(fleet)
        spread = time.monotonic()
        await eventually(
            lambda: polls_of_each(fleet.polls, channels.values(), since=spread) >= 3,
            within=30,
            what="every task polled three times by its one owner",
        )
        victim = owners[TEAMS[0]]
        orphaned = {team for team, name in owners.items() if name == victim}
        assert not fleet.cloud.slack.alerts()
        fleet.replicas[victim].send(signal.SIGKILL)
        killed = time.monotonic()
        assert await fleet.replicas[victim].wait(5) == -signal.SIGKILL

        taken = await eventually(
            lambda: first_poll_by_other(fleet.polls, team_of, orphaned, victim, killed),
            within=4 * LEASE,
            what="a poll of the dead replica's shards by another",
        )
        # The same ids, now finishing over 15 s: alerts arrive steadily, not all in one burst.
        add_tasks(fleet.cloud.simulator, [0.5 + 0.25 * n for n in range(len(channels))])
        await every_alert_recorded_sent(fleet, channels)

    takeover = taken - killed
    print(f"takeover after SIGKILL: first poll by the new owner {takeover:.2f} s after the kill")
    # Claimed within one lease (+ one heartbeat), first poll within one interval after that.
    assert takeover < LEASE + LEASE / 3 + POLL + 0.5
    assert not [p for p in fleet.polls if p[1] == victim and p[0] > killed]
    assert double_polls(fleet.polls, [], since=watched + POLL) == []
    assert_one_alert_each(fleet, channels)
    assert set((await fleet.owners()).values()) <= {"r1", "r2", "r3"} - {victim}


@pytest.mark.postgres
async def test_rolling_restart_hands_every_shard_over_in_seconds_and_misses_no_alert(fleet: Fleet) -> None:
    # The default lease: hand-overs must not wait for it (SIGTERM releases, the others see it).
    fleet.lease = 30.0
    async with httpx.AsyncClient(timeout=10) as http:
        for name in ("r1", "r2", "r3"):
            await fleet.add(name, http)
        # The tasks end in waves, one around each hand-over; the later waves keep every shard
        # polled, however long a restart takes on a loaded machine (a task set to end some
        # seconds after the watch could be over before the last replica stopped).
        channels, team_of = await watch_everywhere(fleet, http, [RUNNING] * 30)
        watched = time.monotonic()
        await spread_over_replicas(fleet)
        handovers = []
        windows = []
        wave = 8
        for number, name in enumerate(("r1", "r2", "r3")):
            add_tasks(fleet.cloud.simulator, [0.5 + 0.3 * n for n in range(wave)], first=number * wave)
            owners = await fleet.owners()
            held = {team for team, who in owners.items() if who == name}
            bot = fleet.replicas[name]
            bot.send(signal.SIGTERM)
            stopped = time.monotonic()
            assert await bot.wait(15) == 0, bot.log()
            if held:
                await eventually(
                    lambda held=held, name=name, stopped=stopped: (
                        first_poll_by_other(fleet.polls, team_of, held, name, stopped) is not None
                    ),
                    within=10,
                    what=f"a new owner for {name}'s shards",
                )
                taken = first_poll_by_other(fleet.polls, team_of, held, name, stopped)
                assert taken is not None
                handovers.append(taken - stopped)
            windows.append((stopped, stopped + 1.5))
            await fleet.restart(name, http)
        add_tasks(
            fleet.cloud.simulator, [0.5 + 0.3 * n for n in range(len(channels) - 3 * wave)], first=3 * wave
        )
        await every_alert_recorded_sent(fleet, channels)

    print("rolling restart hand-overs (s):", [round(h, 2) for h in handovers])
    assert handovers and max(handovers) < 5.0
    assert double_polls(fleet.polls, windows, since=watched + POLL) == []
    assert_one_alert_each(fleet, channels)


@pytest.mark.postgres
async def test_stalled_owner_loses_its_shard_stops_polling_and_nothing_is_sent_twice(fleet: Fleet) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        for name in ("r1", "r2"):
            await fleet.add(name, http)
        channels, team_of = await watch_everywhere(fleet, http, [5.0 + 0.3 * n for n in range(24)])
        owners = await fleet.owners()
        deadline = time.monotonic() + 4 * LEASE
        while set(owners) != set(TEAMS):
            assert time.monotonic() < deadline, owners
            await asyncio.sleep(0.1)
            owners = await fleet.owners()
        victim = owners[TEAMS[0]]
        lost = {team for team, who in owners.items() if who == victim}
        bot = fleet.replicas[victim]
        bot.send(signal.SIGSTOP)
        stopped = time.monotonic()
        others = {n for n in fleet.replicas if n != victim}

        async def taken_over() -> bool:
            polled = first_poll_by_other(fleet.polls, team_of, lost, victim, stopped) is not None
            return polled and set((await fleet.owners()).values()) == others

        await eventually(
            taken_over, within=2 * LEASE, what="the stalled replica's shards polled by the other"
        )
        bot.send(signal.SIGCONT)
        woke = time.monotonic()
        # It noticed at once (by its own clock): no poll of a lost shard until it could claim one
        # again (the fair share gives it work back only after the other replica releases it).
        woken = (woke + 0.2, woke + LEASE / 3)
        await eventually(lambda: "lost" in bot.log(), within=2 * LEASE, what="the woken replica's word on it")
        await every_alert_recorded_sent(fleet, channels)
        # The window watched for late polls has passed too.
        await asyncio.sleep(max(0.0, woken[1] - time.monotonic()))
        owned_after = await fleet.owners()

    late = [
        p for p in fleet.polls if p[1] == victim and woken[0] < p[0] < woken[1] and team_of.get(p[2]) in lost
    ]
    assert late == []
    rebalanced = first_handovers(fleet.polls, team_of, since=woken[0])
    assert double_polls(fleet.polls, rebalanced, since=woken[0]) == []
    assert "lost" in bot.log() and "shard leases" in bot.log()
    assert_one_alert_each(fleet, channels)
    assert owned_after  # the fleet still owns what remains active


@pytest.mark.postgres
async def test_two_socket_mode_replicas_answer_the_envelopes_each_gets_and_alert_once(fleet: Fleet) -> None:
    slack = fleet.cloud.slack
    # An app-level token each, so the stand-in knows whose every connection is: a replica that
    # reconnects (Slack's refresh_requested, or a PONG missed under load) still gets its share.
    tokens = {name: f"{DEMO_APP_TOKEN}-{name}" for name in ("r1", "r2")}
    slack.app_tokens.update(tokens.values())
    async with httpx.AsyncClient(timeout=10) as http:
        for name, token in tokens.items():
            await fleet.add(name, http, SLACK_APP_TOKEN=token)
            await slack.wait_for_sockets(1, timeout=30, app_token=token)
        ids = add_tasks(fleet.cloud.simulator, [6.0 + 0.3 * n for n in range(8)])
        channels: dict[str, str] = {}
        sent: dict[str, list[str]] = {name: [] for name in tokens}  # replica -> teams of its envelopes
        for number, task_id in enumerate(ids):
            if number == len(ids) // 2:
                # Halfway, Slack asks one replica to reconnect: its envelopes go to its new connection.
                await slack.refresh_sockets(tokens["r1"], timeout=30)
            # The replicas take turns and the team changes every second command, so each
            # replica is handed watches of both workspaces: the one it owns and the other's.
            channel = f"C0SOCK{number:04d}"
            channels[channel] = task_id
            team = TEAMS[(number // 2) % 2]
            name = list(tokens)[number % 2]
            ack = await slack.socket_slash_command(
                f"watch {task_id}",
                channel_id=channel,
                user_id="U0" + channel[2:],
                team_id=team,
                app_token=tokens[name],
                timeout=20,
            )
            # Acknowledged on the connection it went to, one of this replica's.
            assert slack.socket_tokens[slack.socket_acks[ack["envelope_id"]]] == tokens[name]
            sent[name].append(team)
        await slack.wait_for(lambda ms: sum(CONFIRMED in m.text for m in ms) >= len(ids), timeout=20)
        await every_alert_recorded_sent(fleet, channels)

        def handled(bot: BotProcess) -> list[dict[str, Any]]:
            return [r for r in bot.records() if r.get("msg") == "command handled"]

        await eventually(
            lambda: all(len(handled(fleet.replicas[name])) >= len(teams) for name, teams in sent.items()),
            what="each replica's log of the commands it handled",
        )
        owners = await fleet.owners()

    # Each envelope was handled once, by the replica it went to; both replicas served both workspaces.
    assert len(slack.socket_acks) == len(ids)
    for name, bot in fleet.replicas.items():
        teams = sorted(r["team"] for r in handled(bot))
        assert teams == sorted(sent[name]) == sorted(TEAMS[:2] * 2), (name, handled(bot))
        assert "Traceback" not in bot.log()
    assert set(owners) <= set(TEAMS[:2])
    assert_one_alert_each(fleet, channels)


async def test_a_second_replica_on_one_sqlite_file_refuses_to_start(
    cloud: Cloud,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'taskbot.db'}"
    first = BotProcess(cloud, url, tmp_path / "first.log")
    second = BotProcess(cloud, url, tmp_path / "second.log")
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await first.start(http)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "serve",
                env=second.env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 2
            message = err.decode()
            assert "another taskbot serve already uses this SQLite file" in message
            assert "PostgreSQL" in message and "DATABASE_URL" in message
            assert "Traceback" not in message
            # The first one keeps serving.
            assert (await http.get(f"{first.url}/healthz")).status_code == 200
            first.send(signal.SIGTERM)
            assert await first.wait(15) == 0
            # Once it is gone, the file is free again.
            await second.start(http)
        finally:
            await first.kill_if_running()
            await second.kill_if_running()
