"""The composition root and the app factory: build every part, give each its collaborators.

``Runtime`` wires the layers together (database, stores, clients, follow-ups, use cases) and
owns their start and stop; it holds no logic of its own. ``create_asgi`` is what uvicorn, the
demo and the tests run; the CLI runs the same Bolt app over Socket Mode when an app-level token
is configured. Listeners get the use cases they need from Bolt's context, by name.

One workspace (``SLACK_BOT_TOKEN``) or many (``SLACK_CLIENT_ID``): with a client id, Bolt's own
OAuth flow installs the app and slack_sdk's SQLAlchemy stores keep installations and OAuth
state in the same database as everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler, to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import handlers
from bot import messages
from bot.config import Settings
from bot.db.base import Database
from bot.db.crypto import SecretBox
from bot.db.departures import Departures
from bot.db.fleet import SeenEvents, rate_limiters
from bot.db.followups import FollowUpStore
from bot.db.installations import EncryptedInstallationStore
from bot.db.schema import ensure_schema
from bot.db.workspaces import WorkspaceStore
from bot.followups import FollowUps
from bot.metastudio.client import MetaStudioClient
from bot.metrics import count_statements
from bot.services.access import Access
from bot.services.admin import WorkspaceAdmin, WorkspaceLeaving
from bot.services.background import AckFirst, Background
from bot.services.commands import CommandRunner
from bot.services.connections import MetaStudioClients
from bot.services.follow import FollowCommands
from bot.services.languages import Languages
from bot.services.steps import WorkflowSteps
from bot.services.tasks import TaskViews
from bot.slack.clients import BOT_SCOPES, AuthorizationUnavailable, SlackClients, web_client
from bot.slack.delivery import Responder
from bot.slack.inbound import Refused, SlackRequestGate
from bot.slack.locales import LocaleResolver
from bot.slack.oauth import WorkspaceInstallFlow
from bot.slack.poster import SlackPoster

__all__ = ["Runtime", "create_asgi", "create_bolt_app", "health_routes", "running"]

log = logging.getLogger("taskbot.app")

# /readyz answers within this, database or not: a probe that hangs is a probe that times out.
READY_TIMEOUT = 2.0
# An event's duplicate check waits this long for the database before the event is handled
# unchecked; with the authorization's 2 s at most (bot/slack/clients.py) it stays inside
# Slack's 3 s.
SEEN_EVENT_DEADLINE = 0.5


def _plain(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


class Runtime:
    """Every long-lived part of one taskbot process, built from settings."""

    def __init__(self, settings: Settings, metastudio: MetaStudioClient | None = None) -> None:
        self.settings = settings
        self.database = Database(settings.database_url)
        # Database load per replica, for /metrics (BENCHMARKS.md "Several replicas").
        count_statements(self.database.engine)
        self.storage = FollowUpStore(self.database)
        self.seen_events = SeenEvents(self.database)
        self.workspaces: WorkspaceStore | None = None
        self.installation_store: EncryptedInstallationStore | None = None
        self.state_store: AsyncSQLAlchemyOAuthStateStore | None = None
        if settings.multi_workspace:
            key = _plain(settings.encryption_key)
            box = SecretBox.from_setting(key)
            self.workspaces = WorkspaceStore(self.database, box)
            engine = self.database.engine
            self.installation_store = EncryptedInstallationStore(
                client_id=settings.slack_client_id or "", engine=engine, box=box
            )
            self.state_store = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine)
        self.slack = SlackClients(settings, self.installation_store)
        self.responder = Responder(self.slack)
        self.metastudio = MetaStudioClients(settings, self.workspaces, env_client=metastudio)
        self.ack_first = AckFirst()
        self.authorize = self.slack.authorize(logging.getLogger("taskbot.bolt"))
        self.background = Background(self.responder)
        self.followups = FollowUps(
            settings,
            self.storage,
            metastudio_for=self.metastudio.for_team,
            poster=SlackPoster(self.slack.for_team),
            yield_to_requests=self.ack_first.wait,
            # Fleet-wide on PostgreSQL (bot/db/fleet.py): commands from any replica and polls together.
            limiters=rate_limiters(self.database, settings.api_rate),
        )
        # One per process: every listener shares its users.info cache (closed in close()).
        self.locales = LocaleResolver()
        self.access = Access(self.workspaces, self.locales)
        self.languages = Languages(settings, self.locales, self.workspaces)
        tasks = TaskViews(
            settings,
            metastudio_for=self.metastudio.for_team,
            limiter_for=self.followups.limiter_for,
            workspaces=self.workspaces,
            languages=self.languages,
        )
        follow = FollowCommands(
            settings,
            self.followups,
            tasks,
            metastudio_for=self.metastudio.for_team,
            languages=self.languages,
        )
        self.commands = CommandRunner(
            tasks=tasks,
            follow=follow,
            access=self.access,
            responder=self.responder,
            ack_first=self.ack_first,
            languages=self.languages,
        )
        self.steps = WorkflowSteps(
            settings, self.followups, tasks, access=self.access, languages=self.languages
        )
        self.admin: WorkspaceAdmin | None = None
        if self.workspaces is not None:
            self.admin = WorkspaceAdmin(
                settings,
                self.workspaces,
                storage=self.storage,
                installation_store=self.installation_store,
                access=self.access,
                metastudio=self.metastudio,
                languages=self.languages,
            )
        self.leaving = WorkspaceLeaving(
            departures=Departures(self.database),
            workspaces=self.workspaces,
            followups=self.followups,
            metastudio=self.metastudio,
            slack=self.slack,
        )

    async def start(self) -> None:
        await self.slack.open()
        # Alembic owns every table, slack_sdk's included (bot/db/migrations); never create_all() here.
        await ensure_schema(self.database.engine, migrate_on_start=self.settings.migrate_on_start)
        self.metastudio.open()
        # Uninstalls a crash or a failure left half done, before their watches are re-armed.
        await self.leaving.finish_pending()
        await self.followups.start()
        self.leaving.start_sweeping()

    async def close(self, timeout: float = 10.0) -> None:
        await self.background.drain(timeout)
        await self.locales.aclose()
        await self.followups.stop()
        await self.metastudio.close()
        await self.slack.close()
        await self.database.dispose()

    def context(self) -> dict[str, Any]:
        """What listeners may use, by name (see ``handlers``)."""
        return {
            "commands": self.commands,
            "background": self.background,
            "admin": self.admin,
            "leaving": self.leaving,
            "languages": self.languages,
            "authorize": self.authorize,
            "steps": self.steps,
        }


class _DropTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that our client's token wins; that is intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # The second: taskbot hands Bolt its own (coalesced) authorize, in both modes.
        return "`token` will be unused" not in message and "env variable) will be ignored" not in message


def create_bolt_app(settings: Settings, runtime: Runtime, *, socket_mode: bool = False) -> AsyncApp:
    bolt_logger = logging.getLogger("taskbot.bolt")
    bolt_logger.addFilter(_DropTokenNotice())
    # One authorization per workspace at a time, remembered (bot/slack/clients.py), in both modes.
    options: dict[str, Any] = {"authorize": runtime.authorize}
    if runtime.installation_store is not None:
        options["installation_store"] = runtime.installation_store
        options["oauth_flow"] = WorkspaceInstallFlow(
            logger=bolt_logger,
            departures=runtime.leaving.departures,
            settings=AsyncOAuthSettings(
                client_id=settings.slack_client_id,
                client_secret=_plain(settings.slack_client_secret),
                scopes=list(BOT_SCOPES),
                installation_store=runtime.installation_store,
                state_store=runtime.state_store,
                install_path="/slack/install",
                redirect_uri_path="/slack/oauth_redirect",
            ),
        )
        token = None
    else:
        token = _plain(settings.slack_bot_token)
    app = AsyncApp(
        client=web_client(token, api_url=settings.slack_api_url),
        signing_secret=_plain(settings.slack_signing_secret) or "",
        # Listeners ack, hand their work to Background.spawn and return, so the HTTP response
        # goes out the moment the listener returns, without Bolt's 10 ms ack polling.
        process_before_response=True,
        request_verification_enabled=not socket_mode,
        raise_error_for_unhandled_request=False,
        # Workflow steps (handlers/functions.py): Bolt's complete/fail use the event's own token.
        attaching_function_token_enabled=True,
        logger=bolt_logger,
        **options,
    )
    provided = runtime.context()

    async def provide_services(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context.update(provided)
        await next()

    app.use(provide_services)

    async def drop_seen_events(
        body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        # Bolt for Python has no retry filter of its own (it only passes X-Slack-Retry-Num on):
        # an Events API delivery whose event_id any replica already claimed is acked and dropped.
        # Commands and interactions carry no event_id and Slack does not redeliver them.
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and event_id:
            try:
                async with asyncio.timeout(SEEN_EVENT_DEADLINE):
                    first = await runtime.seen_events.first_time(event_id)
            except Exception as error:  # a database that fails or hangs must not hold up the ack
                # Handled without the check: every event taskbot handles is safe to see twice,
                # and an ack past 3 s would make Slack send it again anyway.
                log.warning(
                    "could not record event %s (%s); handling it unchecked", event_id, type(error).__name__
                )
                first = True
            if not first:
                return BoltResponse(status=200, body="")
        await next()
        return None

    app.use(drop_seen_events)

    async def answer_errors(error: Exception, logger: logging.Logger) -> BoltResponse | None:
        # A workspace that cannot be authorized right now (database down, tokens unreadable) is
        # told so in one sentence with a 200, never a 500; everything else as Bolt's default.
        if isinstance(error, AuthorizationUnavailable):
            log.warning("request not authorized: %s", error)
            key = "error_workspace_unreadable" if error.unreadable else "error_database_unavailable"
            locale = settings.fixed_channel_language or messages.DEFAULT_LOCALE
            return BoltResponse(status=200, body=messages.text(key, locale))
        logger.exception(f"Failed to run a listener or middleware function (error: {error})")
        return None

    app.error(answer_errors)
    handlers.register_all(app)
    return app


@contextlib.asynccontextmanager
async def running(runtime: Runtime, bolt: AsyncApp) -> AsyncIterator[None]:
    """Start the runtime and give Bolt's client the shared aiohttp session."""
    await runtime.start()
    bolt.client.session = runtime.slack.session
    # Everything built so far (modules, Bolt, the re-armed watches) lives as long as the
    # process: keep it out of the cyclic collector, whose full passes over 10,000 watches
    # paused the loop for up to 190 ms, acks included (BENCHMARKS.md).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        bolt.client.session = None
        await runtime.close()


def create_asgi(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    """The HTTP app: Slack's requests, OAuth install and redirect, health and metrics."""
    runtime = runtime or Runtime(settings)
    bolt = create_bolt_app(settings, runtime)
    slack_handler = AsyncSlackRequestHandler(bolt)
    gate = SlackRequestGate(
        _plain(settings.slack_signing_secret) or "", max_bytes=settings.slack_max_request_bytes
    )

    async def slack_events(request: Request) -> Response:
        with runtime.ack_first:
            try:
                bolt_request = await gate.admit(request)
            except Refused as refused:
                return refused.response
            # Built from the verified bytes: Bolt never reads the body again.
            return to_starlette_response(await bolt.async_dispatch(bolt_request))

    async def oauth(request: Request) -> Response:
        return await slack_handler.handle(request)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with running(runtime, bolt):
            yield

    routes = [*health_routes(runtime), Route("/slack/events", slack_events, methods=["POST"])]
    if runtime.installation_store is not None:
        routes += [
            Route("/slack/install", oauth, methods=["GET"]),
            Route("/slack/oauth_redirect", oauth, methods=["GET"]),
        ]
    asgi = Starlette(routes=routes, lifespan=lifespan)
    asgi.state.runtime = runtime
    asgi.state.bolt = bolt
    return asgi


async def database_unreachable(runtime: Runtime, timeout: float = READY_TIMEOUT) -> str | None:
    """None when one ``SELECT 1`` succeeds within ``timeout``, else a short reason (no DSN, no secret)."""
    try:
        async with asyncio.timeout(timeout):
            async with runtime.database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError:
        return "database_timeout"
    except Exception as error:  # any failure to reach the database means not ready
        log.warning("readiness: the database is unreachable (%s)", type(error).__name__)
        return "database_unreachable"
    return None


def health_routes(runtime: Runtime | None = None) -> list[Route]:
    """Liveness (/healthz: the process serves), metrics, and with a runtime readiness (/readyz)."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_: Request) -> Response:
        reason = await database_unreachable(runtime) if runtime is not None else None
        if reason is not None:
            return JSONResponse({"ok": False, "error": reason}, status_code=503)
        return JSONResponse({"ok": True})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
    if runtime is not None:
        routes.append(Route("/readyz", readyz, methods=["GET"]))
    return routes
