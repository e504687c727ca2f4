"""Events API listeners: App Home, and the workspace leaving (uninstall, revoked tokens)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.aio.background import Background
from bot.services.admin import WorkspaceAdmin, WorkspaceLeaving
from bot.slack.clients import CoalescedAuthorize
from bot.slack.origin import Origin


async def home_opened(
    event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    admin: WorkspaceAdmin | None = context["admin"]
    if event.get("tab") not in (None, "home") or admin is None:
        return  # one workspace configured by environment: nothing to administer in Slack
    background: Background[Origin] = context["background"]
    background.spawn(admin.publish_home(body.get("team_id") or "", event.get("user") or "", client))


async def workspace_left(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """app_uninstalled: nothing of that workspace stays behind.

    The departure is recorded before this returns, so before Slack gets its 200 (listeners
    run before the response): Slack never redelivers an acknowledged event, and the record is
    what a later start or sweep finishes if this process dies first.
    """
    await ack()
    leaving: WorkspaceLeaving = context["leaving"]
    if team_id := body.get("team_id"):
        authorize: CoalescedAuthorize | None = context.get("authorize")
        if authorize is not None:
            authorize.forget(team_id)
        await leaving.left(team_id)
        context["background"].spawn(leaving.finish(team_id))


async def tokens_revoked(
    ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
) -> None:
    """Only a revoked bot token ends the workspace; a user revoking their own token does not.

    Slack lists revoked tokens by kind, ``{"tokens": {"oauth": [user ids], "bot": [bot user ids]}}``;
    taskbot holds no user tokens, so an ``oauth``-only revocation changes nothing here.
    """
    tokens = event.get("tokens")
    bot = tokens.get("bot") if isinstance(tokens, dict) else None
    if isinstance(bot, list) and bot:
        await workspace_left(ack, body, context)
    else:
        await ack()


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)
    app.event("app_uninstalled")(workspace_left)
    app.event("tokens_revoked")(tokens_revoked)
