"""The OAuth install flow: Bolt's, limited to installs into one workspace at a time.

Org-wide Enterprise Grid installs (``is_enterprise_install``) are refused with a page that says
what to do instead. Everything taskbot keeps is per workspace (the MetaStudio connection,
guardrails, watches, which replica polls), and an org-wide install names no workspace: its
token is revoked at once and nothing is stored. A workspace inside an org installs as usual.
"""

from __future__ import annotations

import html
import logging
from typing import Final

from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import AsyncFailureArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store import Installation

from bot import messages
from bot.db.departures import Departures
from bot.metrics import SLACK_API_ERRORS
from bot.slack.delivery import slack_error

__all__ = ["OrgWideInstallRefused", "WorkspaceInstallFlow"]

log = logging.getLogger("taskbot.oauth")

_PAGE: Final = (
    '<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>taskbot</title></head>'
    "<body><p>{sentence}</p></body></html>"
)


class OrgWideInstallRefused(BoltError):
    """An org admin installed taskbot for a whole Enterprise Grid org."""


class DepartureUnfinished(BoltError):
    """The workspace left before and its cleanup could not be finished now."""


class WorkspaceInstallFlow(AsyncOAuthFlow):
    """Bolt's flow, workspaces only; a workspace coming back first finishes its last departure,
    so a later sweep cannot delete the new installation (``bot.db.departures``)."""

    def __init__(
        self, *, settings: AsyncOAuthSettings, departures: Departures, logger: logging.Logger | None = None
    ) -> None:
        super().__init__(settings=settings, logger=logger)
        self._departures = departures
        self._default_failure = self.failure_handler
        self.failure_handler = self._failure

    async def store_installation(self, request: AsyncBoltRequest, installation: Installation) -> None:
        if installation.is_enterprise_install:
            await self._revoke(installation.bot_token)
            log.warning("refused an org-wide install", extra={"team": installation.enterprise_id})
            raise OrgWideInstallRefused("org-wide installs are not supported")
        if installation.team_id:
            try:
                await self._departures.finish(installation.team_id)
            except Exception as exc:
                log.exception("could not finish the last uninstall before a new install")
                raise DepartureUnfinished("the last uninstall is not finished") from exc
        await super().store_installation(request, installation)

    async def _revoke(self, token: str | None) -> None:
        """Hand back the token of a refused install, so no unused credential lives at Slack."""
        if not token:
            return
        try:
            await self.client.auth_revoke(token=token)
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("auth.revoke", slack_error(exc)).inc()

    async def _failure(self, args: AsyncFailureArgs) -> BoltResponse:
        if not isinstance(args.error, OrgWideInstallRefused):
            return await self._default_failure(args)
        languages = args.request.headers.get("accept-language") or [""]
        locale = messages.resolve(languages[0].split(",")[0].split(";")[0].strip() or None)
        page = _PAGE.format(
            lang=locale, sentence=html.escape(messages.text("install_org_wide_refused", locale))
        )
        return BoltResponse(status=400, body=page, headers={"Content-Type": "text/html; charset=utf-8"})
