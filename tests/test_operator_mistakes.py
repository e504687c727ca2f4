"""More operator mistakes, as real ``taskbot`` processes: one message naming each variable, exit 2.

A SQLite path taskbot cannot use, several mistakes at once, an unknown channel language, a
credentials file that is not one, PostgreSQL refusing the role or database, an allow-list entry
that is a typo or too wide, an empty variable, and an encryption key that opens none of the
stored secrets (``check`` says so, ``serve`` refuses to start).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy.engine import make_url

from bot.db.base import Database
from bot.db.crypto import SecretBox
from bot.db.installations import EncryptedInstallationStore
from bot.db.schema import migrate as migrate_schema
from bot.db.workspaces import WorkspaceStore
from bot.devtools import simulator as sim
from tests.support.cli import CLIENT_ID, clean_env, free_port, multi_workspace_env, run_cli
from tests.support.forms import aksk_form
from tests.test_operator_errors import SIGNING_SECRET, _env, _problems

ROOT = os.geteuid() == 0


async def _refused(*args: str, env: dict[str, str]) -> list[str]:
    code, out, err = await run_cli(*args, env=env)
    assert (code, out) == (2, ""), err
    return _problems(err)


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this user cannot create files in, though ``os.access`` may say otherwise (root)."""
    if ROOT:
        return Path("/sys")  # sysfs: root passes the mode bits, yet creating a file fails
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    return folder


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize("kind", ["unwritable-folder", "folder-as-file", "device", "not-a-database"])
async def test_a_sqlite_path_taskbot_cannot_use_is_one_sentence(
    tmp_path: Path, kind: str, command: str
) -> None:
    if kind == "unwritable-folder":
        path, expected = _unwritable_folder(tmp_path) / "taskbot.db", "is read-only for this user"
    elif kind == "folder-as-file":
        path, expected = tmp_path, "is not a regular file"
    elif kind == "device":
        path, expected = Path("/dev/null"), "is not a regular file"
    else:
        path, expected = (
            tmp_path / "notes.db",
            "cannot be opened as a SQLite database (file is not a database)",
        )
        path.write_text("these are notes, not a database\n" * 100)
    [problem] = await _refused(command, env=_env(DATABASE_URL=f"sqlite+aiosqlite:///{path}"))
    assert problem.startswith("DATABASE_URL=") and expected in problem, problem


async def test_every_mistake_is_listed_in_one_go(tmp_path: Path) -> None:
    env = clean_env(
        SLACK_BOT_TOKEN="xoxp-a-user-token",
        TASKBOT_CHANNEL_LANGUAGE="fr",
        TASKBOT_ALLOWED_ENDPOINT_HOSTS="http://[::bad,*.*.*",
        HUAWEICLOUD_SDK_AK="an-access-key",
        DATABASE_URL=f"sqlite+aiosqlite:///{_unwritable_folder(tmp_path) / 'x.db'}",
        PORT=str(free_port()),
    )
    problems = await _refused("serve", env=env)
    named = [problem.split("=")[0].split(" ")[0].rstrip(":") for problem in problems]
    assert named == [
        "SLACK_BOT_TOKEN",
        "TASKBOT_ALLOWED_ENDPOINT_HOSTS",
        "TASKBOT_CHANNEL_LANGUAGE",
        "SLACK_SIGNING_SECRET",
        "HUAWEICLOUD_SDK_SK",
        "DATABASE_URL",
    ], problems
    # An invalid token is named once, as invalid, not also as missing.
    assert not any("SLACK_BOT_TOKEN is not set" in problem for problem in problems)

    code, out, err = await run_cli("check", env=env)
    assert code == 2 and "Traceback" not in err
    first = out.splitlines()[0]
    for name in ("SLACK_BOT_TOKEN", "TASKBOT_CHANNEL_LANGUAGE", "TASKBOT_ALLOWED_ENDPOINT_HOSTS"):
        assert name in first, first


async def test_an_unknown_channel_language_names_the_variable() -> None:
    [problem] = await _refused("serve", env=_env(TASKBOT_CHANNEL_LANGUAGE="fr"))
    assert (
        problem.startswith("TASKBOT_CHANNEL_LANGUAGE='fr'")
        and "e.g. TASKBOT_CHANNEL_LANGUAGE=follow" in problem
    )


@pytest.mark.parametrize("entry", ["http://[::bad", "*.*.*", "*.com"])
async def test_a_typo_or_too_wide_allow_list_entry_is_refused(entry: str) -> None:
    [problem] = await _refused("serve", env=_env(TASKBOT_ALLOWED_ENDPOINT_HOSTS=f"*.example.com,{entry}"))
    assert problem.startswith("TASKBOT_ALLOWED_ENDPOINT_HOSTS=") and repr(entry) in problem, problem


@pytest.mark.parametrize("kind", ["folder", "malformed", "binary", "unreadable"])
async def test_a_credentials_file_that_is_not_one_names_the_variable(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "credentials"
    if kind == "folder":
        path.mkdir()
        expected = "is a folder"
    elif kind == "malformed":
        path.write_text("ak = AKIA-not-in-a-section\nsk = secret-outside-any-section\n")
        expected = "is not an INI file"
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
        expected = "is not UTF-8 text"
    elif ROOT:
        path = Path("/proc/1/mem")  # root reads through mode bits, not this
        expected = "cannot be read"
    else:
        path.write_text("[basic]\nak = a\nsk = b\n")
        path.chmod(0)
        expected = "cannot be read"
    env = _env(HUAWEICLOUD_SDK_CREDENTIALS_FILE=str(path))
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_PROJECT_ID"):
        env.pop(name)
    [problem] = await _refused("serve", env=env)
    assert problem.startswith(f"HUAWEICLOUD_SDK_CREDENTIALS_FILE={str(path)!r}") and expected in problem, (
        problem
    )
    assert "secret-outside-any-section" not in problem


async def test_the_default_credentials_file_is_named_too(tmp_path: Path) -> None:
    (tmp_path / ".huaweicloud").mkdir()
    (tmp_path / ".huaweicloud" / "credentials").write_bytes(b"\xff\xfe\x00garbage")
    env = _env(HOME=str(tmp_path))
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_PROJECT_ID"):
        env.pop(name)
    [problem] = await _refused("serve", env=env)
    assert problem.startswith("HUAWEICLOUD_SDK_CREDENTIALS_FILE=") and "(the default" in problem, problem


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"username": "nosuchrole"}, 'the server says: role "nosuchrole" does not exist'),
        ({"database": "nosuchdatabase"}, 'the server says: database "nosuchdatabase" does not exist'),
        ({"host": "no-such-host.invalid", "query": {}}, "the host name does not resolve"),
    ],
    ids=["role", "database", "host"],
)
async def test_postgresql_says_why_it_refused(
    postgres_url: str, change: dict[str, object], reason: str
) -> None:
    # The suite's own server (or TASKBOT_TEST_POSTGRES_DSN's), with one part of the URL wrong.
    url = make_url(postgres_url).set(**change).render_as_string(hide_password=False)
    [problem] = await _refused("serve", env=_env(DATABASE_URL=url))
    assert problem.startswith("DATABASE_URL=") and f"({reason})" in problem, problem


async def test_an_empty_variable_counts_as_unset() -> None:
    [problem] = await _refused(
        "serve", env=_env(SLACK_BOT_TOKEN="", SLACK_APP_TOKEN="", TASKBOT_LOG_LEVEL="")
    )
    assert problem.startswith("SLACK_BOT_TOKEN is not set"), problem


async def test_check_exits_2_for_a_missing_variable_as_for_an_invalid_one(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    missing = _env(DATABASE_URL=database)
    missing.pop("SLACK_SIGNING_SECRET")
    code, out, err = await run_cli("check", env=missing)
    assert code == 2 and "FAIL  configuration: SLACK_SIGNING_SECRET is not set" in out, out + err
    code, out, err = await run_cli("check", env=_env(DATABASE_URL=database, SLACK_SIGNING_SECRET="nope"))
    assert code == 2 and "FAIL  configuration: SLACK_SIGNING_SECRET is not a signing secret" in out, out + err


async def test_a_wrong_encryption_key_fails_check_and_stops_serve(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    right = SecretBox.generate_key()
    database = Database(url)
    try:
        await migrate_schema(database.engine)
        box = SecretBox([right])
        await WorkspaceStore(database, box).save_connection(
            "T0KEYS0001",
            aksk_form(project_id=sim.DEMO_PROJECT_ID, access_key="AK0KEYS", secret_key="sk-keys"),
            user_id="U0ADMIN",
        )
        await EncryptedInstallationStore(client_id=CLIENT_ID, engine=database.engine, box=box).async_save(
            Installation(
                app_id="A0TASKBOT1", team_id="T0KEYS0001", user_id="U0ADMIN", bot_token="xoxb-keys-1"
            )
        )
    finally:
        await database.dispose()
    env = multi_workspace_env(SIGNING_SECRET, DATABASE_URL=url, PORT=str(free_port()))
    wrong = SecretBox.generate_key()

    code, out, err = await run_cli("check", env={**env, "TASKBOT_ENCRYPTION_KEY": wrong})
    assert code == 2, out + err
    [line] = [line for line in out.splitlines() if "encryption key" in line]
    assert line.startswith("FAIL  encryption key: TASKBOT_ENCRYPTION_KEY opens none of the 4 secrets stored")

    [problem] = await _refused("serve", env={**env, "TASKBOT_ENCRYPTION_KEY": wrong})
    assert problem.startswith("TASKBOT_ENCRYPTION_KEY opens none of the 4 secrets stored in the database")
    assert wrong not in problem and right not in problem

    code, out, err = await run_cli("check", env={**env, "TASKBOT_ENCRYPTION_KEY": f"{wrong},{right}"})
    assert code == 0, out + err
    assert "ok    encryption key: valid Fernet key(s); opens all 4 stored secrets" in out
