"""The ``taskbot`` command as a real process: configuration errors, check, serve, SIGTERM, logs."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.ext.asyncio import create_async_engine

from bot.db.base import Database
from bot.db.crypto import SecretBox
from bot.db.schema import code_head
from bot.db.schema import migrate as migrate_schema
from bot.db.workspaces import WorkspaceStore
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_APP_TOKEN, DEMO_BOT_TOKEN, SlackStandIn
from bot.metastudio.credentials import KeyPair
from bot.servers import serve_asgi
from tests.support.cli import (
    CLI_SECONDS,
    CLIENT_ID,
    CLIENT_SECRET,
    SERVE_START_SECONDS,
    clean_env,
    free_port,
    multi_workspace_env,
    run_cli,
    serving_env,
    start_cli,
    stop_cli,
    wait_until_serving,
)
from tests.support.forms import aksk_form

SIGNING_SECRET = "c11e5e5c11e5e5c11e5e5c11e5e5c11e"  # 32 hex characters, the shape Slack issues


@pytest.fixture
async def cloud_and_slack() -> AsyncIterator[tuple[str, SlackStandIn]]:
    slack = SlackStandIn()
    async with serve_asgi(sim.Simulator().app) as simulator_url, serve_asgi(slack.app) as slack_url:
        slack.base_url = slack_url
        yield simulator_url, slack


async def test_serve_without_configuration_names_every_missing_variable() -> None:
    code, out, err = await run_cli("serve", env=clean_env())
    assert code == 2
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "HUAWEICLOUD_SDK_PROJECT_ID",
        "HUAWEICLOUD_SDK_AK",
    ):
        assert name in err
    assert "Traceback" not in err + out


async def test_invalid_values_are_named() -> None:
    code, _, err = await run_cli("serve", env=clean_env(PORT="eighty", TASKBOT_LOG_FORMAT="xml"))
    assert code == 2
    assert "PORT" in err and "TASKBOT_LOG_FORMAT" in err
    assert "Traceback" not in err


async def test_check_reports_one_line_per_check(
    cloud_and_slack: tuple[str, SlackStandIn], tmp_path: Path
) -> None:
    simulator_url, slack = cloud_and_slack
    env = serving_env(
        SIGNING_SECRET,
        simulator_url,
        slack.api_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'check.db'}",
    )
    code, out, err = await run_cli("check", env=env)
    assert code == 0, out + err
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["ok", "ok", "ok", "ok", "ok"]
    assert [line.split(":")[0].split(maxsplit=1)[1] for line in lines] == [
        "configuration",
        "database",
        "schema",
        "Slack auth.test",
        "MetaStudio list call",
    ]


async def test_check_says_what_does_not_work(cloud_and_slack: tuple[str, SlackStandIn]) -> None:
    simulator_url, slack = cloud_and_slack
    env = serving_env(
        SIGNING_SECRET,
        simulator_url,
        slack.api_url,
        SLACK_BOT_TOKEN="xoxb-wrong",
        HUAWEICLOUD_SDK_SK="wrong-secret-key",
        DATABASE_URL="postgresql+asyncpg://taskbot:db-password-1234@127.0.0.1:1/taskbot",
    )
    code, out, err = await run_cli("check", env=env)
    assert code == 2
    assert (
        "FAIL  database: DATABASE_URL='postgresql+asyncpg://taskbot:***@127.0.0.1:1/taskbot': "
        "cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused)"
    ) in out
    assert f"FAIL  Slack auth.test: Slack answered invalid_auth at {slack.api_url}auth.test" in out
    assert f"FAIL  MetaStudio list call: {simulator_url}: MetaStudio did not accept" in out
    for secret in ("wrong-secret-key", "db-password-1234"):
        assert secret not in out + err
    assert "Traceback" not in out + err


async def test_check_for_many_workspaces_reports_installs_instead_of_calling_slack(tmp_path: Path) -> None:
    env = multi_workspace_env(
        SIGNING_SECRET,
        TASKBOT_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'many.db'}",
    )
    code, out, err = await run_cli("check", env=env)
    assert code == 0, out + err
    assert out.splitlines() == [
        "ok    configuration: complete",
        f"ok    database: no SQLite file at {tmp_path / 'many.db'} yet; `taskbot serve` creates it there",
        f"ok    schema: empty; migrating creates revision {code_head()}; `taskbot serve` migrates it at start",
        "ok    encryption key: valid Fernet key(s); no stored secret to try yet",
    ]

    # Two installs of one workspace and another workspace: slack_sdk keeps a row per install.
    engine = create_async_engine(env["DATABASE_URL"])
    try:
        installations = AsyncSQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=engine)
        await installations.create_tables()
        for team_id in ("T0CHECK001", "T0CHECK001", "T0CHECK002"):
            await installations.async_save(
                Installation(app_id="A0TASKBOT1", team_id=team_id, user_id="U0ADMIN", bot_token="xoxb-check")
            )
    finally:
        await engine.dispose()
    code, out, err = await run_cli("check", env=env)
    assert code == 0, out + err
    assert "; 2 workspace(s) installed, 0 connected to MetaStudio" in out
    # Tokens saved before encryption are plaintext: nothing for the key to open.
    assert "ok    encryption key: valid Fernet key(s); opens all 0 stored secrets" in out
    assert "xoxb-check" not in out + err

    code, out, err = await run_cli("check", env={**env, "TASKBOT_ENCRYPTION_KEY": "not-a-key"})
    assert code == 2
    assert "FAIL  encryption key: TASKBOT_ENCRYPTION_KEY" in out
    assert "not-a-key" not in out + err and CLIENT_SECRET not in out + err


@dataclass
class Serving:
    """What ``taskbot serve`` needs to run against ``cloud_and_slack``, on a free port."""

    slack: SlackStandIn
    port: int
    env: dict[str, str]


@pytest.fixture
def serving(cloud_and_slack: tuple[str, SlackStandIn]) -> Serving:
    simulator_url, slack = cloud_and_slack
    port = free_port()
    return Serving(slack, port, serving_env(SIGNING_SECRET, simulator_url, slack.api_url, PORT=str(port)))


async def test_serve_handles_a_command_logs_json_without_secrets_and_stops_on_sigterm(
    serving: Serving,
) -> None:
    slack, port = serving.slack, serving.port
    env = {**serving.env, "TASKBOT_LOG_FORMAT": "json", "DATABASE_URL": "sqlite+aiosqlite:///:memory:"}
    process = await start_cli("serve", env=env)
    try:
        await wait_until_serving(process, f"http://127.0.0.1:{port}")
        async with httpx.AsyncClient(timeout=CLI_SECONDS) as http:
            body, headers = slack.slash_command(SIGNING_SECRET, sim.SEED_TASK_ID)
            response = await http.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
            assert response.status_code == 200
            await slack.wait_for_messages(1, timeout=CLI_SECONDS)
    finally:
        code, out, err = await stop_cli(process)
    assert code == 0
    text = out + err
    assert "Traceback" not in text
    for secret in (DEMO_BOT_TOKEN, SIGNING_SECRET, sim.DEMO_SECRET_KEY):
        assert secret not in text
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    handled = [r for r in records if r.get("msg") == "command handled"]
    assert handled, text
    assert handled[0]["team"] == slack.team_id
    assert handled[0]["command"] == "showtask"
    assert handled[0]["task_id"] == sim.SEED_TASK_ID
    assert handled[0]["request_id"]
    assert handled[0]["latency_ms"] >= 0


async def test_serve_in_socket_mode_answers_over_the_websocket_and_serves_health(
    serving: Serving, tmp_path: Path
) -> None:
    slack, port = serving.slack, serving.port
    env = {
        **serving.env,
        "SLACK_APP_TOKEN": DEMO_APP_TOKEN,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'socket.db'}",
    }
    del env["SLACK_SIGNING_SECRET"]  # Socket Mode needs none: Slack's connection is the proof
    process = await start_cli("serve", env=env)
    try:
        # The first command waits for the process to start and open its socket.
        help_ack = await slack.socket_slash_command("help", timeout=SERVE_START_SECONDS)
        assert "Usage" in help_ack["payload"]["text"]
        assert help_ack["payload"]["response_type"] == "ephemeral"
        card_ack = await slack.socket_slash_command(sim.SEED_TASK_ID, timeout=CLI_SECONDS)
        assert not card_ack.get("payload")  # an empty ack: the card follows in the channel
        messages = await slack.wait_for_messages(1, timeout=CLI_SECONDS)
        assert messages[0].via == "chat.postMessage"
        assert "Imported Q&A pairs." in json.dumps(messages[0].blocks)
        async with httpx.AsyncClient(timeout=CLI_SECONDS) as http:
            assert (await http.get(f"http://127.0.0.1:{port}/healthz")).json() == {"ok": True}
    finally:
        code, out, err = await stop_cli(process)
    assert code == 0, err
    assert DEMO_APP_TOKEN not in out + err
    assert "Traceback" not in err


async def test_rotate_keys_reencrypts_so_the_old_key_can_go(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    secret_key = "sk-rotate-me-0123456789abcdef"
    form = aksk_form(project_id=sim.DEMO_PROJECT_ID, access_key=sim.DEMO_ACCESS_KEY, secret_key=secret_key)
    database = Database(url)
    try:
        store = WorkspaceStore(database, SecretBox([old_key]))
        await migrate_schema(database.engine)
        await store.save_connection("T0ROTATE01", form, user_id="U0ADMIN")
    finally:
        await database.dispose()
    env = multi_workspace_env(SIGNING_SECRET, DATABASE_URL=url)

    code, out, err = await run_cli(
        "rotate-keys", env={**env, "TASKBOT_ENCRYPTION_KEY": SecretBox.generate_key()}
    )
    assert code == 1
    assert err.startswith("Nothing changed: a stored secret could not be decrypted")
    assert "Traceback" not in out + err

    code, out, err = await run_cli(
        "rotate-keys", env={**env, "TASKBOT_ENCRYPTION_KEY": f"{new_key},{old_key}"}
    )
    assert code == 0, err
    assert out.startswith("1 workspace connection(s) re-encrypted")
    assert old_key not in out + err and new_key not in out + err

    database = Database(url)
    try:
        credentials = await WorkspaceStore(database, SecretBox([new_key])).credentials("T0ROTATE01")
    finally:
        await database.dispose()
    assert isinstance(credentials, KeyPair)
    assert credentials.secret_key.get_secret_value() == secret_key

    code, _, err = await run_cli("rotate-keys", env=clean_env(DATABASE_URL=url))
    assert code == 2 and "TASKBOT_ENCRYPTION_KEY" in err


async def test_version_is_the_installed_one() -> None:
    import importlib.metadata

    code, out, err = await run_cli("--version", env=clean_env())
    assert (code, err) == (0, "")
    assert out.strip() == f"taskbot {importlib.metadata.version('taskbot')}"


async def test_serve_reads_dotenv_listens_on_host_and_the_environment_wins(
    serving: Serving, tmp_path: Path
) -> None:
    """Settings from .env in the working folder; HOST is where it listens; an exported PORT beats the file's."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    dotenv = {
        **{k: v for k, v in serving.env.items() if k.startswith(("SLACK_", "HUAWEICLOUD_", "METASTUDIO_"))}
    }
    lines = [f"{name}={value}" for name, value in dotenv.items()]
    (workdir / ".env").write_text("\n".join([*lines, "HOST=127.0.0.2", "PORT=1"]) + "\n", encoding="utf-8")
    env = clean_env(PORT=str(serving.port))  # only the port comes from the environment
    process = await start_cli("serve", env=env, cwd=workdir)
    try:
        await wait_until_serving(process, f"http://127.0.0.2:{serving.port}")
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(f"http://127.0.0.1:{serving.port}/healthz")
    finally:
        code, _, err = await stop_cli(process)
    assert code == 0, err
    assert (workdir / "taskbot.db").exists()  # the default SQLite file is in the working folder


async def test_a_host_that_is_not_this_machines_is_named(tmp_path: Path) -> None:
    env = serving_env(
        SIGNING_SECRET,
        "http://127.0.0.1:9",
        SlackStandIn().api_url,
        HOST="192.0.2.1",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'h.db'}",
    )
    code, out, err = await run_cli("serve", env=env)
    assert (code, out) == (2, "")
    assert "HOST='192.0.2.1' is not an IPv4 address of this machine" in err
    assert "Traceback" not in err


async def test_a_child_that_ignores_sigterm_is_killed_and_fails_the_test() -> None:
    # A hung ``taskbot`` must not outlive the test that started it: the helper kills it and says so.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
        "time.sleep(600)",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert await process.stdout.readline() == b"up\n"  # SIGTERM is ignored from here on
    with pytest.raises(AssertionError, match=r"did not exit within 0\.5 s and was killed"):
        await stop_cli(process, timeout=0.5)
    assert process.returncode == -signal.SIGKILL
