"""The engine behind the listeners: turn a parsed command into a reply and deliver it.

Listeners parse and ack; everything that talks to MetaStudio or posts to Slack lives here, so
the same code serves slash commands, buttons, the demo and the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import cards, messages
from bot.commands import Command, Help, Invalid, Recent, ShowTask
from bot.config import ConfigError, Settings
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError, NotConfigured
from bot.metrics import COMMANDS, SLACK_API_ERRORS

log = logging.getLogger("taskbot.engine")

# Errors after which the bot cannot post in the channel but the command's response_url still can.
CANNOT_POST_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})


def slack_retry_handlers() -> list[AsyncRetryHandler]:
    """Slack rate limits and dropped connections are retried by slack_sdk itself."""
    return [AsyncRateLimitErrorRetryHandler(max_retry_count=3), AsyncConnectionErrorRetryHandler(max_retry_count=2)]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from and how to answer it."""

    team_id: str | None
    channel_id: str | None
    user_id: str | None
    response_url: str | None = None


@dataclass(slots=True)
class Reply:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = True
    request_id: str | None = None
    task_id: str | None = None
    public: bool = True

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


class AckFirst:
    """Lets pending acks go before follow-up work when a burst of requests arrives.

    The HTTP route counts requests that have not been answered yet; follow-up work (cloud
    calls, posting cards) waits until that count is zero, or at most ``max_wait`` seconds so a
    steady stream of requests cannot starve it. One event loop serves both, so without this a
    burst of 200 commands interleaves 200 cloud calls with the acks Slack is waiting for.
    """

    def __init__(self, max_wait: float = 0.25) -> None:
        self.max_wait = max_wait
        self._pending = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    def __enter__(self) -> None:
        self._pending += 1
        self._quiet.clear()

    def __exit__(self, *exc: object) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._quiet.set()

    async def wait(self) -> None:
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self.max_wait)


class Engine:
    def __init__(self, settings: Settings, metastudio: MetaStudioClient | None = None) -> None:
        self.settings = settings
        self._metastudio = metastudio
        self._config_problem: str | None = None
        # Commands still being answered; shutdown waits for them so no user is left without a reply.
        self._inflight: set[asyncio.Task[Any]] = set()
        self.ack_first = AckFirst()

    async def start(self) -> None:
        if self._metastudio is None:
            try:
                self._metastudio = MetaStudioClient.from_settings(self.settings)
            except ConfigError as exc:
                # Serve anyway: /task answers with a clear sentence instead of the process dying.
                self._config_problem = str(exc)
                log.warning("MetaStudio is not configured: %s", exc)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run work after the ack, in the background; shutdown waits for it."""
        task = asyncio.create_task(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def close(self, timeout: float = 10.0) -> None:
        pending = self._inflight - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        if self._metastudio is not None:
            await self._metastudio.aclose()

    def metastudio_for(self, team_id: str | None) -> MetaStudioClient:
        if self._metastudio is None:
            raise NotConfigured(self._config_problem or "no MetaStudio client")
        return self._metastudio

    # -- replies ----------------------------------------------------------------------------
    @staticmethod
    def needs_cloud(command: Command) -> bool:
        return not isinstance(command, Help | Invalid)

    @staticmethod
    def immediate_reply(command: Command) -> Reply | None:
        """A reply that needs no cloud call (help, parse errors): it can go in the ack itself."""
        if isinstance(command, Help):
            COMMANDS.labels("help", "ok").inc()
            return Reply(text=messages.text("usage"), public=False)
        if isinstance(command, Invalid):
            COMMANDS.labels("invalid", "rejected").inc()
            return Reply(text=f"{command.message}\n{messages.text('usage')}", ok=False, public=False)
        return None

    async def task_reply(self, task_id: str, origin: Origin) -> Reply:
        try:
            fetched = await self.metastudio_for(origin.team_id).get_task(task_id)
        except MetaStudioError as exc:
            return self._error_reply(exc, task_id=task_id)
        task = fetched.value
        return Reply(
            text=cards.card_text(task, self.settings.finished_codes),
            blocks=cards.task_card(task, request_id=fetched.request_id, finished_codes=self.settings.finished_codes),
            request_id=fetched.request_id,
            task_id=task_id,
        )

    async def recent_reply(self, resources: tuple[str, ...], origin: Origin) -> Reply:
        try:
            fetched = await self.metastudio_for(origin.team_id).list_tasks(resources=resources, limit=10)
        except MetaStudioError as exc:
            return self._error_reply(exc)
        resource = ",".join(resources) or None
        header = (
            messages.text("recent_header_resource", resource=cards.escape(resource))
            if resource
            else messages.text("recent_header")
        )
        return Reply(
            text=header,
            blocks=cards.recent_list(
                fetched.value, resource=resource, finished_codes=self.settings.finished_codes, request_id=fetched.request_id
            ),
            request_id=fetched.request_id,
            public=False,
        )

    def _error_reply(self, exc: MetaStudioError, *, task_id: str | None = None) -> Reply:
        log.info("MetaStudio call failed: %s", exc, extra={"task_id": task_id, "request_id": exc.request_id})
        return Reply(
            text=exc.user_message,
            blocks=cards.error_blocks(exc.user_message, request_id=exc.request_id),
            ok=False,
            request_id=exc.request_id,
            task_id=task_id,
            public=False,
        )

    # -- whole commands ---------------------------------------------------------------------
    async def run_command(self, command: Command, origin: Origin, client: AsyncWebClient) -> Reply:
        """Answer a command that needs the cloud: fetch, then post where the channel sees it."""
        started = time.perf_counter()
        name = type(command).__name__.lower()
        await self.ack_first.wait()
        reply: Reply
        try:
            if isinstance(command, ShowTask):
                reply = await self.task_reply(command.task_id, origin)
            elif isinstance(command, Recent):
                reply = await self.recent_reply(command.resources, origin)
            else:
                reply = self.immediate_reply(command) or Reply(text=messages.text("usage"), public=False)
            await self.deliver(reply, origin, client)
        except Exception:
            # The last line of defence: the user gets a sentence, the log gets the details.
            log.exception("command failed", extra={"team": origin.team_id, "command": name})
            reply = Reply(text=messages.text("error_unexpected"), ok=False, public=False)
            await self._respond(origin, reply)
        outcome = "ok" if reply.ok else "error"
        COMMANDS.labels(name, outcome).inc()
        log.info(
            "command handled",
            extra={
                "team": origin.team_id,
                "command": name,
                "task_id": reply.task_id,
                "request_id": reply.request_id,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                "outcome": outcome,
            },
        )
        return reply

    async def deliver(self, reply: Reply, origin: Origin, client: AsyncWebClient) -> None:
        """Public replies go in the channel; where the bot may not post, through response_url."""
        if not reply.public or not origin.channel_id:
            await self._respond(origin, reply)
            return
        try:
            await client.chat_postMessage(channel=origin.channel_id, text=reply.text, blocks=reply.blocks)
            return
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            SLACK_API_ERRORS.labels("chat.postMessage", error).inc()
            if error not in CANNOT_POST_ERRORS:
                log.warning("chat.postMessage failed: %s", error, extra={"team": origin.team_id})
                await self._respond(origin, Reply(text=messages.text("error_slack"), ok=False, public=False))
                return
        await self._respond(origin, reply, in_channel=True)

    async def _respond(
        self, origin: Origin, reply: Reply, *, in_channel: bool = False, replace_original: bool = False
    ) -> None:
        if not origin.response_url:
            return
        response_type = "in_channel" if in_channel else "ephemeral"
        try:
            response = await AsyncWebhookClient(origin.response_url).send(
                text=reply.text,
                blocks=reply.blocks or None,
                response_type=None if replace_original else response_type,
                replace_original=replace_original or None,
            )
        except Exception as exc:  # network errors must not escape a background listener
            SLACK_API_ERRORS.labels("response_url", type(exc).__name__).inc()
            log.warning("response_url post failed: %s", type(exc).__name__, extra={"team": origin.team_id})
            return
        if response.status_code != 200:
            SLACK_API_ERRORS.labels("response_url", str(response.status_code)).inc()
            log.warning("response_url post answered %s", response.status_code, extra={"team": origin.team_id})

    async def refresh(
        self, task_id: str, origin: Origin, client: AsyncWebClient, *, message_ts: str | None
    ) -> Reply:
        """Redraw a card in place: chat.update for the bot's own message, else replace via response_url."""
        await self.ack_first.wait()
        reply = await self.task_reply(task_id, origin)
        if not reply.ok:
            await self._respond(origin, reply)
            return reply
        if message_ts and origin.channel_id:
            try:
                await client.chat_update(
                    channel=origin.channel_id, ts=message_ts, text=reply.text, blocks=reply.blocks
                )
                return reply
            except SlackApiError as exc:
                SLACK_API_ERRORS.labels("chat.update", str(exc.response.get("error", "unknown"))).inc()
        await self._respond(origin, reply, replace_original=True)
        return reply
