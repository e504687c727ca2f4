"""Slack Web API clients: one factory, one base URL, retry policy, token rotation, Bolt's authorize.

Every ``AsyncWebClient`` taskbot builds comes from ``web_client`` so the base URL (a stand-in
in tests and the demo) and the retry handlers are set in one place. ``SlackClients.for_team``
gives work outside a request (alerts, live cards) a client with a fresh token: Bolt refreshes
rotating tokens only for incoming requests, and a scheduled alert may run hours later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from pydantic import SecretStr
from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize, AsyncInstallationStoreAuthorize
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.db.crypto import SecretUnreadable
from bot.db.installations import EncryptedInstallationStore

__all__ = [
    "BOT_SCOPES",
    "AuthorizationUnavailable",
    "CoalescedAuthorize",
    "SlackClients",
    "WorkspaceNotInstalled",
    "delivery_retry_handlers",
    "request_retry_handlers",
    "web_client",
]

log = logging.getLogger("taskbot.slack.clients")

# Token rotation refreshes a bot token this long before it expires (Bolt's default too).
TOKEN_REFRESH_MINUTES = 120
BOT_SCOPES = ("commands", "chat:write", "channels:history", "groups:history", "users:read", "usergroups:read")


# How long a workspace's authorization is reused in multi-workspace mode. Short: a rotated or
# revoked token is noticed within this, and token rotation refreshes 120 minutes ahead anyway.
AUTHORIZE_TTL_SECONDS = 30.0
# A request waits this long for its workspace's look-up (the database) before it is answered
# anyway: Slack gives an ack 3 s, and the rest of the ack path needs well under one.
AUTHORIZE_DEADLINE_SECONDS = 2.0
# A look-up still running after this is abandoned, so the next request starts a fresh one.
LOOKUP_CAP_SECONDS = 30.0
# While look-ups fail or hang, a workspace whose authorization was known keeps it this long
# past its TTL (stale-while-error, RFC 5861's stale-if-error): a database outage shorter than
# this does not stop /task in workspaces that used taskbot in the minutes before.
STALE_IF_ERROR_SECONDS = 15 * 60.0


class WorkspaceNotInstalled(LookupError):
    """No bot token is stored for the workspace (never installed, or uninstalled since)."""


class AuthorizationUnavailable(Exception):
    """The workspace's installation could not be looked up in time, and none is remembered.

    ``cause`` says why for the log (a timeout, the driver's error class); the person who sent
    the request reads one sentence (``bot.app``'s error handler), never a 500.
    """

    def __init__(self, cause: str, *, unreadable: bool = False) -> None:
        self.cause = cause
        # True: the stored tokens are there but TASKBOT_ENCRYPTION_KEY cannot open them.
        self.unreadable = unreadable
        super().__init__(f"workspace authorization unavailable ({cause})")


def request_retry_handlers() -> list[AsyncRetryHandler]:
    """Slack rate limits and dropped connections are retried by slack_sdk itself."""
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
    ]


def delivery_retry_handlers() -> list[AsyncRetryHandler]:
    """For alerts only rate limits are retried in place: a connection retry could post twice
    behind the back of the exactly-once protocol, which handles those failures itself."""
    return [AsyncRateLimitErrorRetryHandler(max_retry_count=5)]


def web_client(
    token: str | None,
    *,
    api_url: str | None,
    session: aiohttp.ClientSession | None = None,
    for_delivery: bool = False,
) -> AsyncWebClient:
    kwargs: dict[str, Any] = {
        "token": token,
        "retry_handlers": delivery_retry_handlers() if for_delivery else request_retry_handlers(),
        "session": session,
    }
    if api_url:
        kwargs["base_url"] = api_url.rstrip("/") + "/"
    return AsyncWebClient(**kwargs)


def _plain(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


class SlackClients:
    """Clients for work outside a request, one per workspace, sharing one aiohttp session.

    Single-workspace mode uses ``SLACK_BOT_TOKEN``; with an ``installation_store`` each workspace's
    installation is read, and an expiring rotating token is refreshed first, one refresh per
    workspace at a time because each refresh token is single-use.
    """

    def __init__(
        self, settings: Settings, installation_store: EncryptedInstallationStore | None = None
    ) -> None:
        self._api_url = settings.slack_api_url
        self._bot_token = settings.slack_bot_token
        self._installations = installation_store
        self._client_id = settings.slack_client_id
        self._client_secret = settings.slack_client_secret
        self._clients: dict[str, AsyncWebClient] = {}
        self._rotation_locks: dict[str, asyncio.Lock] = {}
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        # One aiohttp session for every Web API call; slack_sdk otherwise opens one per call.
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        self._clients.clear()

    def request_client(self, token: str | None) -> AsyncWebClient:
        """A client like Bolt's own: retries rate limits and dropped connections."""
        return web_client(token, api_url=self._api_url, session=self.session)

    async def for_team(self, team_id: str) -> AsyncWebClient:
        """A delivery client for the workspace with a fresh token; raises ``WorkspaceNotInstalled``."""
        if self._installations is None:
            return self._cached("", _plain(self._bot_token))
        lock = self._rotation_locks.setdefault(team_id, asyncio.Lock())
        async with lock:
            installation = await self._installations.find_team(team_id)
            if installation is None or not installation.bot_token:
                raise WorkspaceNotInstalled(team_id)
            if installation.bot_refresh_token and self._client_secret is not None:
                rotator = AsyncTokenRotator(
                    client_id=self._client_id or "",
                    client_secret=self._client_secret.get_secret_value(),
                    client=self.request_client(None),
                )
                refreshed = await rotator.perform_token_rotation(
                    installation=installation, minutes_before_expiration=TOKEN_REFRESH_MINUTES
                )
                if refreshed is not None:
                    await self._installations.async_save(refreshed)
                    installation = refreshed
            return self._cached(team_id, installation.bot_token)

    def authorize(self, logger: logging.Logger) -> CoalescedAuthorize:
        """Bolt's authorize for the same token or installations (see ``CoalescedAuthorize``)."""
        if self._installations is None:
            return CoalescedAuthorize(_bot_token_lookup(self._bot_token), ttl=None)
        inner = AsyncInstallationStoreAuthorize(
            logger=logger,
            installation_store=self._installations,
            client_id=self._client_id,
            client_secret=_plain(self._client_secret),
            token_rotation_expiration_minutes=TOKEN_REFRESH_MINUTES,
            # Used only to rotate tokens: it must reach the same Slack (a stand-in in tests).
            client=web_client(None, api_url=self._api_url),
        )
        return CoalescedAuthorize(inner, ttl=AUTHORIZE_TTL_SECONDS)

    def forget(self, team_id: str) -> None:
        self._clients.pop(team_id, None)
        self._rotation_locks.pop(team_id, None)

    def _cached(self, key: str, token: str | None) -> AsyncWebClient:
        cached = self._clients.get(key)
        if cached is None or cached.token != token:
            cached = web_client(token, api_url=self._api_url, session=self.session, for_delivery=True)
            self._clients[key] = cached
        return cached


Lookup = Callable[..., Awaitable[AuthorizeResult | None]]
"""What ``CoalescedAuthorize`` wraps: called with ``context``, ``enterprise_id``, ``team_id``, ``user_id``."""


def _bot_token_lookup(token: SecretStr | None) -> Lookup:
    """Single-workspace: the configured bot token, described by one ``auth.test``."""

    async def lookup(*, context: AsyncBoltContext, **_: str | None) -> AuthorizeResult:
        plain = _plain(token)
        response = await context.client.auth_test(token=plain)
        return AuthorizeResult.from_auth_test_response(
            auth_test_response=response, bot_token=plain, user_token=None
        )

    return lookup


class CoalescedAuthorize(AsyncAuthorize):
    """Bolt's authorize, one look-up per workspace at a time, remembered for ``ttl`` seconds.

    The single-flight pattern (Go's ``singleflight``) plus a TTL cache: Bolt's own authorize
    calls ``auth.test`` for every request until its first call returns, so the first 500
    commands after a start made 104 to 131 ``auth.test`` calls on the ack path. Here
    concurrent requests of one workspace share one look-up; failures are not remembered.
    ``ttl=None`` keeps a result for the process (a configured token never changes).

    With a TTL (installations in the database) a request waits for the look-up until
    ``deadline`` after the look-up started. When it fails or is late, a result known within ``stale_if_error`` seconds past its
    TTL answers instead (logged once per look-up), and the look-up goes on in the background,
    capped at ``LOOKUP_CAP_SECONDS``; with nothing known, ``AuthorizationUnavailable`` is raised.
    Slack's own refusals (``SlackApiError``, from a token rotation) are never answered stale.
    """

    def __init__(
        self,
        inner: Lookup,
        *,
        ttl: float | None,
        deadline: float = AUTHORIZE_DEADLINE_SECONDS,
        stale_if_error: float = STALE_IF_ERROR_SECONDS,
    ) -> None:
        self._inner = inner
        self._ttl = ttl
        self._deadline = deadline
        self._stale_if_error = stale_if_error
        self._results: dict[tuple[str | None, str | None], tuple[float, AuthorizeResult]] = {}
        self._flights: dict[tuple[str | None, str | None], asyncio.Future[AuthorizeResult | None]] = {}
        self._flight_started: dict[tuple[str | None, str | None], float] = {}

    @property
    def token_rotation_expiration_minutes(self) -> int:
        return TOKEN_REFRESH_MINUTES

    @token_rotation_expiration_minutes.setter
    def token_rotation_expiration_minutes(self, minutes: int) -> None:
        # Bolt sets this on whatever authorize it was given, from its OAuth settings.
        if isinstance(self._inner, AsyncInstallationStoreAuthorize):
            self._inner.token_rotation_expiration_minutes = minutes

    def forget(self, team_id: str) -> None:
        for key in [key for key in self._results if key[1] == team_id]:
            del self._results[key]

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        key = (enterprise_id, team_id) if self._ttl is not None else (None, None)
        cached = self._results.get(key)
        if cached is not None and (self._ttl is None or cached[0] > time.monotonic()):
            return _for_user(cached[1], user_id)
        flight = self._flights.get(key)
        if flight is None:
            lookup = self._inner(
                context=context, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
            )
            if self._ttl is not None:
                lookup = asyncio.wait_for(lookup, LOOKUP_CAP_SECONDS)
            flight = asyncio.ensure_future(lookup)
            self._flights[key] = flight
            self._flight_started[key] = time.monotonic()
            flight.add_done_callback(lambda done: self._landed(key, done))
        if self._ttl is None:
            # Shielded: one request giving up must not cancel the look-up the others wait for.
            result = await asyncio.shield(flight)
        else:
            try:
                # The deadline counts from the look-up's start: while one hangs, only the first
                # request waits for it, the ones after answer at once.
                waited = time.monotonic() - self._flight_started.get(key, time.monotonic())
                result = await asyncio.wait_for(asyncio.shield(flight), max(0.0, self._deadline - waited))
            except SlackApiError:
                raise
            except Exception as exc:  # a database that fails or hangs: answer from what is known
                stale = self._stale(cached)
                if stale is None:
                    unreadable = isinstance(exc, SecretUnreadable)
                    raise AuthorizationUnavailable(_why(exc), unreadable=unreadable) from None
                log.warning(
                    "authorization look-up failed (%s); answering with the one from %.0f s ago",
                    _why(exc),
                    time.monotonic() - (stale[0] - (self._ttl or 0.0)),
                    extra={"team": team_id},
                )
                return _for_user(stale[1], user_id)
        return _for_user(result, user_id) if result is not None else None

    def _stale(self, cached: tuple[float, AuthorizeResult] | None) -> tuple[float, AuthorizeResult] | None:
        if cached is None or cached[0] + self._stale_if_error < time.monotonic():
            return None
        return cached

    def _landed(
        self, key: tuple[str | None, str | None], flight: asyncio.Future[AuthorizeResult | None]
    ) -> None:
        self._flights.pop(key, None)
        self._flight_started.pop(key, None)
        if not flight.cancelled() and flight.exception() is None and (result := flight.result()) is not None:
            self._results[key] = (time.monotonic() + (self._ttl or 0.0), result)


def _why(exc: BaseException) -> str:
    """For the log: a timeout in words, else the error's class (a driver's message may hold the DSN)."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return type(exc).__name__


def _for_user(result: AuthorizeResult, user_id: str | None) -> AuthorizeResult:
    """The workspace's authorization, for the user of this request (taskbot holds no user tokens)."""
    return AuthorizeResult(
        enterprise_id=result.enterprise_id,
        team_id=result.team_id,
        team=result.team,
        url=result.url,
        bot_user_id=result.bot_user_id,
        bot_id=result.bot_id,
        bot_token=result.bot_token,
        bot_scopes=result.bot_scopes,
        user_id=user_id or result.user_id,
    )
