"""Modal submissions: validate in the ack (field errors stay in the modal), save in the background."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.services.admin import WorkspaceAdmin
from bot.services.background import Background
from bot.services.languages import Languages
from bot.slack import home
from bot.slack.origin import origin_from_body


def _values(view: dict[str, Any]) -> dict[str, Any]:
    return (view.get("state") or {}).get("values") or {}


def _locale(body: dict[str, Any], context: AsyncBoltContext) -> str:
    """The submitter's language from the cache (opening the modal learnt it): the ack waits for nothing."""
    origin = origin_from_body(body)
    languages: Languages = context["languages"]
    return languages.cached(origin.team_id or "", origin.user_id or "")


async def connection_submitted(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    admin: WorkspaceAdmin | None = context["admin"]
    if admin is None:
        await ack()
        return
    origin = origin_from_body(body)
    existing = await admin.store.get_connection(origin.team_id or "")
    parsed = home.parse_connection(
        _values(view), existing, locale=_locale(body, context), endpoints=admin.endpoint_policy
    )
    if isinstance(parsed, dict):
        await ack(response_action="errors", errors=parsed)
        return
    await ack()
    background: Background = context["background"]
    background.spawn(admin.save_connection(origin, client, parsed))


async def guardrails_submitted(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    admin: WorkspaceAdmin | None = context["admin"]
    if admin is None:
        await ack()
        return
    locale = _locale(body, context)
    parsed = home.parse_guardrails(_values(view), locale=locale)
    if isinstance(parsed, dict):
        await ack(response_action="errors", errors=parsed)
        return
    channels, usergroup = parsed
    if usergroup and not home.is_usergroup_id(usergroup):
        # A handle must name a real group; resolving it is one quick call, inside the ack window.
        usergroup = await admin.usergroup_id(client, usergroup)
        if usergroup is None:
            await ack(
                response_action="errors",
                errors={home.BLOCK_USERGROUP: messages.text("guardrails_usergroup_unknown", locale)},
            )
            return
    await ack()
    background: Background = context["background"]
    background.spawn(admin.save_guardrails(origin_from_body(body), client, channels, usergroup))


def register(app: AsyncApp) -> None:
    app.view(home.CONNECTION_MODAL)(connection_submitted)
    app.view(home.GUARDRAILS_MODAL)(guardrails_submitted)
