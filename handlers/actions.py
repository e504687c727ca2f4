"""Buttons: ack at once, then the work runs in the background.

Cards: Refresh redraws in place, Open posts a task's card, Watch follows the task from its card.
The watching list: Stop ends a watch or the project feed. App Home and the connection modal:
Configure opens a modal, Test connection checks the values typed so far.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.admin import WorkspaceAdmin
from bot.services.background import Background
from bot.services.commands import CommandRunner
from bot.services.parsing import ShowTask, parse
from bot.slack import alerts, cards, home
from bot.slack.origin import origin_from_body


def _task_id(action: dict[str, Any]) -> str | None:
    parsed = parse(str(action.get("value", "")))
    return parsed.task_id if isinstance(parsed, ShowTask) else None


def _card_ts(body: dict[str, Any]) -> str | None:
    container = body.get("container") or {}
    return None if container.get("is_ephemeral") else container.get("message_ts")


async def refresh(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    runner: CommandRunner = context["commands"]
    if task_id := _task_id(action):
        origin = origin_from_body(body)
        context["background"].spawn(
            runner.refresh(task_id, origin, client, message_ts=_card_ts(body)), reply_to=origin
        )


async def open_task(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    runner: CommandRunner = context["commands"]
    if task_id := _task_id(action):
        context["background"].spawn(runner.run(ShowTask(task_id), origin_from_body(body), client))


async def watch(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    runner: CommandRunner = context["commands"]
    if task_id := _task_id(action):
        origin = origin_from_body(body)
        context["background"].spawn(
            runner.watch_button(task_id, origin, client, message_ts=_card_ts(body)), reply_to=origin
        )


async def stop_watch(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    await ack()
    runner: CommandRunner = context["commands"]
    if task_id := _task_id(action):
        origin = origin_from_body(body)
        context["background"].spawn(runner.stop_button(origin, client, task_id=task_id), reply_to=origin)


async def stop_feed(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    runner: CommandRunner = context["commands"]
    origin = origin_from_body(body)
    context["background"].spawn(runner.stop_button(origin, client, task_id=None), reply_to=origin)


def _admin_work(context: AsyncBoltContext) -> tuple[WorkspaceAdmin | None, Background]:
    return context["admin"], context["background"]


async def configure_connection(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    admin, background = _admin_work(context)
    if admin is not None:
        background.spawn(
            admin.open_connection_modal(origin_from_body(body), client, trigger_id=body.get("trigger_id"))
        )


async def configure_guardrails(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    admin, background = _admin_work(context)
    if admin is not None:
        background.spawn(
            admin.open_guardrails_modal(origin_from_body(body), client, trigger_id=body.get("trigger_id"))
        )


async def channel_language(
    ack: AsyncAck,
    body: dict[str, Any],
    action: dict[str, Any],
    client: AsyncWebClient,
    context: AsyncBoltContext,
) -> None:
    """The channel-language menu in App Home: saved at once, like a setting, and audited."""
    await ack()
    admin, background = _admin_work(context)
    if admin is not None:
        value = str((action.get("selected_option") or {}).get("value") or "")
        background.spawn(admin.save_channel_language(origin_from_body(body), client, value))


async def test_connection(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    admin, background = _admin_work(context)
    if admin is not None:
        background.spawn(admin.test_connection(origin_from_body(body), client, view=body.get("view") or {}))


def register(app: AsyncApp) -> None:
    app.action(cards.ACTION_REFRESH)(refresh)
    app.action(cards.ACTION_OPEN)(open_task)
    app.action(cards.ACTION_WATCH)(watch)
    app.action(alerts.ACTION_UNWATCH)(stop_watch)
    app.action(alerts.ACTION_UNSUBSCRIBE)(stop_feed)
    app.action(home.ACTION_CONFIGURE)(configure_connection)
    app.action(home.ACTION_GUARDRAILS)(configure_guardrails)
    app.action(home.ACTION_TEST_CONNECTION)(test_connection)
    app.action(home.ACTION_CHANNEL_LANGUAGE)(channel_language)
