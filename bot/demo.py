"""``taskbot demo``: the simulator, the bot and a Slack stand-in on loopback, driven by a script.

Every request is a real, signed Slack request over a real socket; every message printed is
what the stand-in received, rendered as the channel would show it.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
from pydantic import SecretStr

from bot import logs
from bot import simulator as sim
from bot.app import create_asgi
from bot.config import Settings
from bot.render import render_message
from bot.servers import serve_asgi
from bot.slack_standin import DEMO_BOT_TOKEN, PostedMessage, SlackStandIn

PUBLIC_CHANNEL = "C0DEMO0001"
PRIVATE_CHANNEL = "G0PRIVATE1"


@dataclass(frozen=True)
class Step:
    title: str
    text: str
    channel: str = PUBLIC_CHANNEL


SCRIPT = (
    Step("A finished task (the API doc's own example)", sim.SEED_TASK_ID),
    Step("A running import of 50,000 Q&A pairs", sim.RUNNING_TASK_ID),
    Step("A malformed id", "12345-not-a-task"),
    Step("A task that does not exist", "deadbeefdeadbeefdeadbeefdeadbeef"),
    Step("The newest tasks", "recent"),
    Step("A private channel the bot was never invited to", sim.FINISHING_TASK_ID, PRIVATE_CHANNEL),
    Step("MetaStudio refuses the credentials", sim.MSS_TASK_IDS["MSS.000000004"]),
    Step("Help", "help"),
)


@dataclass
class LocalStack:
    """Everything ``demo_stack`` started, for the demo, the tests and the benchmarks."""

    simulator: sim.Simulator
    slack: SlackStandIn
    settings: Settings
    bot_url: str
    signing_secret: str

    async def command(
        self, http: httpx.AsyncClient, text: str, *, channel_id: str = PUBLIC_CHANNEL, user_id: str = "U0DEMOUSER"
    ) -> httpx.Response:
        body, headers = self.slack.slash_command(self.signing_secret, text, channel_id=channel_id, user_id=user_id)
        return await http.post(f"{self.bot_url}/slack/events", content=body, headers=headers)

    async def click(
        self,
        http: httpx.AsyncClient,
        action_id: str,
        value: str,
        *,
        channel_id: str = PUBLIC_CHANNEL,
        user_id: str = "U0DEMOUSER",
        message_ts: str | None = None,
    ) -> httpx.Response:
        body, headers = self.slack.block_action(
            self.signing_secret,
            action_id=action_id,
            value=value,
            channel_id=channel_id,
            user_id=user_id,
            message_ts=message_ts,
        )
        return await http.post(f"{self.bot_url}/slack/events", content=body, headers=headers)


@contextlib.asynccontextmanager
async def demo_stack(
    workdir: Path,
    *,
    simulator: sim.Simulator | None = None,
    slack: SlackStandIn | None = None,
    **overrides: Any,
) -> AsyncIterator[LocalStack]:
    """Simulator, Slack stand-in and bot on loopback ports, wired together."""
    signing_secret = secrets.token_hex(16)
    simulator = simulator or sim.Simulator()
    slack = slack or SlackStandIn()
    async with serve_asgi(simulator.app) as simulator_url, serve_asgi(slack.app) as slack_url:
        slack.base_url = slack_url
        values: dict[str, Any] = {
            "slack_bot_token": SecretStr(DEMO_BOT_TOKEN),
            "slack_signing_secret": SecretStr(signing_secret),
            "slack_api_url": slack.api_url,
            "cloud_ak": sim.DEMO_ACCESS_KEY,
            "cloud_sk": SecretStr(sim.DEMO_SECRET_KEY),
            "cloud_project_id": sim.DEMO_PROJECT_ID,
            "endpoint": simulator_url,
            "max_retries": 1,
            "database_url": f"sqlite+aiosqlite:///{workdir / 'taskbot.db'}",
        }
        values.update(overrides)
        settings = Settings(**values)
        async with serve_asgi(create_asgi(settings)) as bot_url:
            yield LocalStack(simulator, slack, settings, bot_url, signing_secret)


async def run_demo(out: TextIO = sys.stdout, *, color: bool = False) -> int:
    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    def show(message: PostedMessage) -> None:
        if message.via == "ack":
            say("  (in the acknowledgement itself, only you can see this)")
        else:
            where = "only you can see this" if message.ephemeral else f"in {message.channel or 'the channel'}"
            say(f"  ({message.via}, {where})")
        for line in render_message(message.payload, color=color).splitlines():
            say("  │ " + line)

    # The demo's output is the conversation; operational logs would only interleave with it.
    logs.configure("text", "ERROR")
    with tempfile.TemporaryDirectory(prefix="taskbot-demo-") as workdir:
        async with demo_stack(Path(workdir)) as stack, httpx.AsyncClient() as http:
            slack = stack.slack
            say("taskbot demo: MetaStudio simulator, taskbot and a Slack stand-in, all on 127.0.0.1.\n")
            failures = 0
            for number, step in enumerate(SCRIPT, start=1):
                say(f"{number}. {step.title}")
                say(f"   /task {step.text}")
                seen = len(slack.messages)
                started = time.perf_counter()
                response = await stack.command(http, step.text, channel_id=step.channel)
                ack_ms = (time.perf_counter() - started) * 1000
                say(f"  (acknowledged in {ack_ms:.0f} ms, HTTP {response.status_code})")
                if response.content:
                    show(PostedMessage("ack", None, response.json()))
                else:
                    try:
                        await slack.wait_for_messages(seen + 1, timeout=15)
                        show(slack.messages[seen])
                    except TimeoutError:
                        failures += 1
                        say("  (no message arrived)")
                say()
            card = next((m for m in slack.messages if m.via == "chat.postMessage"), None)
            if card is not None:
                say(f"{len(SCRIPT) + 1}. Someone presses Refresh on the first card")
                seen = len(slack.messages)
                await stack.click(http, "task_refresh", sim.SEED_TASK_ID, message_ts=card.ts)
                await slack.wait_for(lambda messages: len(messages) > seen, timeout=15)
                show(slack.messages[seen])
                say()
            say("Done. Every request above was signed and sent over a real socket." if not failures else "")
            return 1 if failures else 0
