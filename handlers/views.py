"""Modal submissions: validate in the ack (field errors stay in the modal), save in the background."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.aio.background import Background
from bot.services.admin import WorkspaceAdmin
from bot.services.languages import Languages
from bot.slack import ids, modals
from bot.slack.origin import Origin, origin_from_body

Errors = dict[str, str]
Save = Callable[[], Coroutine[Any, Any, None]]
Check = Callable[[WorkspaceAdmin, Origin, dict[str, Any], str, AsyncWebClient], Awaitable[Errors | Save]]
"""``(admin, origin, values, locale, client)`` -> the field errors to show, or the save to run."""


def on_submit(check: Check) -> Callable[..., Awaitable[None]]:
    """A settings modal's listener; there is nothing to administer with one workspace."""

    async def listener(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        admin: WorkspaceAdmin | None = context["admin"]
        if admin is None:
            await ack()
            return
        origin = origin_from_body(body)
        # The submitter's language from the cache (opening the modal learnt it): the ack waits for nothing.
        languages: Languages = context["languages"]
        locale = languages.cached(origin.team_id or "", origin.user_id or "")
        values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
        outcome = await check(admin, origin, values, locale, client)
        if isinstance(outcome, dict):
            await ack(response_action="errors", errors=outcome)
            return
        await ack()
        background: Background[Origin] = context["background"]
        background.spawn(outcome())

    return listener


async def check_connection(
    admin: WorkspaceAdmin, origin: Origin, values: dict[str, Any], locale: str, client: AsyncWebClient
) -> Errors | Save:
    existing = await admin.store.get_connection(origin.team_id or "")
    parsed = modals.parse_connection(values, existing, locale=locale, endpoints=admin.endpoint_policy)
    if isinstance(parsed, dict):
        return parsed
    return lambda: admin.save_connection(origin, client, parsed)


async def check_guardrails(
    admin: WorkspaceAdmin, origin: Origin, values: dict[str, Any], locale: str, client: AsyncWebClient
) -> Errors | Save:
    parsed = modals.parse_guardrails(values, locale=locale)
    if isinstance(parsed, dict):
        return parsed
    channels, usergroup = parsed
    if usergroup and not modals.is_usergroup_id(usergroup):
        # A handle must name a real group; resolving it is one quick call, inside the ack window.
        resolved = await admin.usergroup_id(client, usergroup)
        if resolved is None:
            return {ids.GuardrailsInput.USERGROUP: messages.text("guardrails_usergroup_unknown", locale)}
        usergroup = resolved
    return lambda: admin.save_guardrails(origin, client, channels, usergroup)


def register(app: AsyncApp) -> None:
    app.view(ids.CONNECTION_MODAL)(on_submit(check_connection))
    app.view(ids.GUARDRAILS_MODAL)(on_submit(check_guardrails))
