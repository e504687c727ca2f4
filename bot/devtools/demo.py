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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import httpx
from pydantic import SecretStr
from sqlalchemy import update

from bot import logs
from bot.app import Runtime, create_asgi
from bot.config import Settings
from bot.db.digests import DigestRow
from bot.devtools import simulator as sim
from bot.devtools.render import render_message
from bot.devtools.slack_standin import DEMO_BOT_TOKEN, DEMO_TEAM_ID, PostedMessage, SlackStandIn
from bot.devtools.slack_steps import Completion
from bot.followups.watches import STALL_KEY_PREFIX
from bot.servers import serve_asgi
from bot.slack.ids import ACTION_WATCH, DELIVERY_EVENT, GET_TASK, WAIT_FOR_TASK

PUBLIC_CHANNEL = "C0DEMO0001"
PRIVATE_CHANNEL = "G0PRIVATE1"
# The watched task of the demo: added when its step starts, so it finishes during the demo
# however long the steps before it took.
WATCHED_TASK_ID = "0b5e55ed0b5e55ed0b5e55ed0b5e55ed"
WATCHED_TASK_SECONDS = 4.0
# It stalls this long, soon after the watch starts, so the demo shows a stall notice and the
# card marking it; the stall threshold is short to match (the default is 30 min).
WATCHED_STALL_SECONDS = 6.0
DEMO_STALL_MINUTES = 0.03
# Follow-up timers of the demo: short, so a watch plays out in seconds (the defaults are 10 s).
DEMO_POLL_SECONDS = 1.0
DEMO_CARD_UPDATE_SECONDS = 1.0
# Two readers of the same channel: the stand-in's users.info gives each their Slack locale.
DEMO_USERS = {"U0DEMOUSER": "en-US", "U0DEMOZH01": "zh-CN"}


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
    runtime: Runtime

    async def command(
        self,
        http: httpx.AsyncClient,
        text: str,
        *,
        channel_id: str = PUBLIC_CHANNEL,
        user_id: str = "U0DEMOUSER",
    ) -> httpx.Response:
        body, headers = self.slack.slash_command(
            self.signing_secret, text, channel_id=channel_id, user_id=user_id
        )
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

    async def step(
        self, http: httpx.AsyncClient, callback_id: str, inputs: dict[str, Any]
    ) -> tuple[httpx.Response, str]:
        """Run a workflow step: a signed ``function_executed`` event; the response and execution id."""
        body, headers, execution_id = self.slack.function_executed(self.signing_secret, callback_id, inputs)
        response = await http.post(f"{self.bot_url}/slack/events", content=body, headers=headers)
        return response, execution_id


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
        # Only what is given here: a .env in the working folder is for `taskbot serve`, not the demo.
        settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]  # pydantic-settings init option
        runtime = Runtime(settings)
        async with serve_asgi(create_asgi(settings, runtime)) as bot_url:
            yield LocalStack(simulator, slack, settings, bot_url, signing_secret, runtime)


def is_alert(message: PostedMessage) -> bool:
    """A follow-up message (completion alert or a notice ending a watch), known by its metadata."""
    metadata = message.payload.get("metadata") or {}
    key = str((metadata.get("event_payload") or {}).get("key", ""))
    # Stall notices carry the same metadata (the Poster tags every post) but are not alerts.
    return (
        message.via == "chat.postMessage"
        and metadata.get("event_type") == DELIVERY_EVENT
        and not key.startswith(STALL_KEY_PREFIX)
    )


def watched_task(now: float) -> sim.SimTask:
    """An import that is a quarter done now, stalls for ``WATCHED_STALL_SECONDS`` two seconds
    later, and finishes ``WATCHED_TASK_SECONDS`` of progress (plus the stall) later."""
    started = now - WATCHED_TASK_SECONDS / 3
    return sim.SimTask(
        stall_at_seconds=WATCHED_TASK_SECONDS / 3 + 2.0,
        stall_seconds=WATCHED_STALL_SECONDS,
        task_id=WATCHED_TASK_ID,
        task_name="Import of 6,000 FAQ pairs",
        resource="knowledge-intent-question-create",
        total_count=6000,
        duration_seconds=WATCHED_TASK_SECONDS * 4 / 3 + WATCHED_STALL_SECONDS,
        begin_time_ms=round(started * 1000),
        failure_rate=0.005,
    )


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
        async with (
            demo_stack(
                Path(workdir),
                poll_seconds=DEMO_POLL_SECONDS,
                card_update_seconds=DEMO_CARD_UPDATE_SECONDS,
                stall_minutes=DEMO_STALL_MINUTES,
            ) as stack,
            httpx.AsyncClient() as http,
        ):
            slack = stack.slack
            scene = _Scene(stack, http, say, show)
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
                elif not await scene.show_next(seen):
                    failures += 1
                say()
            card = next((m for m in slack.messages if m.via == "chat.postMessage"), None)
            if card is not None:
                say(f"{len(SCRIPT) + 1}. Someone presses Refresh on the first card")
                seen = len(slack.messages)
                await stack.click(http, "task_refresh", sim.SEED_TASK_ID, message_ts=card.ts)
                await slack.wait_for(lambda messages: len(messages) > seen, timeout=15)
                show(slack.messages[seen])
                say()
            failures += await _languages_step(scene, len(SCRIPT) + 2)
            failures += await _watch_step(scene, len(SCRIPT) + 3)
            failures += await _workflow_step(scene, len(SCRIPT) + 6)
            failures += await _digest_step(scene, len(SCRIPT) + 8)
            say("Done. Every request above was signed and sent over a real socket." if not failures else "")
            return 1 if failures else 0


@dataclass
class _Scene:
    """What every step of the demo works with: the stack, one HTTP client, and the narration."""

    stack: LocalStack
    http: httpx.AsyncClient
    say: Callable[..., None]
    show: Callable[[PostedMessage], None]
    waiting_step: str | None = None
    """The execution id of the ``wait_for_task`` step started with the channel's watch."""

    async def show_next(self, seen: int) -> bool:
        """Show the message after the ``seen`` ones; False, said aloud, if none arrives within 15 s."""
        slack = self.stack.slack
        try:
            await slack.wait_for_messages(seen + 1, timeout=15)
        except TimeoutError:
            self.say("  (no message arrived)")
            return False
        self.show(slack.messages[seen])
        return True


async def _languages_step(scene: _Scene, number: int) -> int:
    """The same task for an English and a Chinese reader: one private reply each, one channel card."""
    stack, http, say = scene.stack, scene.http, scene.say
    slack = stack.slack
    slack.locales.update(DEMO_USERS)
    setting = stack.settings.channel_language
    say(f"{number}. The same task for two readers: {', '.join(f'{u} ({t})' for u, t in DEMO_USERS.items())}")
    missing = 0
    for user_id, tag in DEMO_USERS.items():
        say(f"   {user_id} ({tag}): /task watch {sim.SEED_TASK_ID}")
        seen = len(slack.messages)
        await stack.command(http, f"watch {sim.SEED_TASK_ID}", user_id=user_id)
        if not await scene.show_next(seen):
            missing += 1
    zh_user = next(u for u, t in DEMO_USERS.items() if t.startswith("zh"))
    say(
        f"   {zh_user}: /task {sim.SEED_TASK_ID}   (the card is for the channel; TASKBOT_CHANNEL_LANGUAGE={setting})"
    )
    seen = len(slack.messages)
    await stack.command(http, sim.SEED_TASK_ID, user_id=zh_user)
    if not await scene.show_next(seen):
        missing += 1
    say()
    return missing


async def _watch_step(scene: _Scene, number: int) -> int:
    """A task that finishes during the demo: its card, the watch button, live updates, the alert.

    Returns the number of things that did not arrive.
    """
    stack, http, say, show = scene.stack, scene.http, scene.say, scene.show
    slack = stack.slack
    stack.simulator.add_task(watched_task(time.time()))
    say(f"{number}. A running import: someone asks the channel to be told when it is done")
    say(f"   /task {WATCHED_TASK_ID}")
    seen = len(slack.messages)
    await stack.command(http, WATCHED_TASK_ID)
    try:
        await slack.wait_for(lambda messages: len(messages) > seen, timeout=15)
    except TimeoutError:
        say("  (no card arrived)\n")
        return 1
    card = slack.messages[seen]
    show(card)
    say()
    say(f'{number + 1}. They press "Notify this channel when done" on that card')
    seen = len(slack.messages)
    await stack.click(http, ACTION_WATCH, WATCHED_TASK_ID, message_ts=card.ts)
    try:
        await slack.wait_for(lambda messages: len(messages) > seen, timeout=15)
    except TimeoutError:
        say("  (no confirmation arrived)\n")
        return 1
    show(slack.messages[seen])
    # A Workflow Builder step waits for the same task: the same watch, the same polls (shown last).
    _, scene.waiting_step = await stack.step(http, WAIT_FOR_TASK, {"task_id": WATCHED_TASK_ID})
    say()
    say(
        f"{number + 2}. The card updates in place while the task runs (ETA, rate, trend; it stalls "
        "for a while), then the alert arrives "
        f"(the demo polls every {DEMO_POLL_SECONDS:g} s; the default is 10 s)"
    )
    shown = len(slack.messages)

    def done(messages: list[PostedMessage]) -> bool:
        # Finished once the alert is out and the card was redrawn after it, in its final state.
        alert_at = next((i for i, m in enumerate(messages) if is_alert(m) and i >= seen), None)
        return alert_at is not None and any(
            m.via == "chat.update" and m.ts == card.ts for m in messages[alert_at + 1 :]
        )

    def more_than(count: int) -> Callable[[list[PostedMessage]], bool]:
        return lambda messages: len(messages) > count

    deadline = time.monotonic() + 15 + WATCHED_TASK_SECONDS + WATCHED_STALL_SECONDS
    while True:
        try:
            await slack.wait_for(more_than(shown), timeout=deadline - time.monotonic())
        except TimeoutError:
            say("  (the alert did not arrive)\n")
            return 1
        for message in slack.messages[shown:]:
            if is_alert(message):
                say("  The completion alert:")
            elif message.via == "chat.postMessage":
                say("  A stall notice, in the card's thread:")
            show(message)
            say()
        shown = len(slack.messages)
        if done(slack.messages):
            return 0


async def _workflow_step(scene: _Scene, number: int) -> int:
    """Workflow Builder steps: ``get_task`` answers at once; the ``wait_for_task`` started with
    the watch completed when the task finished. Returns the number that did not complete."""
    stack, http, say = scene.stack, scene.http, scene.say
    say(f"{number}. A Workflow Builder step reads a task (get_task {sim.SEED_TASK_ID})")
    _, execution = await stack.step(http, GET_TASK, {"task_id": sim.SEED_TASK_ID})
    missing = 0 if await _show_completion(scene, execution) else 1
    say()
    say(f"{number + 1}. The workflow that ran wait_for_task {WATCHED_TASK_ID} alongside the watch goes on")
    if scene.waiting_step is None or not await _show_completion(scene, scene.waiting_step):
        missing += 1
    say()
    return missing


async def _digest_step(scene: _Scene, number: int) -> int:
    """A channel sets a daily digest; its run is then made owed (the demo cannot wait for the hour,
    so the digest is dated back as if taskbot had been down at 09:00) and posted, marked late."""
    stack, http, say = scene.stack, scene.http, scene.say
    slack = stack.slack
    say(f"{number}. The channel asks for a daily summary of finished tasks")
    say("   /task digest daily 09:00")
    seen = len(slack.messages)
    await stack.command(http, "digest daily 09:00")
    missing = 0 if await scene.show_next(seen) else 1
    say()
    say(
        f"{number + 1}. Its hour comes (the demo dates the digest back, as if taskbot had been down at 09:00)"
    )
    digests = stack.runtime.followups.digests
    digest = await digests.store.channel_digest(team_id=DEMO_TEAM_ID, channel_id=PUBLIC_CHANNEL)
    if digest is None:
        say("  (the digest was not saved)")
        return missing + 1
    async with stack.runtime.database.engine.begin() as conn:
        await conn.execute(
            update(DigestRow)
            .where(DigestRow.id == digest.id)
            .values(created_at=datetime.now(UTC) - timedelta(days=2))
        )
    seen = len(slack.messages)
    refreshed = await digests.store.get_digest(digest.id)
    assert refreshed is not None
    digests.sync_team(refreshed.team_id, [refreshed])
    if not await scene.show_next(seen):
        missing += 1
    say()
    return missing


async def _show_completion(scene: _Scene, execution: str) -> bool:
    slack = scene.stack.slack
    try:
        await slack.wait_for(lambda _: bool(slack.completions_of(execution)), timeout=15)
    except TimeoutError:
        scene.say("  (the step did not complete)")
        return False
    completion: Completion = slack.completions_of(execution)[0]
    token = "the event's own token" if completion.token != DEMO_BOT_TOKEN else "the workspace's bot token"
    scene.say(f"  ({completion.method}, with {token})")
    for name, value in (completion.outputs or {"error": completion.error}).items():
        scene.say(f"  │ {name}: {value}")
    return True
