"""A hung database does not hold up acks in multi-workspace mode.

PostgreSQL sits behind a loopback TCP proxy the test can freeze: connections stay open and
bytes stop flowing both ways, as with ``kill -STOP`` on the server. With the authorization
cache expired, a workspace that used taskbot minutes ago keeps being acked within Slack's
3 s from what was known (stale-while-error), and so is an event whose duplicate check cannot
reach the database; a workspace never seen by this process is told in
one sentence that the database cannot be reached (200, not a 500, not a timeout). When the
proxy thaws, look-ups go back to the database. Tokens the encryption key cannot open are one
sentence too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text

from bot import messages
from bot.db.crypto import SecretBox
from bot.slack import clients
from tests.install_support import CHANNEL_A, TASK_A, multi_stack, project_a
from tests.support.clock import FakeClock
from tests.support.waiting import eventually

SLACK_ACK_SECONDS = 3.0


class FreezableProxy:
    """Forwards TCP to ``target``; while frozen, holds every byte in both directions."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        for pipe in (self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)):
            task = asyncio.create_task(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FreezableProxy]:
        server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self.flowing.set()
            server.close()
            for task in list(self._tasks):
                task.cancel()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{port}" if parts.username else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


@pytest.mark.postgres
async def test_acks_stay_fast_while_postgresql_hangs(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache must expire during the test; the real TTL is 30 s.
    monkeypatch.setattr(clients, "AUTHORIZE_TTL_SECONDS", 0.5)
    target = urlsplit(postgres_url)
    proxy = FreezableProxy((target.hostname or "127.0.0.1", target.port or 5432))
    async with (
        proxy.running(),
        multi_stack(tmp_path, _through(postgres_url, proxy.port), {"A": project_a(FakeClock())}) as stack,
    ):
        known = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1")
        unseen = stack.workspace("T0TEAMBBB2", admin="U0ADMINB02", member="U0MEMBERB2")
        for team in (known, unseen):
            assert (await team.install()).status_code == 200
        await known.connect(stack.projects["A"])
        assert (await known.command(TASK_A, channel=CHANNEL_A)).status_code == 200
        authorize = stack.runtime.authorize

        def expired() -> bool:
            entry = authorize._results.get((None, known.team_id))
            return entry is not None and entry[0] < time.monotonic()

        await eventually(expired, what="the authorization cache to expire")
        proxy.flowing.clear()
        try:
            took = []
            for _ in range(2):
                started = time.monotonic()
                response = await known.command("help", channel=CHANNEL_A)
                took.append(time.monotonic() - started)
                assert response.status_code == 200, response.text
                assert messages.text("error_database_unavailable") not in response.text
            # The first waits out the look-up's deadline; the next answers at once from what is known.
            assert took[0] < SLACK_ACK_SECONDS and took[1] < clients.AUTHORIZE_DEADLINE_SECONDS / 2, took
            # An event's duplicate check needs the database too: it is given up, not waited for.
            started = time.monotonic()
            event = await known.event({"type": "app_home_opened", "user": known.member, "tab": "home"})
            assert event.status_code == 200
            assert time.monotonic() - started < SLACK_ACK_SECONDS

            started = time.monotonic()
            response = await unseen.command("help", channel=CHANNEL_A)
            assert time.monotonic() - started < SLACK_ACK_SECONDS
            assert (response.status_code, response.text) == (200, messages.text("error_database_unavailable"))
        finally:
            proxy.flowing.set()

        # Thawed: the next look-up reaches the database and the unseen workspace is answered.
        async def answered() -> bool:
            response = await unseen.command("help", channel=CHANNEL_A)
            return response.status_code == 200 and response.text != messages.text(
                "error_database_unavailable"
            )

        await eventually(answered, within=40, what="a look-up through the thawed database")


async def test_tokens_the_key_cannot_open_get_one_sentence_not_a_500(tmp_path: Path, sqlite_url: str) -> None:
    async with multi_stack(tmp_path, sqlite_url, {"A": project_a(FakeClock())}) as stack:
        team = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1")
        assert (await team.install()).status_code == 200
        # The tokens as another key sealed them: what a dropped or wrong TASKBOT_ENCRYPTION_KEY leaves.
        other = SecretBox([SecretBox.generate_key()])
        engine = stack.db()
        try:
            async with engine.begin() as conn:
                for table in ("slack_installations", "slack_bots"):
                    await conn.execute(
                        text(f"UPDATE {table} SET bot_token = :sealed"),
                        {"sealed": other.encrypt("xoxb-lost")},
                    )
        finally:
            await engine.dispose()
        response = await team.command("help", channel=CHANNEL_A)
        assert (response.status_code, response.text) == (200, messages.text("error_workspace_unreadable"))
