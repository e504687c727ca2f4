"""deploy/: the Dockerfile (linted, its health check and command run for real), the compose file
and the systemd unit (verified by systemd's own analyzer)."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from bot.app import health_routes
from bot.cli import build_parser
from bot.config import check_database_url
from bot.servers import serve_asgi
from tests.support.cli import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined: (keyword, arguments)."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_hadolint_finds_nothing_at_any_level() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout) == (0, "")


def test_hadolint_would_catch_a_root_image(tmp_path: Path) -> None:
    rooted = tmp_path / "Dockerfile"
    rooted.write_text((DEPLOY / "Dockerfile").read_text().replace("USER 10001:10001", "USER root"))
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "warning", str(rooted)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "DL3002" in done.stdout


def test_the_image_runs_taskbot_serve_as_a_non_root_user_from_the_project() -> None:
    instructions = _instructions()
    assert instructions[0][0] == "FROM" and instructions[0][1].endswith("-slim")
    cmd = json.loads(dict(instructions)["CMD"])
    assert cmd == ["taskbot", "serve"]
    build_parser().parse_args(cmd[1:])
    user = [rest for keyword, rest in instructions if keyword == "USER"]
    assert user and not user[-1].startswith(("root", "0"))
    for keyword, rest in instructions:
        if keyword == "COPY":
            assert all((ROOT / source).exists() for source in shlex.split(rest)[:-1]), rest
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "pip install --no-cache-dir ." in runs


async def test_the_health_check_passes_on_a_serving_process_and_fails_without_one() -> None:
    healthcheck = dict(_instructions())["HEALTHCHECK"]
    command = json.loads(healthcheck.split(" CMD ", 1)[1])
    assert command[0] == "python"

    async def health_check(port: str) -> int:
        # As Docker runs it; a child process, so this loop keeps serving while it waits.
        child = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env={"PORT": port}, stderr=asyncio.subprocess.DEVNULL
        )
        return await asyncio.wait_for(child.wait(), 30)

    async with serve_asgi(Starlette(routes=health_routes())) as url:
        assert await health_check(url.rsplit(":", 1)[1]) == 0
    assert await health_check(str(free_port())) != 0


def test_compose_runs_taskbot_on_its_postgresql_after_it_is_healthy() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    db, taskbot = compose["services"]["db"], compose["services"]["taskbot"]
    assert (DEPLOY / taskbot["build"]["context"] / taskbot["build"]["dockerfile"]).is_file()
    url = check_database_url(taskbot["environment"]["DATABASE_URL"])
    parsed = make_url(url)
    assert parsed.host == "db" and parsed.get_backend_name() == "postgresql"
    assert (parsed.username, parsed.password, parsed.database) == (
        db["environment"]["POSTGRES_USER"],
        db["environment"]["POSTGRES_PASSWORD"],
        db["environment"]["POSTGRES_DB"],
    )
    assert taskbot["depends_on"]["db"]["condition"] == "service_healthy" and db["healthcheck"]["test"]
    # No fixed host port, so `--scale taskbot=2` does not clash.
    assert all(":" not in str(port) for port in taskbot["ports"])


def _unit_with_real_binary(tmp_path: Path) -> Path:
    unit = (DEPLOY / "taskbot.service").read_text()
    assert "ExecStart=/opt/taskbot/venv/bin/taskbot serve" in unit
    copy = tmp_path / "taskbot.service"
    # The analyzer checks that ExecStart's program exists; this machine's is in the test venv.
    copy.write_text(unit.replace("/opt/taskbot/venv/bin/taskbot", str(BIN / "taskbot")))
    return copy


@pytest.mark.parametrize("typo", [None, ("ProtectSystem=", "ProtectSytem=")])
def test_systemd_accepts_every_line_of_the_unit(tmp_path: Path, typo: tuple[str, str] | None) -> None:
    unit = _unit_with_real_binary(tmp_path)
    if typo:
        unit.write_text(unit.read_text().replace(*typo))
    analyzer = shutil.which("systemd-analyze")
    assert analyzer, "systemd-analyze is part of systemd"
    done = subprocess.run([analyzer, "verify", "--man=no", str(unit)], capture_output=True, text=True)
    problems = done.stdout + done.stderr
    if typo:
        assert "Unknown key 'ProtectSytem'" in problems
    else:
        assert (done.returncode, problems) == (0, "")


def test_the_unit_is_hardened_and_does_not_restart_on_a_configuration_error(tmp_path: Path) -> None:
    unit = _unit_with_real_binary(tmp_path)
    analyzer = shutil.which("systemd-analyze")
    assert analyzer
    # Exposure 0-10 (shown), threshold in tenths: anything above 2.0 "OK" fails.
    done = subprocess.run(
        [analyzer, "security", "--offline=yes", "--threshold=20", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-400:]
    text = unit.read_text()
    assert "RestartPreventExitStatus=2" in text and "User=root" not in text
