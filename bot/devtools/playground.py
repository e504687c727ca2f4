"""``taskbot playground``: type ``/task …`` into a prompt as a Slack user would, against the real server.

It starts the MetaStudio simulator and the Slack stand-in in this process, and ``taskbot serve``
as a child process (``serve``'s own code path: settings from the environment, migrations,
SQLite in a temporary folder) pointed at both. Every line typed is sent as Slack sends it: a
signed slash command or button click over a real socket. Every message the stand-in receives
is printed as the demo renders it. The prompt is prompt-toolkit's and the output rich's;
``patch_stdout`` keeps the prompt below messages that arrive while you type.

Time: ``task`` adds a simulated import that finishes in a minute and stalls on the way; ``wait``
moves every simulated task forward, so a watch, a stall notice and an alert can be seen without
waiting for them. The server polls every 2 s and calls a task stalled after 15 s here.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from prompt_toolkit import PromptSession
from prompt_toolkit.patch_stdout import patch_stdout
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from bot.devtools import simulator as sim
from bot.devtools.demo import DEMO_USERS, PUBLIC_CHANNEL, is_alert
from bot.devtools.render import render_message
from bot.devtools.slack_standin import DEMO_BOT_TOKEN, PostedMessage, SlackStandIn
from bot.followups.watches import STALL_KEY_PREFIX
from bot.servers import serve_asgi

__all__ = ["Playground", "run_playground"]

# The server's follow-up timings: short, so a watch plays out in a minute (the defaults are in
# docs/configuration.md). A stall is called after 15 s without progress.
SERVER_SETTINGS: Final = {
    "TASKBOT_POLL_SECONDS": "2",
    "TASKBOT_MAX_POLL_SECONDS": "5",
    "TASKBOT_CARD_UPDATE_SECONDS": "5",
    "TASKBOT_STALL_MINUTES": "0.25",
    "TASKBOT_FEED_POLL_SECONDS": "5",
    "METASTUDIO_MAX_RETRIES": "1",
}
# Variables of the operator's own shell that would point the child server elsewhere.
_OWN_PREFIXES: Final = ("SLACK_", "HUAWEICLOUD_", "CLOUD_SDK", "METASTUDIO_", "TASKBOT_", "DATABASE_URL")
SERVER_START_SECONDS: Final = 60.0
SERVER_STOP_SECONDS: Final = 15.0
DEFAULT_TASK_MINUTES: Final = 1.0
_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?$")
_UNITS: Final = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}

HELP: Final = """\
Type what a Slack user types, or a playground command:
  /task <anything>     a slash command, e.g. /task help, /task recent, /task <task id>
  press <label>        press the newest button with that label, e.g. press Refresh
  task [minutes]       add a simulated import that finishes in a minute (or as many as given)
                       and stalls on the way; prints its id
  wait <time>          move every simulated task forward, e.g. wait 30s, wait 5m
  as en | as zh        type as the English (en-US) or the Chinese (zh-CN) Slack user
  help                 this text
  Ctrl-D, Ctrl-C, quit leave (the server is stopped, its temporary database deleted)
Try: task   then   /task <its id>   then   press Notify this channel when done   then   wait 1m"""


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``5m``, ``1.5h`` or a bare number of seconds; ValueError otherwise."""
    found = _DURATION.match(text.strip().lower())
    if found is None:
        raise ValueError(f"not a time: {text!r} (e.g. 30s, 5m, 1h)")
    return float(found.group(1)) * _UNITS[found.group(2)]


def playground_task(now: float, minutes: float, number: int) -> sim.SimTask:
    """An import that starts now, stalls from a quarter of its run for 7/12 of it, and ends after ``minutes``.

    The stall is long against the server's threshold (15 s, and never under 4 of the task's
    usual gaps between count changes, about 5 s each here), so it is noticed every time.
    """
    duration = max(6.0, minutes * 60)
    return sim.SimTask(
        task_id=uuid.uuid4().hex,
        task_name=f"Playground import #{number}",
        resource="knowledge-intent-question-create",
        total_count=6000,
        duration_seconds=duration,
        begin_time_ms=round(now * 1000),
        failure_rate=0.005,
        stall_at_seconds=duration / 4,
        stall_seconds=duration * 7 / 12,
    )


def buttons(message: PostedMessage) -> Iterator[dict[str, Any]]:
    """Every button of a message, in block order (actions blocks and section accessories)."""
    for block in message.blocks:
        if block.get("type") == "actions":
            yield from (e for e in block.get("elements") or [] if e.get("type") == "button")
        accessory = block.get("accessory") or {}
        if accessory.get("type") == "button":
            yield accessory


def find_button(messages: list[PostedMessage], label: str) -> tuple[PostedMessage, dict[str, Any]] | None:
    """The newest button whose label is ``label`` (case-insensitive), else the newest one it begins."""
    wanted = label.strip().casefold()
    for exact in (True, False):
        for message in reversed(messages):
            for button in buttons(message):
                shown = str((button.get("text") or {}).get("text", "")).strip().casefold()
                if shown == wanted if exact else shown.startswith(wanted):
                    return message, button
    return None


def _title(message: PostedMessage) -> str:
    metadata = message.payload.get("metadata") or {}
    key = str((metadata.get("event_payload") or {}).get("key", ""))
    if message.via == "ack":
        return "reply in the acknowledgement, only you can see this"
    if message.ephemeral:
        return f"{message.via}, only you can see this"
    if is_alert(message):
        kind = "alert"
    elif key.startswith(STALL_KEY_PREFIX):
        kind = "stall notice"
    elif message.via == "chat.update":
        kind = "card redrawn in place"
    else:
        kind = "message"
    thread = " (in a thread)" if message.payload.get("thread_ts") else ""
    return f"{kind}{thread}: {message.via} in {message.channel or 'the channel'}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Playground:
    """The running pieces and what the prompt acts on."""

    simulator: sim.Simulator
    slack: SlackStandIn
    bot_url: str
    signing_secret: str
    http: httpx.AsyncClient
    console: Console
    color: bool
    user_id: str = next(iter(DEMO_USERS))
    added: int = 0
    shown: int = 0

    # --- what a line does ---------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """Act on one typed line; False when it asks to leave."""
        line = line.strip()
        if not line:
            return True
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word in ("quit", "exit"):
            return False
        if word == "/task":
            await self.command(rest)
        elif word.startswith("/"):
            self.say(f"Only /task is taskbot's command (you typed {word}).")
        elif word == "press":
            await self.press(rest)
        elif word == "task":
            self.add_task(rest)
        elif word == "wait":
            self.wait(rest)
        elif word == "as":
            self.switch_user(rest)
        elif word == "help":
            self.say(HELP)
        else:
            self.say(f"Not a playground command: {word}. Type help.")
        return True

    async def command(self, text: str) -> None:
        body, headers = self.slack.slash_command(
            self.signing_secret, text, channel_id=PUBLIC_CHANNEL, user_id=self.user_id
        )
        response = await self.http.post(f"{self.bot_url}/slack/events", content=body, headers=headers)
        if response.content and response.headers.get("content-type", "").startswith("application/json"):
            self.show(PostedMessage("ack", None, response.json()))
        elif response.status_code != 200:
            self.say(f"The server answered HTTP {response.status_code}.")

    async def press(self, label: str) -> None:
        if not label:
            self.say("press what? e.g. press Refresh")
            return
        found = find_button(self.slack.messages, label)
        if found is None:
            self.say(f"No message has a button {label!r} yet.")
            return
        message, button = found
        body, headers = self.slack.block_action(
            self.signing_secret,
            action_id=str(button.get("action_id")),
            value=str(button.get("value", "")),
            channel_id=message.channel or PUBLIC_CHANNEL,
            user_id=self.user_id,
            message_ts=message.ts,
        )
        self.say(f"(pressed {button['text']['text']!r})")
        response = await self.http.post(f"{self.bot_url}/slack/events", content=body, headers=headers)
        if response.status_code != 200:
            self.say(f"The server answered HTTP {response.status_code}.")

    def add_task(self, minutes_text: str) -> None:
        try:
            minutes = float(minutes_text) if minutes_text else DEFAULT_TASK_MINUTES
        except ValueError:
            self.say(f"task takes minutes, e.g. task 2 (not {minutes_text!r})")
            return
        if minutes <= 0:
            self.say("task takes a positive number of minutes")
            return
        self.added += 1
        task = playground_task(time.time(), minutes, self.added)
        self.simulator.add_task(task)
        self.say(
            f"Added task {task.task_id}: {task.total_count:,} items over {task.duration_seconds:g} s, "
            f"stalling from {task.stall_at_seconds:g} s for {task.stall_seconds:g} s.\n"
            f"  /task {task.task_id}\n  /task watch {task.task_id}"
        )

    def wait(self, duration_text: str) -> None:
        try:
            seconds = parse_duration(duration_text)
        except ValueError as exc:
            self.say(str(exc))
            return
        moved = 0
        for task_id in self.simulator.task_ids:
            task = self.simulator.task(task_id)
            if task.static_body is None:
                # Moving a task's start back is time passing for it; the server's clock stays true.
                self.simulator.add_task(
                    dataclasses.replace(task, begin_time_ms=task.begin_time_ms - round(seconds * 1000))
                )
                moved += 1
        self.say(f"{seconds:g} s passed for {moved} simulated task(s); the server sees it at its next poll.")

    def switch_user(self, language: str) -> None:
        wanted = language.strip().lower()
        for user_id, tag in DEMO_USERS.items():
            if tag.lower().startswith(wanted) and wanted:
                self.user_id = user_id
                self.say(f"You are now {user_id} ({tag}).")
                return
        self.say("as en, or as zh")

    # --- output ------------------------------------------------------------------------------

    def prompt_text(self) -> str:
        return f"{self.user_id} ({DEMO_USERS[self.user_id]}) > "

    def say(self, text: str) -> None:
        self.console.print(Text(text), highlight=False)

    def show(self, message: PostedMessage) -> None:
        rendered = render_message(message.payload, color=self.color)
        self.console.print(Panel(Text.from_ansi(rendered), title=_title(message), title_align="left"))

    async def follow_channel(self, stop: asyncio.Event) -> None:
        """Print every message the stand-in receives, as it arrives, until ``stop`` is set.

        It stops by itself rather than by cancellation: a cancellation of ``asyncio.wait_for`` that
        races its inner wait can be lost on Python 3.11 (bpo-42130; 3.12 rewrote ``wait_for``),
        which hung the exit here.
        """
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await self.slack.wait_for(lambda messages: len(messages) > self.shown, timeout=0.5)
            for message in self.slack.messages[self.shown :]:
                self.show(message)
            self.shown = len(self.slack.messages)


def server_environment(
    simulator_url: str, slack: SlackStandIn, signing_secret: str, workdir: Path, port: int
) -> dict[str, str]:
    """What ``taskbot serve`` is started with: this shell's environment without taskbot's variables, plus ours."""
    env = {name: value for name, value in os.environ.items() if not name.upper().startswith(_OWN_PREFIXES)}
    env.update(
        {
            "SLACK_BOT_TOKEN": DEMO_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": signing_secret,
            "SLACK_API_URL": slack.api_url,
            "HUAWEICLOUD_SDK_AK": sim.DEMO_ACCESS_KEY,
            "HUAWEICLOUD_SDK_SK": sim.DEMO_SECRET_KEY,
            "HUAWEICLOUD_SDK_PROJECT_ID": sim.DEMO_PROJECT_ID,
            "METASTUDIO_REGION": sim.DEMO_REGION,
            "METASTUDIO_ENDPOINT": simulator_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'taskbot.db'}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            **SERVER_SETTINGS,
        }
    )
    return env


@contextlib.asynccontextmanager
async def running_server(env: dict[str, str], workdir: Path) -> AsyncIterator[str]:
    """``taskbot serve`` as a child process until the block exits (SIGTERM); yields its URL once ready."""
    url = f"http://{env['HOST']}:{env['PORT']}"
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        # cwd: the temporary folder, so a .env where the playground was started is not read.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", env=env, cwd=workdir, stdout=log, stderr=log
        )
        try:
            await _wait_ready(url, process, log_path)
            yield url
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), SERVER_STOP_SECONDS)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_ready(url: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                break
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-2000:]
    raise ServerDidNotStart(f"taskbot serve did not become ready:\n{tail}")


class ServerDidNotStart(Exception):
    pass


async def _lines(
    console: Console, session: PromptSession[str] | None, prompt: Callable[[], str]
) -> AsyncIterator[str]:
    """Typed lines until Ctrl-D or Ctrl-C: prompt-toolkit's prompt on a terminal, plain lines otherwise."""
    while True:
        try:
            if session is not None:
                line = await session.prompt_async(prompt)
            else:
                line = await asyncio.to_thread(sys.stdin.readline)
                if not line:
                    return
                console.print(Text(prompt() + line.rstrip("\n")), highlight=False)
        except (EOFError, KeyboardInterrupt):
            return
        yield line


async def play(console: Console, *, interactive: bool, color: bool) -> int:
    signing_secret = secrets.token_hex(16)
    simulator = sim.Simulator()
    slack = SlackStandIn()
    slack.locales.update(DEMO_USERS)
    with tempfile.TemporaryDirectory(prefix="taskbot-playground-") as folder:
        workdir = Path(folder)
        console.print("Starting the MetaStudio simulator, a Slack stand-in and taskbot serve on 127.0.0.1 …")
        async with serve_asgi(simulator.app) as simulator_url, serve_asgi(slack.app) as slack_url:
            slack.base_url = slack_url
            env = server_environment(simulator_url, slack, signing_secret, workdir, free_port())
            try:
                async with running_server(env, workdir) as bot_url, httpx.AsyncClient(timeout=15) as http:
                    playground = Playground(simulator, slack, bot_url, signing_secret, http, console, color)
                    console.print(f"taskbot serve is up at {bot_url} (its log: {workdir / 'serve.log'}).")
                    playground.say(HELP)
                    stop = asyncio.Event()
                    follower = asyncio.create_task(playground.follow_channel(stop))
                    session: PromptSession[str] | None = PromptSession() if interactive else None
                    try:
                        async for line in _lines(console, session, playground.prompt_text):
                            if not await playground.handle(line):
                                break
                    finally:
                        stop.set()
                        await follower
                    console.print("Stopping taskbot serve …")
            except ServerDidNotStart as exc:
                console.print(Text(str(exc)))
                return 1
    console.print("Bye.")
    return 0


def run_playground() -> int:
    """``taskbot playground``: a prompt on a terminal; lines from standard input otherwise."""
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if not interactive:
        console = Console(highlight=False, no_color=not color)
        return asyncio.run(play(console, interactive=False, color=color))
    # patch_stdout: what arrives while you type is printed above the prompt, not through it.
    with patch_stdout(raw=True):
        console = Console(file=sys.stdout, force_terminal=color, no_color=not color, highlight=False)
        try:
            return asyncio.run(play(console, interactive=True, color=color))
        except KeyboardInterrupt:
            return 0
