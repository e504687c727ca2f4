"""Uninstall cleanup survives a failure or a crash after Slack got its 200.

Slack never redelivers an acknowledged ``app_uninstalled``. The departure is recorded before
the 200 leaves, and the rows go in one transaction; a cleanup that fails (its database
connection killed while it waits for a lock) is finished by the sweep, and one cut short by
SIGKILL is finished by the next start. All on real PostgreSQL, with the bot behind its real HTTP
server in-process (failure) or as a ``taskbot serve`` process (crash).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bot.app import Runtime
from bot.config import Settings
from bot.devtools import simulator as sim
from bot.slack import ids
from tests.install_support import (
    CHANNEL_A,
    GRID_ORG,
    TASK_A,
    MultiStack,
    Project,
    Workspace,
    connection_values,
    multi_stack,
    project_a,
    rows_mentioning,
)
from tests.support.clock import FakeClock
from tests.support.waiting import eventually
from tests.test_crash_recovery import SIGNING_SECRET, BotProcess, Cloud, cloud  # noqa: F401 - cloud is a fixture

TEAM, ADMIN, MEMBER = "T0TEAMAAA1", "U0ADMINA01", "U0MEMBERA1"
# A table the cleanup deletes from after slack_sdk's: holding it stops the cleanup part-way.
LOCKED = "connections"


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "uninstall cleanup failed" in record.getMessage():
            self.records.append(record)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def locked_table(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session holds ``LOCK TABLE connections`` until the block ends (rolled back)."""
    conn = await asyncpg.connect(_dsn(url))
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f"LOCK TABLE {LOCKED} IN ACCESS EXCLUSIVE MODE")
        yield conn
    finally:
        await transaction.rollback()
        await conn.close()


async def _waiting_on_lock(conn: asyncpg.Connection) -> list[int]:
    """Backends of the bot waiting for our lock in its cleanup transaction, midway: the ones
    that also hold their departure's row lock (a poll noting its outcome may wait there too)."""
    rows = await conn.fetch(
        "SELECT l.pid FROM pg_locks l WHERE NOT l.granted AND l.relation = $1::regclass"
        " AND EXISTS (SELECT 1 FROM pg_locks d WHERE d.pid = l.pid AND d.granted"
        " AND d.relation = 'departures'::regclass)",
        LOCKED,
    )
    return [row["pid"] for row in rows]


async def _counts(conn: asyncpg.Connection) -> tuple[int, int]:
    """(the team's installations, its recorded departures), read beside the lock."""
    installations = await conn.fetchval("SELECT count(*) FROM slack_installations WHERE team_id = $1", TEAM)
    departures = await conn.fetchval("SELECT count(*) FROM departures WHERE team_id = $1", TEAM)
    return installations, departures


async def _gone(url: str) -> bool:
    return not any((await rows_mentioning(url, TEAM)).values())


@asynccontextmanager
async def installed(
    tmp_path: Path, postgres_url: str, **workspace: str
) -> AsyncIterator[tuple[MultiStack, Workspace]]:
    """One workspace installed and connected, multi-workspace taskbot serving it in-process."""
    async with multi_stack(tmp_path, postgres_url, {"A": project_a(FakeClock())}) as stack:
        team = stack.workspace(TEAM, admin=ADMIN, member=MEMBER, **workspace)
        assert (await team.install()).status_code == 200
        await team.connect(stack.projects["A"])
        yield stack, team


async def uninstall_failing(team: Workspace, postgres_url: str) -> None:
    """``app_uninstalled``, whose cleanup's database connection dies while it waits for a lock
    (a failover, an idle timeout, an operator): the cleanup fails after Slack got its 200."""
    failures = _Failures()
    logging.getLogger("taskbot.admin").addHandler(failures)
    try:
        async with locked_table(postgres_url) as lock:
            assert (await team.event({"type": "app_uninstalled"})).status_code == 200
            # Recorded before the 200 left, not later in the background.
            assert await _counts(lock) == (1, 1)
            [waiting] = await eventually(lambda: _waiting_on_lock(lock), what="the cleanup at the lock")
            assert await lock.fetchval("SELECT pg_terminate_backend($1)", waiting)
            await eventually(lambda: failures.records, what="the failed cleanup logged")
            assert await _counts(lock) == (1, 1), "one transaction: nothing of it was committed"
    finally:
        logging.getLogger("taskbot.admin").removeHandler(failures)


@pytest.mark.postgres
async def test_a_cleanup_that_fails_after_the_ack_is_finished_by_the_sweep(
    tmp_path: Path, postgres_url: str
) -> None:
    async with installed(tmp_path, postgres_url, enterprise_id=GRID_ORG) as (stack, team):
        await team.watch(TASK_A, CHANNEL_A)
        leaving = stack.runtime.leaving
        leaving.sweep_seconds = 0.3
        leaving.start_sweeping()
        await uninstall_failing(team, postgres_url)
        await eventually(lambda: _gone(postgres_url), what="the sweep finishing the cleanup")
        assert await stack.runtime.storage.active_watch_count(TEAM) == 0


@pytest.mark.postgres
async def test_a_workspace_reinstalled_before_its_cleanup_finished_keeps_its_new_install(
    tmp_path: Path, postgres_url: str
) -> None:
    async with installed(tmp_path, postgres_url) as (stack, team):
        await uninstall_failing(team, postgres_url)
        old_tokens = team.tokens()

        # Back before any sweep: the old departure is finished first, then the new install saved.
        assert (await team.install()).status_code == 200
        [new_token] = team.tokens() - old_tokens
        left = await rows_mentioning(postgres_url, TEAM)
        assert left["departures"] == 0 and left["connections"] == 0, "the old keys are gone"
        await stack.runtime.leaving.finish_pending()  # what the next sweep does
        store = stack.runtime.installation_store
        assert store is not None
        found = await store.find_team(TEAM)
        assert found is not None and found.bot_token == new_token, "the new install survives"


def driving(bot: BotProcess, database_url: str, http: httpx.AsyncClient, workdir: Path) -> MultiStack:
    """A MultiStack over the per-workspace ``bot`` child process, so Workspace helpers drive it."""
    slack = bot.cloud.slack
    settings = Settings(
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_client_id=slack.client_id,
        slack_client_secret=SecretStr(slack.client_secret),
        encryption_key=SecretStr(bot.encryption_key),
        database_url=database_url,
    )
    # The bot is a child process: there is no runtime in this one to look into.
    return MultiStack(slack, settings, bot.url, cast(Runtime, None), http, SIGNING_SECRET, workdir)


@pytest.mark.postgres
async def test_a_cleanup_cut_short_by_sigkill_is_finished_by_the_next_start(
    cloud: Cloud,  # noqa: F811
    postgres_url: str,
    tmp_path: Path,
) -> None:
    bot = BotProcess(cloud, postgres_url, tmp_path / "serve.log").installed_per_workspace()
    project = Project(
        cloud.simulator, cloud.simulator_url, sim.DEMO_PROJECT_ID, sim.DEMO_ACCESS_KEY, sim.DEMO_SECRET_KEY
    )
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await bot.start(http)
            team = driving(bot, postgres_url, http, tmp_path).workspace(
                TEAM, admin=ADMIN, member=MEMBER, enterprise_id=GRID_ORG
            )
            assert (await team.install()).status_code == 200
            response = await team.submit(ids.CONNECTION_MODAL, connection_values(project), user=ADMIN)
            assert response.status_code == 200

            async def connected() -> bool:
                return (await rows_mentioning(postgres_url, TEAM)).get("connections") == 1

            await eventually(connected, what="the connection saved")

            async with locked_table(postgres_url) as lock:
                assert (await team.event({"type": "app_uninstalled"})).status_code == 200
                await eventually(lambda: _waiting_on_lock(lock), what="the cleanup at the lock")
                bot.send(signal.SIGKILL)
                await bot.wait(10)
                assert await _counts(lock) == (1, 1), "the departure outlived the process"
            before = await rows_mentioning(postgres_url, TEAM)
            assert before["connections"] == 1 and before["slack_installations"] == 1

            await bot.start(http)
            await eventually(
                lambda: _gone(postgres_url), within=20, what="the next start finishing the cleanup"
            )
        finally:
            await bot.kill_if_running()
    assert "Traceback" not in bot.log()
