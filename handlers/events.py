"""Events API listeners: App Home, and the workspace leaving (uninstall, revoked tokens)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.engine import Engine


async def home_opened(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext) -> None:
    if event.get("tab") not in (None, "home"):
        return
    engine: Engine = context["engine"]
    engine.spawn(engine.admin.publish_home(body.get("team_id") or "", event.get("user") or "", client))


async def workspace_left(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    """app_uninstalled and tokens_revoked: nothing of that workspace stays behind."""
    await ack()
    engine: Engine = context["engine"]
    if team_id := body.get("team_id"):
        engine.spawn(engine.forget_workspace(team_id))


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)
    app.event("app_uninstalled")(workspace_left)
    app.event("tokens_revoked")(workspace_left)
