"""Scheduled digests over real sockets: ``/task digest`` through the Bolt app's server, runs posted
by ``taskbot serve`` processes, exactly once across ``kill -9`` and with two replicas."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from bot.db.base import Database
from bot.db.digests import DigestRow, DigestStore
from bot.db.schema import migrate
from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack, demo_stack
from bot.devtools.slack_standin import DEMO_TEAM_ID, PostedMessage
from tests.databases import open_database
from tests.support.waiting import eventually
from tests.test_crash_recovery import SIGNING_SECRET, BotProcess, Cloud, cloud  # noqa: F401 - cloud is a fixture

CHANNEL = "C0DIGEST01"
ASKER = "U0DIGEST01"
RESOURCE = "knowledge-intent-question-create"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    async with demo_stack(tmp_path, simulator=sim.Simulator(tasks=[])) as local:
        yield local


async def reply(stack: LocalStack, http: httpx.AsyncClient, text: str, user: str = ASKER) -> PostedMessage:
    seen = len([m for m in stack.slack.messages if m.via == "response_url"])
    assert (await stack.command(http, text, channel_id=CHANNEL, user_id=user)).status_code == 200
    await stack.slack.wait_for(lambda ms: len([m for m in ms if m.via == "response_url"]) > seen, timeout=10)
    return [m for m in stack.slack.messages if m.via == "response_url"][seen]


def digests_posted(messages: list[PostedMessage], channel: str = CHANNEL) -> list[PostedMessage]:
    return [
        m
        for m in messages
        if m.via == "chat.postMessage"
        and m.channel == channel
        and "Import/export digest" in json.dumps(m.blocks)
    ]


async def test_a_channel_sets_shows_lists_replaces_and_stops_its_digest_in_the_setters_timezone(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    stack.slack.users[ASKER] = {"tz": "Asia/Shanghai"}
    answer = await reply(stack, http, "digest daily 09:00")
    assert "every day at 09:00 (Asia/Shanghai)" in answer.text
    assert "every day at 09:00 (Asia/Shanghai)" in (await reply(stack, http, "digest")).text
    listing = await reply(stack, http, "watching")
    assert "*Digest:* every day at 09:00 (Asia/Shanghai)" in json.dumps(listing.blocks)
    # Setting it again replaces it: still one digest for the channel.
    answer = await reply(stack, http, "digest weekly fri 17:30 quiet")
    assert (
        "every Friday at 17:30 (Asia/Shanghai). Digests in which nothing finished are skipped." in answer.text
    )
    async with open_database(stack.settings.database_url) as database:
        (digest,) = await DigestStore(database).active_digests()
    assert (digest.cadence, digest.weekday, digest.hour, digest.minute, digest.quiet) == (
        "weekly",
        4,
        17,
        30,
        True,
    )
    assert "off" in (await reply(stack, http, "digest off")).text
    assert "has no digest" in (await reply(stack, http, "digest")).text
    # A schedule that does not parse is answered in the ack itself.
    wrong = await stack.command(http, "digest hourly 09:00", channel_id=CHANNEL, user_id=ASKER)
    assert "I could not read that schedule" in wrong.json()["text"]


async def test_a_chinese_speaker_gets_the_digest_replies_in_chinese(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    stack.slack.locales[ASKER] = "zh-CN"
    stack.slack.users[ASKER] = {"tz": "Asia/Shanghai"}
    answer = await reply(stack, http, "digest weekdays 08:15")
    assert "每个工作日 08:15（Asia/Shanghai）" in answer.text


# --- runs posted by taskbot serve ------------------------------------------------------------------


def finished_tasks(simulator: sim.Simulator) -> None:
    """Three tasks that ended about two hours ago (one with failures) and one still running."""
    now = time.time()
    for number, (total, failure_rate) in enumerate([(100, 0.0), (400, 0.05), (50, 0.0)]):
        simulator.add_task(
            sim.SimTask(
                task_id=f"d1a50000000000000000000000{number:06x}",
                task_name=f"Digest import {number}",
                resource=RESOURCE,
                total_count=total,
                failure_rate=failure_rate,
                duration_seconds=60.0 * (number + 1),
                begin_time_ms=round((now - 7500) * 1000),
            )
        )
    simulator.add_task(
        sim.SimTask(
            task_id="d1a50000000000000000000000ffffff",
            task_name="Still running",
            resource=RESOURCE,
            total_count=10,
            duration_seconds=7200.0,
            begin_time_ms=round((now - 60) * 1000),
        )
    )


async def owed_digest(database_url: str) -> None:
    """A daily digest whose hour passed an hour ago while no taskbot ran: its run is owed."""
    fire = datetime.now(UTC) - timedelta(hours=1)
    database = Database(database_url)
    try:
        await migrate(database.engine)  # as serve would: the schema through the migrations
        await DigestStore(database).set_digest(
            team_id=DEMO_TEAM_ID,
            channel_id=CHANNEL,
            user_id=ASKER,
            cadence="daily",
            weekday=None,
            hour=fire.hour,
            minute=fire.minute,
            timezone="UTC",
            quiet=False,
            locale="en",
        )
        async with database.engine.begin() as conn:
            await conn.execute(update(DigestRow).values(created_at=fire - timedelta(days=3)))
    finally:
        await database.dispose()


async def ask_digest(bot: BotProcess, http: httpx.AsyncClient) -> None:
    """``/task digest`` to one bot process; returns once its answer reached the asker."""
    slack = bot.cloud.slack

    def answers() -> int:
        return sum("gets a digest" in m.text for m in slack.messages if m.via == "response_url")

    seen = answers()
    body, headers = slack.slash_command(SIGNING_SECRET, "digest", channel_id=CHANNEL, user_id=ASKER)
    assert (await http.post(f"{bot.url}/slack/events", content=body, headers=headers)).status_code == 200
    await slack.wait_for(lambda _: answers() > seen, timeout=10)


def check_figures(message: PostedMessage) -> None:
    shown = json.dumps(message.blocks, ensure_ascii=False)
    assert "*3* finished · *1* with failures · *550* items processed · success rate *96.4%*" in shown
    assert "late: taskbot was not running" in shown
    # The slowest first, each with an Open button; the task with failures listed with its count.
    assert shown.index("Digest import 2") < shown.index("Digest import 1") < shown.index("Digest import 0")
    assert "*Digest import 1* · 20 of 400 failed" in shown
    assert shown.count('"action_id": "task_open"') == 4
    assert "Still running" not in shown


@asynccontextmanager
async def serving_an_owed_run(
    services: Cloud, database_url: str, logs: list[Path], *, within: float
) -> AsyncIterator[tuple[list[BotProcess], httpx.AsyncClient]]:
    """The finished tasks and their owed daily digest on ``services``, then one ``taskbot serve`` on
    ``database_url`` per log file; yields them once the late digest is posted (within ``within``
    seconds) with its figures, and kills them when the block ends."""
    finished_tasks(services.simulator)
    await owed_digest(database_url)
    bots = [BotProcess(services, database_url, log) for log in logs]
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            for bot in bots:
                await bot.start(http)
            await eventually(
                lambda: digests_posted(services.slack.messages), within=within, what="the digest"
            )
            check_figures(digests_posted(services.slack.messages)[0])
            yield bots, http
        finally:
            for bot in bots:
                await bot.kill_if_running()


async def test_an_owed_run_is_posted_once_late_with_its_figures_across_kill_9(
    cloud: Cloud,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    async with serving_an_owed_run(cloud, database_url, [tmp_path / "serve.log"], within=20) as ([bot], http):
        await bot.kill_if_running()
        await bot.start(http)
        # The restarted bot re-armed its jobs and found the run recorded: a command it
        # answers after that start shows it is up, and still nothing more was posted.
        # SQLite: one engine arms everything at start; PostgreSQL: when the dead process's
        # lease on the workspace has lapsed (TASKBOT_LEASE_SECONDS).
        await eventually(
            lambda: bot.log().count("follow-ups started") + bot.log().count("shards re-armed") >= 2,
            within=20,
            what="the second start arming the digest",
        )
        await ask_digest(bot, http)
    assert len(digests_posted(cloud.slack.messages)) == 1


@pytest.mark.postgres
async def test_two_replicas_post_an_owed_run_once(
    cloud: Cloud,  # noqa: F811
    postgres_url: str,
    tmp_path: Path,
) -> None:
    replicas = [tmp_path / f"replica{n}.log" for n in (1, 2)]
    async with serving_an_owed_run(cloud, postgres_url, replicas, within=30) as (bots, http):
        # Both replicas answer a command after the digest went out: each has run its start.
        for bot in bots:
            await ask_digest(bot, http)
    assert len(digests_posted(cloud.slack.messages)) == 1
