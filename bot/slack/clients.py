"""Slack Web API clients: one factory, one base URL, retry policy, and token rotation.

Every ``AsyncWebClient`` taskbot builds comes from ``web_client`` so the base URL (a stand-in
in tests and the demo) and the retry handlers are set in one place. ``SlackClients.for_team``
gives work outside a request (alerts, live cards) a client with a fresh token: Bolt refreshes
rotating tokens only for incoming requests, and a scheduled alert may run hours later.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from pydantic import SecretStr
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

__all__ = [
    "BOT_SCOPES",
    "SlackClients",
    "WorkspaceNotInstalled",
    "delivery_retry_handlers",
    "request_retry_handlers",
    "web_client",
]

# Token rotation refreshes a bot token this long before it expires (Bolt's default too).
TOKEN_REFRESH_MINUTES = 120
BOT_SCOPES = ("commands", "chat:write", "channels:history", "groups:history", "users:read", "usergroups:read")


class WorkspaceNotInstalled(LookupError):
    """No bot token is stored for the workspace (never installed, or uninstalled since)."""


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

    Single-workspace mode uses ``bot_token``; with an ``installation_store`` each workspace's
    installation is read, and an expiring rotating token is refreshed first, one refresh per
    workspace at a time because each refresh token is single-use.
    """

    def __init__(
        self,
        *,
        api_url: str | None,
        bot_token: SecretStr | None = None,
        installation_store: AsyncInstallationStore | None = None,
        client_id: str | None = None,
        client_secret: SecretStr | None = None,
    ) -> None:
        self._api_url = api_url
        self._bot_token = bot_token
        self._installations = installation_store
        self._client_id = client_id or ""
        self._client_secret = client_secret
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
            installation = await self._installations.async_find_installation(
                enterprise_id=None, team_id=team_id
            )
            if installation is None or not installation.bot_token:
                raise WorkspaceNotInstalled(team_id)
            if installation.bot_refresh_token and self._client_secret is not None:
                rotator = AsyncTokenRotator(
                    client_id=self._client_id,
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

    def forget(self, team_id: str) -> None:
        self._clients.pop(team_id, None)
        self._rotation_locks.pop(team_id, None)

    def _cached(self, key: str, token: str | None) -> AsyncWebClient:
        cached = self._clients.get(key)
        if cached is None or cached.token != token:
            cached = web_client(token, api_url=self._api_url, session=self.session, for_delivery=True)
            self._clients[key] = cached
        return cached
