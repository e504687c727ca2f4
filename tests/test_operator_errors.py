"""The operator's first hour, as real ``taskbot`` processes: every mistake is one sentence.

Each sentence names the variable, says what is wrong and shows a good value; the exit code is
2 and there is no traceback. Socket Mode stops on SIGTERM while Slack cannot be reached.
``taskbot check`` and ``taskbot simulator`` say what an operator needs without reading code.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import time
from pathlib import Path

import pytest

from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_APP_TOKEN, DEMO_BOT_TOKEN
from tests.support.cli import clean_env, free_port, multi_workspace_env, run_cli, start_cli, stop_cli

SIGNING_SECRET = "0f1e2d3c4b5a69780f1e2d3c4b5a6978"
HEADER = "taskbot cannot start: the configuration is incomplete or invalid."


def _env(**extra: str) -> dict[str, str]:
    values = {
        "SLACK_BOT_TOKEN": DEMO_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "HUAWEICLOUD_SDK_AK": sim.DEMO_ACCESS_KEY,
        "HUAWEICLOUD_SDK_SK": sim.DEMO_SECRET_KEY,
        "HUAWEICLOUD_SDK_PROJECT_ID": sim.DEMO_PROJECT_ID,
        "METASTUDIO_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "PORT": str(free_port()),
    }
    return clean_env(**{**values, **extra})


def _problems(err: str) -> list[str]:
    lines = err.splitlines()
    assert lines[0] == HEADER, err
    assert "Traceback" not in err
    return [line.removeprefix("  - ") for line in lines[1:-1]]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("garbage", "DATABASE_URL is not a database URL; e.g. DATABASE_URL=sqlite+aiosqlite:///taskbot.db"),
        ("sqlite:///x.db", "use sqlite+aiosqlite:///, e.g. DATABASE_URL=sqlite+aiosqlite:///x.db"),
        (
            "postgresql://taskbot:pw-0000@db/taskbot",
            "use postgresql+asyncpg://, e.g. DATABASE_URL=postgresql+asyncpg://taskbot:***@db/taskbot",
        ),
        (
            "postgresql+asyncpg://taskbot:pw-0000@127.0.0.1:1/taskbot",
            "cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused); check that the server runs",
        ),
        ("sqlite+aiosqlite:////nonexistent-folder/x.db", "the folder /nonexistent-folder does not exist"),
    ],
    ids=["garbage", "sync-sqlite", "sync-postgres", "postgres-down", "missing-folder"],
)
async def test_a_bad_database_url_is_one_sentence(url: str, expected: str) -> None:
    code, out, err = await run_cli("serve", env=_env(DATABASE_URL=url))
    assert (code, out) == (2, "")
    [problem] = _problems(err)
    assert problem.startswith("DATABASE_URL") and expected in problem and "e.g. DATABASE_URL=" in problem
    assert "pw-0000" not in err


async def test_a_read_only_sqlite_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    if os.geteuid() == 0:
        # root writes through mode bits; /proc/1 is a folder that even root cannot create files in.
        folder = Path("/proc/1")
    env = _env(DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'taskbot.db'}")
    code, out, err = await run_cli("serve", env=env)
    assert (code, out) == (2, "")
    [problem] = _problems(err)
    assert f"the folder {folder} is read-only for this user" in problem and "e.g. DATABASE_URL=" in problem
    assert not (folder / "taskbot.db").exists()


async def test_several_mistakes_are_listed_together_without_echoing_secrets() -> None:
    mistakes = {
        "DATABASE_URL": "sqlite:///x.db",
        "TASKBOT_LOG_LEVEL": "LOUD",
        "METASTUDIO_ENDPOINT": "metastudio.cn-north-4.myhuaweicloud.com",
        "SLACK_BOT_TOKEN": "xoxp-user-token-9999",
        "SLACK_APP_TOKEN": "xoxb-not-an-app-token-9999",
        "SLACK_SIGNING_SECRET": "client-secret-not-signing-9999",
    }
    code, out, err = await run_cli("serve", env=_env(**mistakes))
    assert (code, out) == (2, "")
    problems = _problems(err)
    # One problem per mistaken variable, each named.
    assert sorted(p.split("=")[0].split(" ")[0].rstrip(":") for p in problems) == sorted(mistakes)
    assert all("e.g." in problem for problem in problems), problems
    assert "TASKBOT_LOG_LEVEL='LOUD' is not a log level" in err
    assert "METASTUDIO_ENDPOINT='metastudio.cn-north-4.myhuaweicloud.com' is not a URL with a scheme" in err
    assert "starts with xoxb-" in err and "starts with xapp-" in err and "32 hexadecimal characters" in err
    assert "9999" not in err


async def test_metastudio_endpoint_without_a_scheme_stops_multi_workspace_too() -> None:
    env = multi_workspace_env(
        SIGNING_SECRET,
        TASKBOT_ENCRYPTION_KEY="not-checked-here",
        METASTUDIO_ENDPOINT="127.0.0.1:8080",
    )
    code, _, err = await run_cli("serve", env=env)
    assert code == 2
    assert "METASTUDIO_ENDPOINT='127.0.0.1:8080' is not a URL with a scheme and a host" in err


async def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(PORT=str(port), DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
        code, out, err = await run_cli("serve", env=env)
    assert (code, out) == (2, "")
    [problem] = _problems(err)
    assert problem == (
        f"PORT={port}: port {port} is already in use by another process; "
        "stop that process or choose a free port, e.g. PORT=3001"
    )


def test_a_port_taken_after_the_check_is_named_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another process binds the port between the pre-flight check and serve's own bind: the
    operator still gets the sentence and exit code 2, not a traceback."""
    import bot.cli

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        wanted = _env(PORT=str(port), DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'race.db'}")
        for name in [n for n in os.environ if n not in wanted]:
            monkeypatch.delenv(name)
        for name, value in wanted.items():
            monkeypatch.setenv(name, value)
        # The race: the check saw a free port; the bind comes after someone else's.
        monkeypatch.setattr(bot.cli, "port_problem", lambda port, host="0.0.0.0": None)
        try:
            code = bot.cli.main(["serve"])
        finally:
            root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    # The schema was migrated before the bind, and said so in the log lines above the message.
    assert _problems(err[err.index(HEADER) :]) == [
        f"PORT={port}: port {port} is already in use by another process; "
        "stop that process or choose a free port, e.g. PORT=3001"
    ]


async def test_socket_mode_stops_on_sigterm_while_slack_cannot_be_reached(tmp_path: Path) -> None:
    closed = free_port()
    env = _env(
        SLACK_APP_TOKEN=DEMO_APP_TOKEN,
        SLACK_API_URL=f"http://127.0.0.1:{closed}/api/",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'socket.db'}",
    )
    process = await start_cli("serve", env=env)
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while sum("Socket Mode: could not connect" in line for line in lines) < 3:
                lines.append((await process.stderr.readline()).decode())
                assert lines[-1], "taskbot exited: " + "".join(lines)
    finally:
        started = time.monotonic()
        code, _, rest = await stop_cli(process)
        took = time.monotonic() - started
    log = "".join(lines) + rest
    assert code == 0, log
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert "Traceback" not in log
    attempts = re.findall(
        r"Socket Mode: could not connect through (\S+) \(attempt (\d+): \w+\); retrying in (\d+) s", log
    )
    assert [(url, n, wait) for url, n, wait in attempts[:3]] == [
        (f"http://127.0.0.1:{closed}/api/", "1", "1"),
        (f"http://127.0.0.1:{closed}/api/", "2", "2"),
        (f"http://127.0.0.1:{closed}/api/", "3", "4"),
    ]
    assert log.count(f"127.0.0.1:{closed}") == len(attempts), "one line per failed attempt, nothing else"


async def test_check_names_each_url_it_could_not_reach_and_leaves_no_file(tmp_path: Path) -> None:
    slack_port, cloud_port = free_port(), free_port()
    env = _env(
        SLACK_API_URL=f"http://127.0.0.1:{slack_port}/api/",
        METASTUDIO_ENDPOINT=f"http://127.0.0.1:{cloud_port}",
    )
    code, out, err = await run_cli("check", env=env, cwd=tmp_path, timeout=60)
    assert code == 2
    assert err == "", "nothing but the report"
    lines = out.splitlines()
    assert all(re.match(r"(ok  |FAIL)  [\w. ]+: ", line) for line in lines), out
    assert (
        lines[1]
        == f"ok    database: no SQLite file at {tmp_path / 'taskbot.db'} yet; `taskbot serve` creates it there"
    )
    [slack] = [line for line in lines if line.startswith("FAIL  Slack")]
    assert f"http://127.0.0.1:{slack_port}/api/" in slack and "SLACK_API_URL" in slack
    [cloud] = [line for line in lines if line.startswith("FAIL  MetaStudio")]
    assert f"http://127.0.0.1:{cloud_port}" in cloud and "METASTUDIO_ENDPOINT" in cloud
    assert os.listdir(tmp_path) == [], "check created a file"


async def test_simulator_prints_the_exports_that_make_check_pass(tmp_path: Path) -> None:
    port = free_port()
    process = await start_cli("simulator", "--port", str(port), env=clean_env())
    assert process.stdout is not None
    try:
        banner = [(await asyncio.wait_for(process.stdout.readline(), 30)).decode() for _ in range(7)]
        exports = dict(
            line.strip().removeprefix("export ").split("=", 1)
            for line in banner
            if line.strip().startswith("export ")
        )
        assert exports == {
            "METASTUDIO_ENDPOINT": f"http://127.0.0.1:{port}",
            "METASTUDIO_REGION": sim.DEMO_REGION,
            "HUAWEICLOUD_SDK_AK": sim.DEMO_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": sim.DEMO_SECRET_KEY,
            "HUAWEICLOUD_SDK_PROJECT_ID": sim.DEMO_PROJECT_ID,
        }
        # Nothing but those lines (and a Slack token) is needed for the MetaStudio check.
        env = clean_env(SLACK_BOT_TOKEN=DEMO_BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, **exports)
        deadline = time.monotonic() + 20
        while True:
            _, out, err = await run_cli(
                "check", env={**env, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"}
            )
            if "ok    MetaStudio list call" in out or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)  # uvicorn may still be starting after the banner
        assert "ok    MetaStudio list call" in out, out + err
    finally:
        await stop_cli(process)


def test_docs_give_the_simulator_exports_and_the_test_database() -> None:
    docs = Path(__file__).parent.parent / "docs"
    text = (docs / "operations.md").read_text() + (docs / "configuration.md").read_text()
    for line in (
        f"export HUAWEICLOUD_SDK_AK={sim.DEMO_ACCESS_KEY}",
        f"export HUAWEICLOUD_SDK_SK={sim.DEMO_SECRET_KEY}",
        f"export HUAWEICLOUD_SDK_PROJECT_ID={sim.DEMO_PROJECT_ID}",
        f"export METASTUDIO_REGION={sim.DEMO_REGION}",
        "export METASTUDIO_ENDPOINT=http://127.0.0.1:8080",
    ):
        assert line in text
    assert "TASKBOT_TEST_POSTGRES_DSN" in text and "PostgreSQL" in text
