"""Which MetaStudio client serves a workspace, built in one place and cached per workspace.

Single-workspace mode has one client from the environment; multi-workspace mode builds one per
workspace from the connection its admin saved, and drops it when the connection changes or
the workspace leaves. Every client is configured from settings by ``configured_client``
(``new_client`` adds the admin-endpoint policy), so timeouts and retries mean the same everywhere;
the client itself knows nothing of ``Settings``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Final, NotRequired, TypedDict, Unpack

from bot.config import ConfigError, Settings
from bot.db.workspaces import ConnectionForm, WorkspaceStore
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.credential_chain import (
    AkSkSource,
    IamUserSource,
    ProfileSource,
    TokenSource,
    first_credentials,
)
from bot.metastudio.credentials import CloudCredentials, CredentialsIncomplete, credentials_of, parts_of
from bot.metastudio.endpoints import BadEndpointURL, EndpointPolicy, parse_endpoint
from bot.metastudio.errors import NotConfigured
from bot.metastudio.regions import Endpoints, NoEndpoint, operator_endpoints, region_endpoints

__all__ = [
    "RECHECK_SECONDS",
    "ClientPlace",
    "MetaStudioClients",
    "configured_client",
    "env_client",
    "environment_credentials",
    "environment_endpoints",
    "form_client",
    "form_credentials",
    "new_client",
]

log = logging.getLogger("taskbot.services")

# How stale a replica's client of a workspace may be: a connection saved (or deleted) through
# another replica is used (or refused) by this one's calls within this many seconds.
RECHECK_SECONDS: Final = 5.0


class ClientPlace(TypedDict):
    """Where a configured client connects, and as whom (``configured_client``)."""

    endpoint: str
    iam_endpoint: str | None
    credentials: CloudCredentials
    region: NotRequired[str | None]
    """Lets a client without a project id look it up through IAM, once."""
    max_retries: NotRequired[int | None]
    """None: the operator's ``max_retries``."""


def configured_client(
    settings: Settings, *, endpoint_policy: EndpointPolicy | None = None, **place: Unpack[ClientPlace]
) -> MetaStudioClient:
    """A client with the operator's timeouts, retries, call deadline and body cap (``Settings``)."""
    max_retries = place.get("max_retries")
    return MetaStudioClient(
        endpoint=place["endpoint"],
        credentials=place["credentials"],
        iam_endpoint=place["iam_endpoint"],
        region=place.get("region"),
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_retries=settings.max_retries if max_retries is None else max_retries,
        call_deadline=settings.call_deadline,
        max_body_bytes=settings.max_body_bytes,
        endpoint_policy=endpoint_policy,
    )


def env_client(settings: Settings) -> MetaStudioClient:
    """The operator's own client (single-workspace mode, ``taskbot check``).

    Raises ``ConfigError`` naming the variable when the credentials or the endpoint are missing
    or invalid, so the operator reads one sentence and never a traceback.
    """
    endpoint, iam_endpoint = environment_endpoints(settings)
    credentials = environment_credentials(settings)
    for name, url in (("METASTUDIO_ENDPOINT", endpoint), ("METASTUDIO_IAM_ENDPOINT", iam_endpoint)):
        try:
            parse_endpoint(url)
        except BadEndpointURL as exc:
            raise ConfigError([f"{name}={url!r} is not an http(s) URL ({exc})"]) from None
    try:
        return configured_client(
            settings,
            endpoint=endpoint,
            iam_endpoint=iam_endpoint,
            credentials=credentials,
            region=settings.region,
        )
    except CredentialsIncomplete as exc:
        raise ConfigError(exc.problems) from None


def environment_endpoints(settings: Settings) -> Endpoints:
    """Where the operator's own client connects (``regions.operator_endpoints`` has the rules).

    Raises ``ConfigError`` naming what to set.
    """
    try:
        return operator_endpoints(settings.region, settings.endpoint, iam_endpoint=settings.iam_endpoint)
    except NoEndpoint as exc:
        raise ConfigError([str(exc)]) from None


def environment_credentials(settings: Settings) -> CloudCredentials:
    """The operator's own credentials: the first of the SDK's sources that holds any.

    Raises ``ConfigError`` naming the variables to set (``credential_chain`` has the rules).
    """
    sources = (
        AkSkSource(
            access_key=settings.cloud_ak,
            secret_key=settings.cloud_sk,
            project_id=settings.cloud_project_id,
            security_token=settings.cloud_security_token,
        ),
        TokenSource(project_id=settings.cloud_project_id, token=settings.auth_token),
        IamUserSource(
            project_id=settings.cloud_project_id,
            username=settings.iam_username,
            password=settings.iam_password,
            domain=settings.iam_domain,
        ),
        ProfileSource(named=settings.cloud_credentials_file),
    )
    try:
        return first_credentials(sources)
    except CredentialsIncomplete as exc:
        raise ConfigError(exc.problems) from None


def new_client(settings: Settings, **place: Unpack[ClientPlace]) -> MetaStudioClient:
    """A client for an endpoint a workspace admin typed: only hosts the operator allows, public addresses."""
    return configured_client(settings, endpoint_policy=settings.endpoint_policy, **place)


def form_credentials(form: ConnectionForm, stored: CloudCredentials | None) -> CloudCredentials:
    """The credentials a submitted form stands for; parts it leaves empty fall back to the stored
    ones of the same kind. Raises ``CredentialsIncomplete`` naming what is still missing."""
    kept = stored.model_dump() if stored is not None and stored.kind == form.kind else {}
    # The form names its fields as the models name their parts.
    parts = {name: getattr(form, name, None) or kept.get(name) for name in parts_of(form.kind)}
    return credentials_of(form.kind, form.project_id, parts)


def form_client(
    settings: Settings, form: ConnectionForm, credentials: CloudCredentials, *, max_retries: int | None = None
) -> MetaStudioClient:
    """A client for the region and endpoint a connection form holds (not yet saved)."""
    endpoint, iam = region_endpoints(form.region, form.endpoint)
    return new_client(
        settings,
        endpoint=endpoint,
        iam_endpoint=iam,
        credentials=credentials,
        region=form.region,
        max_retries=max_retries,
    )


@dataclass(slots=True)
class _Cached:
    client: MetaStudioClient
    version: datetime
    """The connection's ``updated_at`` the client was built from."""
    checked_until: float
    """Monotonic time until which the client is used without reading the version again."""


@dataclass(eq=False, repr=False)
class MetaStudioClients:
    """Per-workspace clients, each checked against its stored connection at most every
    ``recheck_seconds``: a connection saved (or deleted) through any replica reaches every
    replica's next call within that bound (a version check at use; no cross-replica messages)."""

    settings: Settings
    workspaces: WorkspaceStore | None
    """None: single-workspace mode, served by ``env_client``."""
    _: KW_ONLY
    env_client: MetaStudioClient | None = None
    """Single-workspace mode's client; ``open()`` builds it from the environment when not given."""
    recheck_seconds: float = RECHECK_SECONDS
    _config_problem: str | None = field(default=None, init=False)
    _by_team: dict[str, _Cached] = field(default_factory=dict, init=False)
    _building: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)

    def open(self) -> None:
        """Single-workspace mode: build the environment's client (once)."""
        if self.workspaces is not None or self.env_client is not None:
            return
        try:
            self.env_client = env_client(self.settings)
        except ConfigError as exc:
            # Serve anyway: /task answers with a clear sentence instead of the process dying.
            self._config_problem = str(exc)
            log.warning("MetaStudio is not configured: %s", exc)

    async def close(self) -> None:
        for client in [self.env_client, *(cached.client for cached in self._by_team.values())]:
            if client is not None:
                await client.aclose()
        self._by_team.clear()

    async def for_team(self, team_id: str | None) -> MetaStudioClient:
        """The MetaStudio client of a workspace: the environment's, or the one its admin connected."""
        if self.workspaces is None:
            if self.env_client is None:
                raise NotConfigured(self._config_problem or "no MetaStudio client")
            return self.env_client
        if not team_id:
            raise NotConfigured("request without a workspace")
        cached = self._by_team.get(team_id)
        if cached is not None and time.monotonic() < cached.checked_until:
            return cached.client
        # One look-up per workspace at a time: the others wait for it rather than build twins.
        async with self._building.setdefault(team_id, asyncio.Lock()):
            return await self._current(self.workspaces, team_id)

    async def _current(self, workspaces: WorkspaceStore, team_id: str) -> MetaStudioClient:
        cached = self._by_team.get(team_id)
        if cached is not None and time.monotonic() < cached.checked_until:
            return cached.client
        version = await workspaces.connection_version(team_id)
        if cached is not None and cached.version == version:
            cached.checked_until = time.monotonic() + self.recheck_seconds
            return cached.client
        if cached is not None:
            log.info("MetaStudio connection changed; using the new one", extra={"team": team_id})
            await self.forget(team_id)
        credentials = await workspaces.credentials(team_id)
        endpoints = await workspaces.endpoint_for(team_id)
        if version is None or credentials is None or endpoints is None:
            raise NotConfigured("workspace has no MetaStudio connection")
        client = new_client(
            self.settings, endpoint=endpoints.metastudio, iam_endpoint=endpoints.iam, credentials=credentials
        )
        self._by_team[team_id] = _Cached(client, version, time.monotonic() + self.recheck_seconds)
        return client

    async def forget(self, team_id: str) -> None:
        """Drop a workspace's client after its admin changed the connection, or it left."""
        cached = self._by_team.pop(team_id, None)
        if cached is not None:
            await cached.client.aclose()
