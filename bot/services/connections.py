"""Which MetaStudio client serves a workspace, built in one place and cached per workspace.

Single-workspace mode has one client from the environment; multi-workspace mode builds one per
workspace from the connection its admin saved, and drops it when the connection changes or
the workspace leaves. Every client is configured from settings by ``MetaStudioClient.configured``
(``new_client`` adds the admin-endpoint policy), so timeouts and retries mean the same everywhere.
"""

from __future__ import annotations

import logging
from typing import Unpack

from pydantic import SecretStr

from bot.config import CloudCredentials, ConfigError, Settings
from bot.db.workspaces import ConnectionForm, WorkspaceStore, region_endpoints
from bot.metastudio.client import ClientPlace, MetaStudioClient
from bot.metastudio.errors import NotConfigured

__all__ = ["MetaStudioClients", "form_client", "form_credentials", "new_client"]

log = logging.getLogger("taskbot.services")


def new_client(settings: Settings, **place: Unpack[ClientPlace]) -> MetaStudioClient:
    """A client for an endpoint a workspace admin typed: only hosts the operator allows, public addresses."""
    return MetaStudioClient.configured(settings, endpoint_policy=settings.endpoint_policy, **place)


def _secret(value: str | None, stored: SecretStr | None) -> SecretStr | None:
    return SecretStr(value) if value is not None else stored


def form_credentials(form: ConnectionForm, stored: CloudCredentials | None) -> CloudCredentials:
    """The credentials a submitted form stands for; empty secrets fall back to the stored ones."""
    same_kind = stored if stored is not None and stored.kind == form.kind else None
    return CloudCredentials(
        kind=form.kind,
        project_id=form.project_id,
        access_key=form.access_key or (same_kind.access_key if same_kind else None),
        secret_key=_secret(form.secret_key, same_kind.secret_key if same_kind else None),
        security_token=_secret(form.security_token, same_kind.security_token if same_kind else None),
        iam_username=form.iam_username,
        iam_password=_secret(form.iam_password, same_kind.iam_password if same_kind else None),
        iam_domain=form.iam_domain,
    )


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


class MetaStudioClients:
    def __init__(
        self,
        settings: Settings,
        workspaces: WorkspaceStore | None,
        *,
        env_client: MetaStudioClient | None = None,
    ) -> None:
        self._settings = settings
        self._workspaces = workspaces
        self._env_client = env_client
        self._config_problem: str | None = None
        self._by_team: dict[str, MetaStudioClient] = {}

    def open(self) -> None:
        """Single-workspace mode: build the environment's client (once)."""
        if self._workspaces is not None or self._env_client is not None:
            return
        try:
            self._env_client = MetaStudioClient.from_settings(self._settings)
        except ConfigError as exc:
            # Serve anyway: /task answers with a clear sentence instead of the process dying.
            self._config_problem = str(exc)
            log.warning("MetaStudio is not configured: %s", exc)

    async def close(self) -> None:
        for client in [self._env_client, *self._by_team.values()]:
            if client is not None:
                await client.aclose()
        self._by_team.clear()

    async def for_team(self, team_id: str | None) -> MetaStudioClient:
        """The MetaStudio client of a workspace: the environment's, or the one its admin connected."""
        if self._workspaces is None:
            if self._env_client is None:
                raise NotConfigured(self._config_problem or "no MetaStudio client")
            return self._env_client
        if not team_id:
            raise NotConfigured("request without a workspace")
        client = self._by_team.get(team_id)
        if client is None:
            credentials = await self._workspaces.credentials(team_id)
            endpoints = await self._workspaces.endpoint_for(team_id)
            if credentials is None or endpoints is None:
                raise NotConfigured("workspace has no MetaStudio connection")
            client = new_client(
                self._settings, endpoint=endpoints[0], iam_endpoint=endpoints[1], credentials=credentials
            )
            self._by_team[team_id] = client
        return client

    async def forget(self, team_id: str) -> None:
        """Drop a workspace's client after its admin changed the connection, or it left."""
        client = self._by_team.pop(team_id, None)
        if client is not None:
            await client.aclose()
