"""The app factory: a Bolt ``AsyncApp`` with our listeners, served by Starlette.

``create_asgi`` is what uvicorn, the demo and the tests run; the CLI runs the same Bolt app
over Socket Mode when an app-level token is configured.

One workspace (``SLACK_BOT_TOKEN``) or many (``SLACK_CLIENT_ID``): with a client id, Bolt's own
OAuth flow installs the app and slack_sdk's SQLAlchemy stores keep installations and OAuth
state in the same database as everything else.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import handlers
from bot.config import Settings
from bot.services.engine import BOT_SCOPES, Engine, slack_retry_handlers

log = logging.getLogger("taskbot.app")


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def slack_client(settings: Settings, token: str | None = None) -> AsyncWebClient:
    kwargs: dict[str, Any] = {"token": token, "retry_handlers": slack_retry_handlers()}
    if settings.slack_api_url:
        kwargs["base_url"] = settings.slack_api_url.rstrip("/") + "/"
    return AsyncWebClient(**kwargs)


class _DropTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN itself and warns that our client's token wins; that is intended."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def create_bolt_app(settings: Settings, engine: Engine, *, socket_mode: bool = False) -> AsyncApp:
    bolt_logger = logging.getLogger("taskbot.bolt")
    bolt_logger.addFilter(_DropTokenNotice())
    options: dict[str, Any] = {}
    if engine.installation_store is not None:
        options["installation_store"] = engine.installation_store
        options["oauth_settings"] = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=_secret(settings.slack_client_secret),
            scopes=list(BOT_SCOPES),
            installation_store=engine.installation_store,
            state_store=engine.state_store,
            install_path="/slack/install",
            redirect_uri_path="/slack/oauth_redirect",
        )
        token = None
    else:
        token = _secret(settings.slack_bot_token)
    app = AsyncApp(
        client=slack_client(settings, token),
        signing_secret=_secret(settings.slack_signing_secret) or "",
        # Listeners ack, hand their work to Engine.spawn and return, so the HTTP response goes
        # out the moment the listener returns, without Bolt's 10 ms ack polling.
        process_before_response=True,
        request_verification_enabled=not socket_mode,
        raise_error_for_unhandled_request=False,
        # taskbot defines no Slack workflow functions; skip that per-request middleware.
        attaching_function_token_enabled=False,
        logger=bolt_logger,
        **options,
    )

    async def provide_engine(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context["engine"] = engine
        await next()

    app.use(provide_engine)
    handlers.register_all(app)
    return app


@contextlib.asynccontextmanager
async def running(engine: Engine, bolt: AsyncApp) -> AsyncIterator[None]:
    """Start the engine and give Bolt's client the engine's shared aiohttp session."""
    await engine.start()
    # One aiohttp session for every Web API call; slack_sdk otherwise opens one per call.
    bolt.client.session = engine.slack_session
    # Everything built so far (modules, Bolt, the re-armed watches) lives as long as the
    # process: keep it out of the cyclic collector, whose full passes over 10,000 watches
    # paused the loop for up to 190 ms, acks included (BENCHMARKS.md).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        bolt.client.session = None
        await engine.close()


def create_asgi(settings: Settings, engine: Engine | None = None) -> Starlette:
    """The HTTP app: Slack's requests, OAuth install and redirect, health and metrics."""
    engine = engine or Engine(settings)
    bolt = create_bolt_app(settings, engine)
    slack_handler = AsyncSlackRequestHandler(bolt)

    async def slack_events(request: Request) -> Response:
        with engine.ack_first:
            return await slack_handler.handle(request)

    async def oauth(request: Request) -> Response:
        return await slack_handler.handle(request)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with running(engine, bolt):
            yield

    routes = [*health_routes(), Route("/slack/events", slack_events, methods=["POST"])]
    if engine.installation_store is not None:
        routes += [
            Route("/slack/install", oauth, methods=["GET"]),
            Route("/slack/oauth_redirect", oauth, methods=["GET"]),
        ]
    asgi = Starlette(routes=routes, lifespan=lifespan)
    asgi.state.engine = engine
    asgi.state.bolt = bolt
    return asgi


def health_routes() -> list[Route]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
