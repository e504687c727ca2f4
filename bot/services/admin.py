"""Workspace administration: App Home, the connection and guardrails modals, Test connection.

Only workspace admins and owners (``users.info``) may change anything; everyone else sees the
status and is told who can change it. Every change is checked again on submission, because a
view submission is just a request and can be forged by anyone who can send one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.config import CloudCredentials
from bot.db.workspaces import ConnectionForm, WorkspaceStore, region_endpoints
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError
from bot.metrics import SLACK_API_ERRORS
from bot.slack import home

if TYPE_CHECKING:
    from bot.services.engine import Engine, Origin

log = logging.getLogger("taskbot.admin")


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


class WorkspaceAdmin:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def store(self) -> WorkspaceStore:
        if self.engine.workspaces is None:
            raise RuntimeError("workspace administration needs multi-workspace mode")
        return self.engine.workspaces

    async def publish_home(self, team_id: str, user_id: str, client: AsyncWebClient) -> None:
        """Draw the App Home tab for one user: admins get the controls, others the status."""
        if self.engine.workspaces is None:
            return  # one workspace configured by environment: nothing to administer in Slack
        is_admin = await self.engine.is_admin(client, user_id)
        view = home.home_view(
            connection=await self.store.get_connection(team_id),
            guardrails=await self.store.get_guardrails(team_id),
            audit=await self.store.audit(team_id, limit=10) if is_admin else (),
            active_watches=await self.engine.storage.active_watch_count(team_id),
            is_admin=is_admin,
            admin_ids=() if is_admin else await self._contacts(team_id),
        )
        try:
            await client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("views.publish", str(exc.response.get("error"))).inc()

    async def _contacts(self, team_id: str) -> list[str]:
        """Whom a member can ask: who installed taskbot, then who last changed its settings.

        Both were admins when they did it; listing every admin would page through users.list.
        """
        users: list[str] = []
        if self.engine.installation_store is not None:
            installation = await self.engine.installation_store.async_find_installation(
                enterprise_id=None, team_id=team_id
            )
            if installation is not None and installation.user_id:
                users.append(installation.user_id)
        users += [entry.user_id for entry in await self.store.audit(team_id, limit=10)]
        return list(dict.fromkeys(users))

    async def _open(self, client: AsyncWebClient, trigger_id: str | None, view: dict[str, Any]) -> None:
        try:
            await client.views_open(trigger_id=trigger_id or "", view=view)
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("views.open", str(exc.response.get("error"))).inc()

    async def _refuse(self, origin: Origin, client: AsyncWebClient) -> bool:
        if self.engine.workspaces is not None and await self.engine.is_admin(client, origin.user_id):
            return False
        log.warning("non-admin tried to configure the workspace", extra={"team": origin.team_id, "user": origin.user_id})
        if origin.user_id:
            try:
                await client.chat_postMessage(channel=origin.user_id, text=messages.text("admin_only"))
            except SlackApiError as exc:
                SLACK_API_ERRORS.labels("chat.postMessage", str(exc.response.get("error"))).inc()
        return True

    async def open_connection_modal(self, origin: Origin, client: AsyncWebClient, *, trigger_id: str | None) -> None:
        if await self._refuse(origin, client):
            return
        connection = await self.store.get_connection(origin.team_id or "")
        await self._open(client, trigger_id, home.connection_modal(connection))

    async def open_guardrails_modal(self, origin: Origin, client: AsyncWebClient, *, trigger_id: str | None) -> None:
        if await self._refuse(origin, client):
            return
        guardrails = await self.store.get_guardrails(origin.team_id or "")
        await self._open(client, trigger_id, home.guardrails_modal(guardrails))

    async def test_connection(self, origin: Origin, client: AsyncWebClient, *, view: dict[str, Any]) -> None:
        """Call the list API with what the modal holds now and show the outcome in the modal."""
        if await self._refuse(origin, client):
            return
        team_id = origin.team_id or ""
        existing = await self.store.get_connection(team_id)
        parsed = home.parse_connection((view.get("state") or {}).get("values") or {}, existing)
        if isinstance(parsed, dict):
            result = messages.text("connection_test_incomplete")
        else:
            result = await self._try(parsed, await self.store.credentials(team_id))
        try:
            await client.views_update(
                view_id=view.get("id"), hash=view.get("hash"), view=home.connection_modal(existing, test_result=result)
            )
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("views.update", str(exc.response.get("error"))).inc()

    async def _try(self, form: ConnectionForm, stored: CloudCredentials | None) -> str:
        endpoint, iam = region_endpoints(form.region, form.endpoint)
        try:
            credentials = form_credentials(form, stored)
        except ValueError:
            return messages.text("connection_test_incomplete")
        client = MetaStudioClient(
            endpoint=endpoint,
            iam_endpoint=iam,
            credentials=credentials,
            connect_timeout=self.engine.settings.connect_timeout,
            read_timeout=self.engine.settings.read_timeout,
            max_retries=1,
        )
        async with client:
            try:
                page = await client.list_tasks(limit=1)
            except MetaStudioError as exc:
                return messages.text("connection_test_failed", error=exc.user_message)
        return messages.text("connection_test_ok", count=f"{page.value.count:,}")

    async def save_connection(self, origin: Origin, client: AsyncWebClient, form: ConnectionForm) -> None:
        if await self._refuse(origin, client):
            return
        team_id, user_id = origin.team_id or "", origin.user_id or ""
        await self.store.save_connection(team_id, form, user_id=user_id)
        await self.engine.connection_changed(team_id)
        log.info("connection updated", extra={"team": team_id, "user": user_id})
        await self.publish_home(team_id, user_id, client)

    async def save_guardrails(
        self, origin: Origin, client: AsyncWebClient, channels: list[str], usergroup: str | None
    ) -> None:
        if await self._refuse(origin, client):
            return
        team_id, user_id = origin.team_id or "", origin.user_id or ""
        await self.store.save_guardrails(team_id, channels=channels, usergroup_id=usergroup, user_id=user_id)
        log.info("guardrails updated", extra={"team": team_id, "user": user_id})
        await self.publish_home(team_id, user_id, client)

    async def usergroup_id(self, client: AsyncWebClient, value: str) -> str | None:
        """A user group id as typed, or the id behind an ``@handle``."""
        if home.is_usergroup_id(value):
            return value
        handle = value.lstrip("@").lower()
        try:
            groups = (await client.usergroups_list()).get("usergroups") or []
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("usergroups.list", str(exc.response.get("error"))).inc()
            return None
        return next((g["id"] for g in groups if str(g.get("handle", "")).lower() == handle), None)
