"""Slack tokens at rest: encrypted in slack_installations and slack_bots, on SQLite and PostgreSQL.

The proof is the raw bytes: the SQLite file (with its WAL) and a ``pg_dump`` of the database are
searched for every secret the test used.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.db.crypto import SecretBox, SecretUnreadable
from bot.db.installations import EncryptedInstallationStore
from bot.db.schema import migrate
from tests.install_support import make_project, multi_stack, running_task
from tests.support.cli import CLIENT_ID, multi_workspace_env, run_cli
from tests.support.clock import FakeClock
from tests.support.postgres_server import CLIENT_BIN

CHANNEL = "C0SECRETS1"


async def raw_bytes(url: str) -> bytes:
    """Everything the database holds, as stored: the SQLite files, or a full pg_dump."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
        return b"".join(file.read_bytes() for file in files if file.exists())
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    dump = await asyncio.create_subprocess_exec(
        str(CLIENT_BIN / "pg_dump"),
        "--no-owner",
        dsn,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await dump.communicate()
    assert dump.returncode == 0, err.decode()
    assert b"slack_installations" in out  # the dump really holds the tables searched
    return out


def _token(prefix: str, length: int) -> str:
    """A Slack-shaped token; rotating tokens and refresh tokens are about 150 characters."""
    return prefix + secrets.token_hex(length)[: length - len(prefix)]


async def test_oauth_installed_tokens_are_encrypted_in_the_database(
    tmp_path: Path, database_url: str
) -> None:
    clock = FakeClock()
    simulator = make_project("p" * 32, [running_task("t-1", "An import", clock)], clock)
    async with multi_stack(tmp_path, database_url, {"A": (simulator, "AKSECRETS1", "sk" * 10)}) as stack:
        stack.slack.token_lifetime = (
            86400  # rotating tokens (not due for refresh): a bot token and a refresh token
        )
        team = stack.workspace("T0SECRETS1", admin="U0ADMIN001", member="U0MEMBER01")
        done = await team.install()
        assert done.status_code == 200, done.text
        used = set(team.tokens()) | {r for r, t in stack.slack.refresh_tokens.items() if t == team.team_id}
        assert len(used) == 2

        # The bot reads its token back (decrypted) to answer in this workspace.
        reply = await team.command("help", channel=CHANNEL)
        assert reply.status_code == 200
        store = stack.runtime.installation_store
        assert store is not None
        found = await store.async_find_installation(enterprise_id=None, team_id=team.team_id)
        assert found is not None and {found.bot_token, found.bot_refresh_token} == used
    raw = await raw_bytes(database_url)
    assert b"gAAAAA" in raw  # the ciphertext is there
    for secret in used | {stack.slack.client_secret, stack.signing_secret}:
        assert secret.encode() not in raw, "a Slack secret is stored in plaintext"


async def test_every_token_field_round_trips_encrypted(database_url: str) -> None:
    engine = create_async_engine(database_url)
    values = {
        "bot_token": _token("xoxe.xoxb-1-", 150),
        "bot_refresh_token": _token("xoxe-1-", 150),
        "user_token": _token("xoxe.xoxp-1-", 150),
        "user_refresh_token": _token("xoxe-1-", 150),
        "incoming_webhook_url": "https://hooks.slack.com/services/T0/B0/" + secrets.token_hex(12),
    }
    try:
        await migrate(engine)
        store = EncryptedInstallationStore(
            client_id=CLIENT_ID, engine=engine, box=SecretBox([Fernet.generate_key().decode()])
        )
        await store.async_save(
            Installation(
                app_id="A0TASKBOT1",
                team_id="T0FIELDS01",
                user_id="U0ADMIN001",
                bot_id="B0",
                bot_user_id="U0BOT",
                **values,
            )
        )
        found = await store.async_find_installation(enterprise_id=None, team_id="T0FIELDS01")
        assert found is not None
        assert {name: getattr(found, name) for name in values} == values
        with_user = await store.async_find_installation(
            enterprise_id=None, team_id="T0FIELDS01", user_id="U0ADMIN001"
        )
        assert with_user is not None and with_user.user_token == values["user_token"]
        bot = await store.async_find_bot(enterprise_id=None, team_id="T0FIELDS01")
        assert bot is not None and (bot.bot_token, bot.bot_refresh_token) == (
            values["bot_token"],
            values["bot_refresh_token"],
        )

        other_key = EncryptedInstallationStore(
            client_id=CLIENT_ID, engine=engine, box=SecretBox([Fernet.generate_key().decode()])
        )
        with pytest.raises(SecretUnreadable):
            await other_key.async_find_bot(enterprise_id=None, team_id="T0FIELDS01")
    finally:
        await engine.dispose()
    raw = await raw_bytes(database_url)
    for name, secret in values.items():
        assert secret.encode() not in raw, f"{name} is stored in plaintext"


def _env(url: str, key: str) -> dict[str, str]:
    return multi_workspace_env(secrets.token_hex(16), TASKBOT_ENCRYPTION_KEY=key, DATABASE_URL=url)


async def test_rotate_keys_encrypts_legacy_plaintext_tokens_and_moves_them_to_the_new_key(
    database_url: str,
) -> None:
    """Rows written before encryption (plain slack_sdk store) are read, then sealed by rotate-keys."""
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    legacy_bot, legacy_refresh, sealed_bot = _token("xoxb-", 57), _token("xoxe-1-", 140), _token("xoxb-", 57)
    engine = create_async_engine(database_url)
    try:
        await migrate(engine)
        legacy = AsyncSQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=engine)
        await legacy.async_save(
            Installation(
                app_id="A0",
                team_id="T0LEGACY01",
                user_id="U0A",
                bot_token=legacy_bot,
                bot_refresh_token=legacy_refresh,
            )
        )
        old = EncryptedInstallationStore(client_id=CLIENT_ID, engine=engine, box=SecretBox([old_key]))
        await old.async_save(
            Installation(app_id="A0", team_id="T0SEALED01", user_id="U0A", bot_token=sealed_bot)
        )
        found = await old.async_find_installation(enterprise_id=None, team_id="T0LEGACY01")
        assert found is not None and found.bot_token == legacy_bot, "legacy plaintext is still read"
    finally:
        await engine.dispose()
    assert legacy_bot.encode() in await raw_bytes(database_url)

    code, out, err = await run_cli("rotate-keys", env=_env(database_url, f"{new_key},{old_key}"), timeout=60)
    assert code == 0, err
    # Two installation rows and two bot rows; the legacy pair held two plaintext tokens in each table.
    assert out.splitlines() == [
        "0 workspace connection(s) re-encrypted with the first key.",
        "4 Slack installation row(s) re-encrypted (4 token(s) were stored in plaintext before and "
        "are now encrypted); the other keys can now be dropped.",
    ]
    raw = await raw_bytes(database_url)
    for secret in (legacy_bot, legacy_refresh, sealed_bot):
        assert secret.encode() not in raw

    engine = create_async_engine(database_url)
    try:
        new = EncryptedInstallationStore(client_id=CLIENT_ID, engine=engine, box=SecretBox([new_key]))
        legacy_found = await new.async_find_installation(enterprise_id=None, team_id="T0LEGACY01")
        sealed_found = await new.async_find_bot(enterprise_id=None, team_id="T0SEALED01")
    finally:
        await engine.dispose()
    assert legacy_found is not None and (legacy_found.bot_token, legacy_found.bot_refresh_token) == (
        legacy_bot,
        legacy_refresh,
    )
    assert sealed_found is not None and sealed_found.bot_token == sealed_bot
