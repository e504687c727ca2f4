"""Workspace administration: App Home, the connection and guardrails modals, Test connection,
and forgetting a workspace that leaves.

Only workspace admins and owners (``users.info``) may change anything; everyone else sees the
status and is told who can change it. Every change is checked again on submission, because a
view submission is just a request and can be forged by anyone who can send one.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import KW_ONLY, dataclass
from typing import Any, Final, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.config import Settings
from bot.db.departures import Departures
from bot.db.followups import FollowUpStore
from bot.db.installations import EncryptedInstallationStore
from bot.db.workspaces import ConnectionForm, WorkspaceStore
from bot.followups import FollowUps
from bot.messages.format import number
from bot.metastudio.credentials import CloudCredentials
from bot.metastudio.endpoints import EndpointPolicy, EndpointRefused
from bot.metastudio.errors import MetaStudioError
from bot.metastudio.regions import region_endpoints
from bot.metrics import SLACK_API_ERRORS
from bot.services.access import Access
from bot.services.connections import MetaStudioClients, form_client, form_credentials
from bot.services.languages import Languages
from bot.slack import home, modals
from bot.slack.clients import SlackClients
from bot.slack.cloud_errors import error_text, refusal_text
from bot.slack.delivery import slack_error
from bot.slack.ids import LANGUAGE_FOLLOW
from bot.slack.origin import Origin

__all__ = ["DEPARTURE_SWEEP_SECONDS", "WorkspaceAdmin", "WorkspaceLeaving"]

log = logging.getLogger("taskbot.admin")

# How often each replica looks for uninstalls whose cleanup failed: one primary-key scan.
DEPARTURE_SWEEP_SECONDS: Final = 30.0
DEPARTURE_SWEEP_JOB: Final = "departures:all"


@dataclass(eq=False, repr=False)
class WorkspaceAdmin:
    """App Home and the admin modals of one installation; changes only by workspace admins."""

    settings: Settings
    store: WorkspaceStore
    _: KW_ONLY
    storage: FollowUpStore
    installation_store: EncryptedInstallationStore | None
    access: Access
    metastudio: MetaStudioClients
    languages: Languages

    async def publish_home(self, team_id: str, user_id: str, client: AsyncWebClient) -> None:
        """Draw the App Home tab for one user, in their language: admins get the controls."""
        locale = (await self.languages.person(Origin(team_id, None, user_id), client)).locale
        is_admin = await self.access.is_admin(client, Origin(team_id, None, user_id))
        view = home.home_view(
            connection=await self.store.get_connection(team_id),
            guardrails=await self.store.get_guardrails(team_id),
            audit=await self.store.audit(team_id, limit=10) if is_admin else (),
            active_watches=await self.storage.active_watch_count(team_id),
            is_admin=is_admin,
            admin_ids=() if is_admin else await self._contacts(team_id),
            locale=locale,
        )
        try:
            await client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("views.publish", slack_error(exc)).inc()

    async def _contacts(self, team_id: str) -> list[str]:
        """Whom a member can ask: who installed taskbot, then who last changed its settings.

        Both were admins when they did it; listing every admin would page through users.list.
        """
        users: list[str] = []
        if self.installation_store is not None:
            installation = await self.installation_store.find_team(team_id)
            if installation is not None and installation.user_id:
                users.append(installation.user_id)
        users += [entry.user_id for entry in await self.store.audit(team_id, limit=10)]
        return list(dict.fromkeys(users))

    async def _open(self, client: AsyncWebClient, trigger_id: str | None, view: dict[str, Any]) -> None:
        try:
            await client.views_open(trigger_id=trigger_id or "", view=view)
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("views.open", slack_error(exc)).inc()

    async def _refuse(self, origin: Origin, client: AsyncWebClient) -> bool:
        if await self.access.is_admin(client, origin):
            return False
        origin = await self.languages.person(origin, client)
        outsider = await self.access.outsider(client, origin)
        log.warning(
            "%s tried to configure the workspace",
            "someone of another organisation" if outsider else "a non-admin",
            extra={"team": origin.team_id, "user": origin.user_id},
        )
        if origin.user_id:
            sentence = messages.text("outsider_denied" if outsider else "admin_only", origin.locale)
            try:
                await client.chat_postMessage(channel=origin.user_id, text=sentence)
            except SlackApiError as exc:
                SLACK_API_ERRORS.labels("chat.postMessage", slack_error(exc)).inc()
        return True

    async def open_connection_modal(
        self, origin: Origin, client: AsyncWebClient, *, trigger_id: str | None
    ) -> None:
        await self._open_settings(origin, client, trigger_id, "connection")

    async def open_guardrails_modal(
        self, origin: Origin, client: AsyncWebClient, *, trigger_id: str | None
    ) -> None:
        await self._open_settings(origin, client, trigger_id, "guardrails")

    async def _open_settings(
        self,
        origin: Origin,
        client: AsyncWebClient,
        trigger_id: str | None,
        which: Literal["connection", "guardrails"],
    ) -> None:
        """Open one settings modal on what is stored now, in the admin's language; admins only."""
        if await self._refuse(origin, client):
            return
        locale = (await self.languages.person(origin, client)).locale
        team_id = origin.team_id or ""
        if which == "connection":
            view = modals.connection_modal(await self.store.get_connection(team_id), locale=locale)
        else:
            view = modals.guardrails_modal(await self.store.get_guardrails(team_id), locale=locale)
        await self._open(client, trigger_id, view)

    async def test_connection(self, origin: Origin, client: AsyncWebClient, *, view: dict[str, Any]) -> None:
        """Call the list API with what the modal holds now and show the outcome in the modal."""
        if await self._refuse(origin, client):
            return
        team_id = origin.team_id or ""
        locale = (await self.languages.person(origin, client)).locale
        existing = await self.store.get_connection(team_id)
        parsed = modals.parse_connection(
            (view.get("state") or {}).get("values") or {},
            existing,
            locale=locale,
            endpoints=self.endpoint_policy,
        )
        if isinstance(parsed, dict):
            result = messages.text("connection_test_incomplete", locale)
        else:
            result = await self._try(parsed, await self.store.credentials(team_id), locale)
        try:
            await client.views_update(
                view_id=view.get("id"),
                hash=view.get("hash"),
                view=modals.connection_modal(existing, test_result=result, locale=locale),
            )
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("views.update", slack_error(exc)).inc()

    async def _try(self, form: ConnectionForm, stored: CloudCredentials | None, locale: str) -> str:
        try:
            client = form_client(self.settings, form, form_credentials(form, stored), max_retries=1)
        except ValueError:
            return messages.text("connection_test_incomplete", locale)
        async with client:
            try:
                page = await client.list_tasks(limit=1)
            except MetaStudioError as exc:
                return messages.text("connection_test_failed", locale, error=error_text(exc, locale))
        return messages.text("connection_test_ok", locale, count=number(page.value.count, locale))

    @property
    def endpoint_policy(self) -> EndpointPolicy:
        """Where an admin may point the connection (``TASKBOT_ALLOWED_ENDPOINT_HOSTS``)."""
        return self.settings.endpoint_policy

    async def save_connection(self, origin: Origin, client: AsyncWebClient, form: ConnectionForm) -> None:
        if await self._refuse(origin, client):
            return
        team_id, user_id = origin.team_id or "", origin.user_id or ""
        refused = await self._endpoint_refused(form)
        if refused is not None:
            # The modal checked scheme and host; DNS can still point a permitted name inward.
            await self._tell_admin(origin, client, refused)
            return
        if not form.project_id:
            found = await self._look_up_project(form, await self.store.credentials(team_id), origin, client)
            if found is None:
                return
            form = dataclasses.replace(form, project_id=found)
        await self.store.save_connection(team_id, form, user_id=user_id)
        await self.metastudio.forget(team_id)
        log.info("connection updated", extra={"team": team_id, "user": user_id})
        await self.publish_home(team_id, user_id, client)

    async def _look_up_project(
        self, form: ConnectionForm, stored: CloudCredentials | None, origin: Origin, client: AsyncWebClient
    ) -> str | None:
        """The project id IAM lists for the form's region and keys (the SDK's rule), cached by the
        client; on failure the admin is told why in a DM and nothing is saved."""
        try:
            metastudio = form_client(self.settings, form, form_credentials(form, stored))
        except ValueError:
            sentence = messages.text("connection_test_incomplete")
        else:
            async with metastudio:
                try:
                    return await metastudio.project_id()
                except MetaStudioError as exc:
                    sentence = messages.text("connection_test_failed", error=error_text(exc))
        await self._tell_admin(origin, client, sentence)
        return None

    async def _endpoint_refused(self, form: ConnectionForm) -> str | None:
        """The sentence saying why the form's endpoints are refused, or None when they may be used."""
        if not form.endpoint:
            return None  # The region's own Huawei endpoints, from our table: not the admin's choice.
        for url in region_endpoints(form.region, form.endpoint):
            try:
                await self.endpoint_policy.check(url)
            except EndpointRefused as exc:
                log.info("connection endpoint refused: %s", exc)
                return refusal_text(exc.refusal)
        return None

    async def _tell_admin(self, origin: Origin, client: AsyncWebClient, sentence: str) -> None:
        if origin.user_id:
            try:
                await client.chat_postMessage(channel=origin.user_id, text=sentence)
            except SlackApiError as exc:
                SLACK_API_ERRORS.labels("chat.postMessage", slack_error(exc)).inc()

    async def save_guardrails(
        self, origin: Origin, client: AsyncWebClient, channels: list[str], usergroup: str | None
    ) -> None:
        if await self._refuse(origin, client):
            return
        team_id, user_id = origin.team_id or "", origin.user_id or ""
        await self.store.save_guardrails(team_id, channels=channels, usergroup_id=usergroup, user_id=user_id)
        log.info("guardrails updated", extra={"team": team_id, "user": user_id})
        await self.publish_home(team_id, user_id, client)

    async def save_channel_language(self, origin: Origin, client: AsyncWebClient, value: str) -> None:
        """The App Home menu: what channels read. Checked again here, like every other change."""
        if await self._refuse(origin, client):
            return
        team_id, user_id = origin.team_id or "", origin.user_id or ""
        language = None if value == LANGUAGE_FOLLOW else value
        if language is not None and language not in messages.SUPPORTED:
            log.warning("unknown channel language %r", value[:20], extra={"team": team_id})
            return
        await self.store.save_channel_language(team_id, language, user_id=user_id)
        log.info("channel language updated", extra={"team": team_id, "user": user_id})
        await self.publish_home(team_id, user_id, client)

    async def usergroup_id(self, client: AsyncWebClient, value: str) -> str | None:
        """A user group id as typed, or the id behind an ``@handle``."""
        if modals.is_usergroup_id(value):
            return value
        handle = value.lstrip("@").lower()
        try:
            groups = (await client.usergroups_list()).get("usergroups") or []
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("usergroups.list", slack_error(exc)).inc()
            return None
        return next((g["id"] for g in groups if str(g.get("handle", "")).lower() == handle), None)


@dataclass(eq=False, repr=False, kw_only=True)
class WorkspaceLeaving:
    """Uninstall and revoked tokens: nothing of that workspace stays behind, even after a crash.

    ``left`` records the departure before Slack gets its 200 (``bot.db.departures``); ``finish``
    stops this replica's timers, deletes every row in one transaction and drops the cached
    clients. A departure that failed or was cut short is finished by ``finish_pending`` at the
    next start, or by the sweep every ``sweep_seconds``. Other replicas stop polling the
    workspace when their lease heartbeat finds its shard gone, and drop its MetaStudio client
    within ``bot.services.connections.RECHECK_SECONDS``.
    """

    departures: Departures
    workspaces: WorkspaceStore | None
    followups: FollowUps
    metastudio: MetaStudioClients
    slack: SlackClients
    sweep_seconds: float = DEPARTURE_SWEEP_SECONDS

    async def left(self, team_id: str) -> None:
        await self.departures.record(team_id)

    async def finish(self, team_id: str) -> bool:
        """True when the workspace is gone; False leaves its departure for the next sweep."""
        await self.followups.forget_team(team_id)
        try:
            if not await self.departures.finish(team_id):
                return False  # finished already, or another replica is at it
        except Exception:
            log.exception("uninstall cleanup failed; the next sweep retries it", extra={"team": team_id})
            return False
        # Again: a heartbeat may have re-armed its watches from the rows while the delete waited.
        await self.followups.forget_team(team_id)
        if self.workspaces is not None:
            self.workspaces.forget_recorded(team_id)
        await self.metastudio.forget(team_id)
        self.slack.forget(team_id)
        log.info("workspace forgotten", extra={"team": team_id})
        return True

    async def finish_pending(self) -> None:
        """Finish every recorded departure (at start, and from the sweep)."""
        try:
            pending = await self.departures.pending()
        except Exception:
            log.exception("could not read pending uninstalls; the next sweep retries")
            return
        for team_id in pending:
            await self.finish(team_id)

    def start_sweeping(self) -> None:
        """Re-run ``finish_pending`` every ``sweep_seconds`` on the follow-ups' clock (an interval job)."""
        self.followups.scheduler.every(DEPARTURE_SWEEP_JOB, self.finish_pending, self.sweep_seconds)
