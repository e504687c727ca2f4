"""Several replicas on one database: the fleet-wide API rate, Slack retries, readiness, metrics.

Real parts only: the local PostgreSQL (one engine per "replica"), Runtime servers on loopback
sockets, the Slack stand-in receiving views.publish.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.aio.ratelimit import Priority, PriorityRateLimiter, RateLimiters
from bot.app import READY_TIMEOUT, Runtime, create_asgi
from bot.db.base import Database
from bot.db.fleet import SeenEvents, SharedRateLimiters
from bot.db.followups import FollowUpStore
from bot.devtools.demo import demo_stack
from bot.devtools.slack_standin import sign_request
from bot.metrics import REPLICA
from bot.servers import serve_asgi
from tests.databases import admin_connection, open_database
from tests.install_support import multi_stack
from tests.support.waiting import eventually

RATE = 20.0
SECONDS = 2.0


async def _hammer(limiter: PriorityRateLimiter, until: float, grants: list[float], workers: int = 8) -> None:
    async def worker() -> None:
        while time.monotonic() < until:
            await limiter.acquire(Priority.POLL)
            grants.append(time.monotonic())

    await asyncio.gather(*(worker() for _ in range(workers)))


async def _round_trips(database: Database, until: float) -> list[float]:
    """Seconds per transaction of one statement, timed one at a time at the limiter's pace."""
    timed: list[float] = []
    while time.monotonic() < until:
        asked = time.monotonic()
        async with database.engine.begin() as connection:
            await connection.execute(text("SELECT clock_timestamp()"))
        timed.append(time.monotonic() - asked)
        await asyncio.sleep(1.0 / RATE)
    return timed


async def _two_replicas(
    url: str, make: Callable[[Database], RateLimiters]
) -> tuple[list[float], list[float], float, float]:
    """Both replicas' grant times, the start, and the mean database round trip meanwhile."""
    async with open_database(url) as first, open_database(url) as second:
        one, two = make(first).get("T1"), make(second).get("T1")
        # Warm both connections and the bucket row, then start the clock with a full bucket.
        await one.acquire(Priority.COMMAND)
        await asyncio.sleep(1.0 / RATE)
        grants_one: list[float] = []
        grants_two: list[float] = []
        start = time.monotonic()
        until = start + SECONDS
        *_, timed = await asyncio.gather(
            _hammer(one, until, grants_one), _hammer(two, until, grants_two), _round_trips(first, until)
        )
    return grants_one, grants_two, start, statistics.mean(timed)


@pytest.mark.postgres
async def test_two_replicas_share_one_rate_on_postgresql(postgres_url: str) -> None:
    # Baseline in the same run: two in-process limiters (one per process, as on SQLite) each take
    # the whole rate, so together they pass the fleet-wide bound asserted below.
    local_one, local_two, start, _ = await _two_replicas(postgres_url, lambda _: RateLimiters(RATE))
    local = [t for t in local_one + local_two if t - start <= SECONDS]
    assert len(local) > RATE * SECONDS + 2, len(local)

    one, two, start, round_trip = await _two_replicas(postgres_url, lambda db: SharedRateLimiters(db, RATE))
    both = sorted(t for t in one + two if t - start <= SECONDS)
    # A token bucket of burst 1 allows rate * window + 1 grants in any window.
    assert len(both) <= RATE * SECONDS + 2, len(both)
    # Liveness: a token that falls due is taken late by at most the retry's spread (a quarter of
    # an interval) and a few round trips (the wait coming back, then BEGIN and the UPDATE), and a burst
    # of 1 loses that lateness. The round trips are timed on this machine in this same window,
    # so load widens the allowance as much as it slows the limiter; a limiter that sleeps a
    # whole extra interval per grant falls below.
    achievable = SECONDS / (1.25 / RATE + 2 * round_trip)
    assert len(both) >= 0.9 * achievable, (len(both), achievable, round_trip)
    # Both replicas got a share: neither was starved by the other's retries.
    assert min(len(one), len(two)) >= 0.25 * len(both), (len(one), len(two))
    # No one-second window anywhere holds more than the rate (plus the bucket's one token).
    for index, first in enumerate(both):
        in_window = sum(1 for t in both[index:] if t - first < 1.0)
        assert in_window <= RATE + 1, (first - start, in_window)


@pytest.mark.postgres
async def test_a_command_on_one_replica_goes_before_polls_on_another(postgres_url: str) -> None:
    async with open_database(postgres_url) as first, open_database(postgres_url) as second:
        polls = SharedRateLimiters(first, 5.0).get("T1")
        commands = SharedRateLimiters(second, 5.0).get("T1")
        until = time.monotonic() + 3.0
        saturating = asyncio.create_task(_hammer(polls, until, [], workers=4))
        await asyncio.sleep(0.5)
        waits: list[float] = []
        for _ in range(4):
            asked = time.monotonic()
            await commands.acquire(Priority.COMMAND)
            waits.append(time.monotonic() - asked)
            await asyncio.sleep(0.3)
        await saturating
    # At 5/s a token is due every 0.2 s; a command takes the next one, whatever the polls do.
    assert max(waits) < 0.2 + 0.25, waits


async def test_an_event_id_is_handled_once_per_database(database_url: str) -> None:
    async with open_database(database_url) as first, open_database(database_url) as second:
        assert await SeenEvents(first).first_time("Ev0001")
        assert not await SeenEvents(second).first_time("Ev0001")
        assert await SeenEvents(second).first_time("Ev0002")


def _event(team_id: str, event_id: str, user: str) -> bytes:
    envelope = {
        "token": "deprecated",
        "team_id": team_id,
        "api_app_id": "A0TASKBOT1",
        "event": {"type": "app_home_opened", "user": user, "channel": "D0" + user, "tab": "home"},
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": "U0BOT", "is_bot": True}],
    }
    return json.dumps(envelope).encode()


@pytest.mark.postgres
async def test_a_slack_retry_on_another_replica_does_no_work_twice(tmp_path: Path, postgres_url: str) -> None:
    async with multi_stack(tmp_path, postgres_url, {}) as stack:
        workspace = stack.workspace("T0FLEET01", admin="U0ADMIN", member="U0MEMBER")
        assert (await workspace.install()).status_code == 200
        other = Runtime(stack.settings)
        async with serve_asgi(create_asgi(stack.settings, other)) as other_url:

            def published(user: str) -> int:
                return sum(
                    1
                    for v in stack.slack.views
                    if v["method"] == "views.publish" and v.get("user_id") == user
                )

            async def deliver(url: str, body: bytes, retry: int | None = None) -> int:
                headers = {**sign_request(stack.signing_secret, body), "Content-Type": "application/json"}
                if retry is not None:
                    headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
                return (
                    await stack.http.post(f"{url}/slack/events", content=body, headers=headers)
                ).status_code

            body = _event(workspace.team_id, "Ev" + uuid.uuid4().hex[:10].upper(), "U0ADMIN")
            assert await deliver(stack.bot_url, body) == 200
            assert await deliver(other_url, body, retry=1) == 200
            await eventually(lambda: published("U0ADMIN") >= 1)

            # The other replica does work for an event it has not seen: the drop above was the retry.
            fresh = _event(workspace.team_id, "Ev" + uuid.uuid4().hex[:10].upper(), "U0MEMBER")
            assert await deliver(other_url, fresh) == 200
            await eventually(lambda: published("U0MEMBER") >= 1)
            # The retry reached this replica before the fresh event, so had it not been dropped its
            # publish would have been spawned first: once the fresh one is seen and this replica's
            # background work has drained, a second publish for the retry would be on record.
            await other.background.drain(10)
            assert published("U0ADMIN") == 1


async def _status(http: httpx.AsyncClient, url: str) -> tuple[int, dict[str, object]]:
    response = await http.get(url)
    return response.status_code, response.json()


@pytest.mark.postgres
async def test_readyz_follows_the_database_and_healthz_does_not(
    tmp_path: Path, postgres_admin_dsn: str, postgres_url: str, http: httpx.AsyncClient
) -> None:
    async with demo_stack(tmp_path, database_url=postgres_url) as stack:
        assert await _status(http, f"{stack.bot_url}/readyz") == (200, {"ok": True})
        name = make_url(postgres_url).database
        admin = await admin_connection(postgres_admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        asked = time.monotonic()
        status = await _status(http, f"{stack.bot_url}/readyz")
        assert time.monotonic() - asked < READY_TIMEOUT + 1
        assert status == (503, {"ok": False, "error": "database_unreachable"})
        # Liveness keeps its meaning: the process is alive, a restart would not bring the database back.
        assert await _status(http, f"{stack.bot_url}/healthz") == (200, {"ok": True})


async def test_readyz_on_sqlite_and_metrics_name_the_replica(tmp_path: Path, http: httpx.AsyncClient) -> None:
    async with demo_stack(tmp_path) as stack:
        assert await _status(http, f"{stack.bot_url}/readyz") == (200, {"ok": True})
        exposed = (await http.get(f"{stack.bot_url}/metrics")).text
    for name in (
        "taskbot_shards_owned",
        "taskbot_lease_renewals_total",
        "taskbot_lease_takeovers_total",
        "taskbot_polls_total",
        "taskbot_db_statements_total",
    ):
        assert f'{name}{{replica="{REPLICA}"}}' in exposed, name
    # The demo's start (schema, re-arming) and /readyz ran statements: the counter saw them.
    (statements,) = [
        line
        for line in exposed.splitlines()
        if line.startswith(f'taskbot_db_statements_total{{replica="{REPLICA}"}}')
    ]
    assert float(statements.rsplit(" ", 1)[1]) > 0


@pytest.mark.postgres
async def test_the_bucket_comes_back_after_its_workspace_is_forgotten(postgres_url: str) -> None:
    async with open_database(postgres_url) as database:
        limiter = SharedRateLimiters(database, RATE).get("T1")
        await limiter.acquire(Priority.POLL)
        await FollowUpStore(database).delete_team("T1")
        await asyncio.wait_for(limiter.acquire(Priority.POLL), 1.0)
        await asyncio.wait_for(limiter.acquire(Priority.COMMAND), 1.0)
