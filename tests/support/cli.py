"""The ``taskbot`` command as a real child process, started the way an operator starts it.

``clean_env`` drops every Slack, Huawei Cloud and taskbot variable of the test runner (and points
``HOME`` away, so no ``~/.huaweicloud/credentials`` leaks in); a test adds back what it means to
give. ``start_cli`` spawns ``python -m bot.cli`` with both streams piped, ``stop_cli`` sends it
SIGTERM and collects what it wrote, ``run_cli`` runs it to the end, and ``free_port`` finds a
loopback port nothing listens on. ``wait_until_serving`` waits for a started ``serve`` to answer
``/healthz``, failing at once with what it wrote when it exits instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx

from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_BOT_TOKEN
from tests.support.waiting import eventually

# A bound for a hung start, not a speed claim: on the shared 2-core machine, with other
# ``taskbot serve`` processes starting beside it, one start has taken over 10 s.
SERVE_START_SECONDS = 60.0
# Likewise for a child process that should answer, finish or stop: a bound for a hang only. A
# loaded machine (load 12-20 on 2 cores) has taken tens of seconds for a start-to-exit run.
CLI_SECONDS = 120.0

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CLI_SECONDS",
    "SERVE_START_SECONDS",
    "clean_env",
    "free_port",
    "multi_workspace_env",
    "run_cli",
    "serving_env",
    "start_cli",
    "stop_cli",
    "wait_until_serving",
]

# The OAuth app of a multi-workspace taskbot in the CLI tests.
CLIENT_ID = "111.222"
CLIENT_SECRET = "client-secret-5678"

_OURS = ("SLACK_", "HUAWEICLOUD_", "CLOUD_SDK", "METASTUDIO_", "TASKBOT_")


def clean_env(**extra: str) -> dict[str, str]:
    """The runner's environment without any of our variables, plus ``extra``."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    keep["HOME"] = "/nonexistent-home"
    keep.update(extra)
    return keep


def serving_env(signing_secret: str, simulator_url: str, slack_api_url: str, **extra: str) -> dict[str, str]:
    """``clean_env`` for one workspace: the demo bot token and MetaStudio credentials,
    ``signing_secret``, the simulator at ``simulator_url`` and the Slack stand-in's Web API at
    ``slack_api_url``; ``extra`` adds to or overrides them."""
    values = {
        "SLACK_BOT_TOKEN": DEMO_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": slack_api_url,
        "HUAWEICLOUD_SDK_AK": sim.DEMO_ACCESS_KEY,
        "HUAWEICLOUD_SDK_SK": sim.DEMO_SECRET_KEY,
        "HUAWEICLOUD_SDK_PROJECT_ID": sim.DEMO_PROJECT_ID,
        "METASTUDIO_ENDPOINT": simulator_url,
    }
    return clean_env(**{**values, **extra})


def multi_workspace_env(signing_secret: str, **extra: str) -> dict[str, str]:
    """``clean_env`` for many workspaces: the OAuth app's ``CLIENT_ID`` and ``CLIENT_SECRET`` and
    ``signing_secret``, plus ``extra`` (the encryption key, the database, ...)."""
    return clean_env(
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
        SLACK_SIGNING_SECRET=signing_secret,
        **extra,
    )


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> asyncio.subprocess.Process:
    """``taskbot *args`` running, stdout and stderr piped; the caller waits for or stops it."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_cli(process: asyncio.subprocess.Process, timeout: float = CLI_SECONDS) -> tuple[int, str, str]:
    """SIGTERM, as an orchestrator stops a process, then wait: (exit code, stdout, stderr)."""
    process.send_signal(signal.SIGTERM)
    return await _finish(process, timeout)


async def wait_until_serving(process: asyncio.subprocess.Process, url: str) -> None:
    """Until ``url``/healthz answers 200; a process that exits first fails with its output."""
    async with httpx.AsyncClient(timeout=SERVE_START_SECONDS) as http:

        async def healthy() -> bool:
            if process.returncode is not None:
                code, out, err = await _finish(process, CLI_SECONDS)
                raise AssertionError(f"taskbot serve exited with {code} before serving\n{out}{err}")
            try:
                return (await http.get(f"{url}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(healthy, within=SERVE_START_SECONDS, what=f"taskbot serve to answer {url}/healthz")


async def run_cli(
    *args: str, env: dict[str, str], timeout: float = CLI_SECONDS, cwd: Path | None = None
) -> tuple[int, str, str]:
    """``taskbot *args`` run to its end: (exit code, stdout, stderr)."""
    return await _finish(await start_cli(*args, env=env, cwd=cwd), timeout)


async def _finish(process: asyncio.subprocess.Process, timeout: float) -> tuple[int, str, str]:
    """The exit code and output; a process still running after ``timeout`` is killed (so no child
    outlives a failed test) and fails the test with what it printed."""
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
        raise AssertionError(
            f"taskbot did not exit within {timeout:g} s and was killed\n{out.decode()}{err.decode()}"
        ) from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
