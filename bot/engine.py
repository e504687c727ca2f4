"""The engine behind the listeners: turn a parsed command into a reply and deliver it.

Listeners parse and ack; everything that talks to MetaStudio, the database or Slack lives
here, so the same code serves slash commands, buttons, App Home, the demo and the scheduler.
The engine is also the composition root: it owns storage, the follow-up scheduler, the
MetaStudio clients (one per workspace) and the Slack clients used outside a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import alerts, cards, messages
from bot.admin import WorkspaceAdmin
from bot.commands import (
    Command,
    Help,
    Invalid,
    Recent,
    ShowTask,
    Subscribe,
    Unsubscribe,
    Unwatch,
    Watch,
    Watching,
)
from bot.config import ConfigError, Settings
from bot.crypto import SecretBox
from bot.followups import FollowUps
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError, NotConfigured
from bot.metastudio.models import Task
from bot.metrics import COMMANDS, SLACK_API_ERRORS
from bot.ratelimit import Priority
from bot.schema import ensure_schema
from bot.storage import Storage
from bot.workspaces import WorkspaceStore

log = logging.getLogger("taskbot.engine")

# Errors after which the bot cannot post in the channel but the command's response_url still can.
CANNOT_POST_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
# Token rotation refreshes a bot token this long before it expires (Bolt's default too).
TOKEN_REFRESH_MINUTES = 120
BOT_SCOPES = ("commands", "chat:write", "channels:history", "groups:history", "users:read", "usergroups:read")


def slack_retry_handlers() -> list[AsyncRetryHandler]:
    """Slack rate limits and dropped connections are retried by slack_sdk itself."""
    return [AsyncRateLimitErrorRetryHandler(max_retry_count=3), AsyncConnectionErrorRetryHandler(max_retry_count=2)]


def delivery_retry_handlers() -> list[AsyncRetryHandler]:
    """For alerts only rate limits are retried in place: a connection retry could post twice
    behind the back of the exactly-once protocol, which handles those failures itself."""
    return [AsyncRateLimitErrorRetryHandler(max_retry_count=5)]


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
    replace_original: bool = False
    # The workspace has no MetaStudio connection: the wording depends on who asks.
    needs_connection: bool = False


def _private(text: str, *, ok: bool = True, blocks: list[dict[str, Any]] | None = None) -> Reply:
    return Reply(text=text, blocks=blocks or [], ok=ok, public=False)


class AckFirst:
    """Lets pending acks go before follow-up work when a burst of requests arrives.

    The HTTP route counts requests that have not been answered yet; background work (cloud
    calls, posting cards, polls, alerts) waits until that count is zero, or at most
    ``max_wait`` seconds so a steady stream of requests cannot starve it. One event loop
    serves both, so without this a burst of 200 commands interleaves 200 cloud calls with the
    acks Slack is waiting for. ``max_wait`` must outlast a whole burst: at 0.25 s, a burst
    that took longer released its 200 cloud calls into the acks still queued, and ack p99
    was 500 to 716 ms in 3 runs of 7 instead of 73 to 120 ms (BENCHMARKS.md).
    """

    def __init__(self, max_wait: float = 2.0) -> None:
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
        self.storage = Storage(settings.database_url)
        self.workspaces: WorkspaceStore | None = None
        self.installation_store: AsyncSQLAlchemyInstallationStore | None = None
        self.state_store: AsyncSQLAlchemyOAuthStateStore | None = None
        if settings.multi_workspace:
            key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
            self.workspaces = WorkspaceStore(self.storage.engine, SecretBox.from_setting(key))
            client_id = settings.slack_client_id or ""
            self.installation_store = AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=self.storage.engine)
            self.state_store = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=self.storage.engine)
        self._env_metastudio = metastudio
        self._team_metastudio: dict[str, MetaStudioClient] = {}
        self._config_problem: str | None = None
        self._slack_clients: dict[str, AsyncWebClient] = {}
        self._rotation_locks: dict[str, asyncio.Lock] = {}
        self.slack_session: aiohttp.ClientSession | None = None
        self.ack_first = AckFirst()
        self.followups = FollowUps(
            settings,
            self.storage,
            metastudio_for=self.metastudio_for,
            slack_for=self.slack_for,
            yield_to_requests=self.ack_first.wait,
        )
        # Work still running after its ack; shutdown waits for it so no user is left without a reply.
        self._inflight: set[asyncio.Task[Any]] = set()
        self.admin = WorkspaceAdmin(self)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        self.slack_session = aiohttp.ClientSession()
        # Alembic owns every table, slack_sdk's included (bot/migrations); never create_all() here.
        await ensure_schema(self.storage.engine, migrate_on_start=self.settings.migrate_on_start)
        if not self.settings.multi_workspace and self._env_metastudio is None:
            try:
                self._env_metastudio = MetaStudioClient.from_settings(self.settings)
            except ConfigError as exc:
                # Serve anyway: /task answers with a clear sentence instead of the process dying.
                self._config_problem = str(exc)
                log.warning("MetaStudio is not configured: %s", exc)
        await self.followups.start()

    async def close(self, timeout: float = 10.0) -> None:
        pending = self._inflight - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        await self.followups.stop()
        for client in [self._env_metastudio, *self._team_metastudio.values()]:
            if client is not None:
                await client.aclose()
        self._team_metastudio.clear()
        if self.slack_session is not None:
            await self.slack_session.close()
        await self.storage.dispose()

    def spawn(self, work: Coroutine[Any, Any, Any], *, reply_to: Origin | None = None) -> None:
        """Run work after the ack, in the background; shutdown waits for it.

        Nothing escapes: a failure is logged (redacted, with its traceback) and, when the work
        answers someone, they get one sentence instead of silence.
        """
        task = asyncio.create_task(self._guarded(work, reply_to))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _guarded(self, work: Coroutine[Any, Any, Any], reply_to: Origin | None) -> None:
        try:
            await work
        except Exception:
            team = reply_to.team_id if reply_to else None
            log.exception("background work %s failed", getattr(work, "__qualname__", "?"), extra={"team": team})
            if reply_to is not None:
                await self.respond(reply_to, _private(messages.text("error_internal"), ok=False))

    # -- clients ----------------------------------------------------------------------------
    async def metastudio_for(self, team_id: str | None) -> MetaStudioClient:
        """The MetaStudio client of a workspace: the environment's, or the one its admin connected."""
        if self.workspaces is None:
            if self._env_metastudio is None:
                raise NotConfigured(self._config_problem or "no MetaStudio client")
            return self._env_metastudio
        if not team_id:
            raise NotConfigured("request without a workspace")
        client = self._team_metastudio.get(team_id)
        if client is None:
            credentials = await self.workspaces.credentials(team_id)
            endpoints = await self.workspaces.endpoint_for(team_id)
            if credentials is None or endpoints is None:
                raise NotConfigured("workspace has no MetaStudio connection")
            client = MetaStudioClient(
                endpoint=endpoints[0],
                iam_endpoint=endpoints[1],
                credentials=credentials,
                connect_timeout=self.settings.connect_timeout,
                read_timeout=self.settings.read_timeout,
                max_retries=self.settings.max_retries,
            )
            self._team_metastudio[team_id] = client
        return client

    async def connection_changed(self, team_id: str) -> None:
        """Forget a workspace's client after its admin changed the connection."""
        client = self._team_metastudio.pop(team_id, None)
        if client is not None:
            await client.aclose()

    def _web_client(self, token: str | None, *, for_delivery: bool = False) -> AsyncWebClient:
        kwargs: dict[str, Any] = {
            "token": token,
            "retry_handlers": delivery_retry_handlers() if for_delivery else slack_retry_handlers(),
            "session": self.slack_session,
        }
        if self.settings.slack_api_url:
            kwargs["base_url"] = self.settings.slack_api_url.rstrip("/") + "/"
        return AsyncWebClient(**kwargs)

    async def slack_for(self, team_id: str) -> AsyncWebClient:
        """A Slack client for work outside a request (alerts, live cards), with a fresh token.

        Bolt refreshes rotating tokens only for incoming requests; a scheduled alert may run
        hours later, so it refreshes an expiring token here first, one refresh per workspace
        at a time because each refresh token is single-use.
        """
        if self.installation_store is None:
            token = self.settings.slack_bot_token.get_secret_value() if self.settings.slack_bot_token else None
            return self._slack_clients.setdefault("", self._web_client(token, for_delivery=True))
        lock = self._rotation_locks.setdefault(team_id, asyncio.Lock())
        async with lock:
            installation = await self.installation_store.async_find_installation(enterprise_id=None, team_id=team_id)
            if installation is None or not installation.bot_token:
                raise NotConfigured("workspace is not installed")
            if installation.bot_refresh_token and self.settings.slack_client_secret is not None:
                rotator = AsyncTokenRotator(
                    client_id=self.settings.slack_client_id or "",
                    client_secret=self.settings.slack_client_secret.get_secret_value(),
                    client=self._web_client(None),
                )
                refreshed = await rotator.perform_token_rotation(
                    installation=installation, minutes_before_expiration=TOKEN_REFRESH_MINUTES
                )
                if refreshed is not None:
                    await self.installation_store.async_save(refreshed)
                    installation = refreshed
            token = installation.bot_token
            cached = self._slack_clients.get(team_id)
            if cached is None or cached.token != token:
                cached = self._web_client(token, for_delivery=True)
                self._slack_clients[team_id] = cached
            return cached

    async def forget_workspace(self, team_id: str) -> None:
        """Uninstall: remove everything of that workspace (installation, credentials, watches)."""
        if self.installation_store is not None:
            await self.installation_store.async_delete_all(enterprise_id=None, team_id=team_id)
        if self.workspaces is not None:
            await self.workspaces.delete_team(team_id)
        await self.followups.forget_team(team_id)
        await self.storage.delete_team(team_id)
        await self.connection_changed(team_id)
        self._slack_clients.pop(team_id, None)

    # -- replies ----------------------------------------------------------------------------
    @staticmethod
    def immediate_reply(command: Command) -> Reply | None:
        """A reply that needs no cloud call (help, parse errors): it can go in the ack itself."""
        if isinstance(command, Help):
            COMMANDS.labels("help", "ok").inc()
            return _private(messages.text("usage"))
        if isinstance(command, Invalid):
            COMMANDS.labels("invalid", "rejected").inc()
            return _private(f"{command.message}\n{messages.text('usage')}", ok=False)
        return None

    async def _fetch_task(self, task_id: str, origin: Origin) -> tuple[Task, str | None]:
        client = await self.metastudio_for(origin.team_id)
        await self.followups.limiter_for(origin.team_id or "").acquire(Priority.COMMAND)
        try:
            fetched = await client.get_task(task_id)
        except MetaStudioError as exc:
            await self._record_call(origin, exc)
            raise
        await self._record_call(origin, None)
        return fetched.value, fetched.request_id

    async def _record_call(self, origin: Origin, error: MetaStudioError | None) -> None:
        if self.workspaces is not None and origin.team_id and not isinstance(error, NotConfigured):
            await self.workspaces.record_call(
                origin.team_id, ok=error is None, error=error.user_message if error is not None else None
            )

    async def task_reply(self, task_id: str, origin: Origin) -> Reply:
        try:
            task, request_id = await self._fetch_task(task_id, origin)
        except MetaStudioError as exc:
            return self._error_reply(exc, task_id=task_id)
        codes = self.settings.finished_codes
        return Reply(
            text=cards.card_text(task, codes),
            blocks=cards.task_card(task, request_id=request_id, finished_codes=codes, watch_button=True),
            request_id=request_id,
            task_id=task_id,
        )

    async def recent_reply(self, resources: tuple[str, ...], origin: Origin) -> Reply:
        try:
            client = await self.metastudio_for(origin.team_id)
            await self.followups.limiter_for(origin.team_id or "").acquire(Priority.COMMAND)
            fetched = await client.list_tasks(resources=resources, limit=10)
        except MetaStudioError as exc:
            await self._record_call(origin, exc)
            return self._error_reply(exc)
        await self._record_call(origin, None)
        resource = ",".join(resources) or None
        header = (
            messages.text("recent_header_resource", resource=cards.escape(resource))
            if resource
            else messages.text("recent_header")
        )
        blocks = cards.recent_list(
            fetched.value, resource=resource, finished_codes=self.settings.finished_codes, request_id=fetched.request_id
        )
        return Reply(text=header, blocks=blocks, request_id=fetched.request_id, public=False)

    def _error_reply(self, exc: MetaStudioError, *, task_id: str | None = None) -> Reply:
        log.info("MetaStudio call failed: %s", exc, extra={"task_id": task_id, "request_id": exc.request_id})
        needs_connection = isinstance(exc, NotConfigured) and self.settings.multi_workspace
        message = messages.text("not_connected_member") if needs_connection else exc.user_message
        return Reply(
            text=message,
            blocks=cards.error_blocks(message, request_id=exc.request_id),
            ok=False,
            request_id=exc.request_id,
            task_id=task_id,
            public=False,
            needs_connection=needs_connection,
        )

    async def is_admin(self, client: AsyncWebClient, user_id: str | None) -> bool:
        """Workspace admins and owners may configure taskbot (users.info says who they are)."""
        if not user_id:
            return False
        try:
            user = (await client.users_info(user=user_id)).get("user") or {}
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("users.info", str(exc.response.get("error"))).inc()
            return False
        return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))

    # -- follow-ups -------------------------------------------------------------------------
    async def watch_reply(self, task_id: str, origin: Origin, *, message_ts: str | None = None) -> Reply:
        try:
            task, _ = await self._fetch_task(task_id, origin)
        except MetaStudioError as exc:
            return self._error_reply(exc, task_id=task_id)
        name = cards.escape(cards.clean(task.task_name or task_id))
        if task.is_finished(self.settings.finished_codes):
            return _private(messages.text("watch_already_finished", name=name))
        result = await self.followups.watch(
            team_id=origin.team_id or "",
            task_id=task_id,
            channel_id=origin.channel_id or "",
            user_id=origin.user_id or "",
            message_ts=message_ts,
        )
        key = "watch_started" if result.created else "watch_already"
        return _private(messages.text(key, name=name, hours=f"{self.settings.watch_max_hours:g}"))

    async def unwatch_reply(self, task_id: str, origin: Origin) -> Reply:
        stopped = await self.followups.unwatch(
            team_id=origin.team_id or "", task_id=task_id, channel_id=origin.channel_id or ""
        )
        return _private(messages.text("unwatch_done" if stopped else "unwatch_none", task_id=task_id))

    async def watching_reply(self, origin: Origin) -> Reply:
        watches, feed = await self.followups.watching(team_id=origin.team_id or "", channel_id=origin.channel_id or "")
        listing = alerts.watching_list(watches, feed)
        return _private(listing.text, blocks=listing.blocks)

    async def subscribe_reply(self, resources: tuple[str, ...], origin: Origin) -> Reply:
        try:
            await self.metastudio_for(origin.team_id)
        except MetaStudioError as exc:
            return self._error_reply(exc)
        _, created = await self.followups.subscribe(
            team_id=origin.team_id or "",
            channel_id=origin.channel_id or "",
            user_id=origin.user_id or "",
            resources=resources,
        )
        scope = (
            ", ".join(f"`{cards.escape(cards.clean(r))}`" for r in resources)
            if resources
            else messages.text("subscribe_scope_all")
        )
        return _private(messages.text("subscribe_started" if created else "subscribe_updated", scope=scope))

    async def unsubscribe_reply(self, origin: Origin) -> Reply:
        stopped = await self.followups.unsubscribe(team_id=origin.team_id or "", channel_id=origin.channel_id or "")
        return _private(messages.text("unsubscribe_done" if stopped else "unsubscribe_none"))

    # -- whole commands ---------------------------------------------------------------------
    async def _reply_for(self, command: Command, origin: Origin) -> Reply:
        if isinstance(command, ShowTask):
            return await self.task_reply(command.task_id, origin)
        if isinstance(command, Recent):
            return await self.recent_reply(command.resources, origin)
        if isinstance(command, Watch):
            return await self.watch_reply(command.task_id, origin)
        if isinstance(command, Unwatch):
            return await self.unwatch_reply(command.task_id, origin)
        if isinstance(command, Watching):
            return await self.watching_reply(origin)
        if isinstance(command, Subscribe):
            return await self.subscribe_reply(command.resources, origin)
        if isinstance(command, Unsubscribe):
            return await self.unsubscribe_reply(origin)
        return self.immediate_reply(command) or _private(messages.text("usage"))

    async def guardrail_refusal(self, origin: Origin, client: AsyncWebClient) -> str | None:
        """The sentence that refuses this user or channel, or None when /task is allowed here."""
        if self.workspaces is None or not origin.team_id:
            return None
        rules = await self.workspaces.get_guardrails(origin.team_id)
        if rules.unrestricted:
            return None
        if rules.channels and origin.channel_id not in rules.channels:
            listed = ", ".join(f"<#{channel}>" for channel in rules.channels[:10])
            return messages.text("guardrails_denied_channel", channels=listed)
        if rules.usergroup_id:
            try:
                members = (await client.usergroups_users_list(usergroup=rules.usergroup_id)).get("users") or []
            except SlackApiError as exc:
                SLACK_API_ERRORS.labels("usergroups.users.list", str(exc.response.get("error"))).inc()
                members = []
            if origin.user_id not in members:
                return messages.text("guardrails_denied_usergroup", group=f"<!subteam^{rules.usergroup_id}>")
        return None

    async def run_command(self, command: Command, origin: Origin, client: AsyncWebClient) -> Reply:
        """Answer a command that needs the cloud or the database, then deliver the reply."""
        await self.ack_first.wait()
        started = time.perf_counter()
        name = type(command).__name__.lower()
        reply: Reply
        try:
            refusal = await self.guardrail_refusal(origin, client)
            reply = _private(refusal, ok=False) if refusal else await self._reply_for(command, origin)
            if reply.needs_connection and await self.is_admin(client, origin.user_id):
                reply = _private(messages.text("not_connected_admin"), ok=False)
            await self.deliver(reply, origin, client)
        except Exception:
            # The last line of defence: the user gets a sentence, the log gets the details.
            log.exception("command failed", extra={"team": origin.team_id, "command": name})
            reply = _private(messages.text("error_internal"), ok=False)
            await self.respond(origin, reply)
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
            await self.respond(origin, reply)
            return
        try:
            await client.chat_postMessage(channel=origin.channel_id, text=reply.text, blocks=reply.blocks)
            return
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown"))
            SLACK_API_ERRORS.labels("chat.postMessage", error).inc()
            if error not in CANNOT_POST_ERRORS:
                log.warning("chat.postMessage failed: %s", error, extra={"team": origin.team_id})
                await self.respond(origin, _private(messages.text("error_slack"), ok=False))
                return
        await self.respond(origin, reply, in_channel=True)

    async def respond(self, origin: Origin, reply: Reply, *, in_channel: bool = False) -> None:
        if not origin.response_url:
            return
        try:
            response = await AsyncWebhookClient(origin.response_url, session=self.slack_session).send(
                text=reply.text,
                blocks=reply.blocks or None,
                response_type=None if reply.replace_original else ("in_channel" if in_channel else "ephemeral"),
                replace_original=True if reply.replace_original else None,
            )
        except Exception as exc:  # network errors must not escape background work
            SLACK_API_ERRORS.labels("response_url", type(exc).__name__).inc()
            log.warning("response_url post failed: %s", type(exc).__name__, extra={"team": origin.team_id})
            return
        if response.status_code != 200:
            SLACK_API_ERRORS.labels("response_url", str(response.status_code)).inc()
            log.warning("response_url post answered %s", response.status_code, extra={"team": origin.team_id})

    # -- buttons ----------------------------------------------------------------------------
    async def refresh(self, task_id: str, origin: Origin, client: AsyncWebClient, *, message_ts: str | None) -> Reply:
        """Redraw a card in place: chat.update for the bot's own message, else replace via response_url."""
        await self.ack_first.wait()
        # A card stays in the channel after an admin limits /task; its buttons must obey the limit too.
        refusal = await self.guardrail_refusal(origin, client)
        reply = _private(refusal, ok=False) if refusal else await self.task_reply(task_id, origin)
        if not reply.ok:
            await self.respond(origin, reply)
            return reply
        if message_ts and origin.channel_id:
            try:
                await client.chat_update(channel=origin.channel_id, ts=message_ts, text=reply.text, blocks=reply.blocks)
                return reply
            except SlackApiError as exc:
                SLACK_API_ERRORS.labels("chat.update", str(exc.response.get("error", "unknown"))).inc()
        reply.replace_original = True
        await self.respond(origin, reply)
        return reply

    async def watch_button(
        self, task_id: str, origin: Origin, client: AsyncWebClient, *, message_ts: str | None
    ) -> None:
        """"Notify this channel when done" on a card: the alert threads under that card."""
        await self.ack_first.wait()
        refusal = await self.guardrail_refusal(origin, client)
        reply = _private(refusal, ok=False) if refusal else await self.watch_reply(task_id, origin, message_ts=message_ts)
        await self.respond(origin, reply)

    async def stop_button(self, origin: Origin, *, task_id: str | None) -> None:
        """Stop on the watching list: end that watch (or the feed) and redraw the list."""
        await self.ack_first.wait()
        if task_id is None:
            await self.followups.unsubscribe(team_id=origin.team_id or "", channel_id=origin.channel_id or "")
        else:
            await self.followups.unwatch(team_id=origin.team_id or "", task_id=task_id, channel_id=origin.channel_id or "")
        listing = await self.watching_reply(origin)
        listing.replace_original = True
        await self.respond(origin, listing)
