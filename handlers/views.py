"""Modal submissions: validate in the ack (field errors stay in the modal), save in the background."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.services.engine import Engine, Origin
from bot.slack import home


def _origin(body: dict[str, Any]) -> Origin:
    user = body.get("user") or {}
    return Origin(team_id=(body.get("team") or {}).get("id") or user.get("team_id"), channel_id=None, user_id=user.get("id"))


def _values(view: dict[str, Any]) -> dict[str, Any]:
    return (view.get("state") or {}).get("values") or {}


async def connection_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    engine: Engine = context["engine"]
    origin = _origin(body)
    if engine.workspaces is None:
        await ack()
        return
    existing = await engine.workspaces.get_connection(origin.team_id or "")
    parsed = home.parse_connection(_values(view), existing)
    if isinstance(parsed, dict):
        await ack(response_action="errors", errors=parsed)
        return
    await ack()
    engine.spawn(engine.admin.save_connection(origin, client, parsed))


async def guardrails_submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    engine: Engine = context["engine"]
    parsed = home.parse_guardrails(_values(view))
    if isinstance(parsed, dict):
        await ack(response_action="errors", errors=parsed)
        return
    channels, usergroup = parsed
    if usergroup and not home.is_usergroup_id(usergroup):
        # A handle must name a real group; resolving it is one quick call, inside the ack window.
        usergroup = await engine.admin.usergroup_id(client, usergroup)
        if usergroup is None:
            await ack(response_action="errors", errors={home.BLOCK_USERGROUP: messages.text("guardrails_usergroup_unknown")})
            return
    await ack()
    engine.spawn(engine.admin.save_guardrails(_origin(body), client, channels, usergroup))


def register(app: AsyncApp) -> None:
    app.view(home.CONNECTION_MODAL)(connection_submitted)
    app.view(home.GUARDRAILS_MODAL)(guardrails_submitted)
