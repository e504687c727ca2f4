"""Buttons: ack at once, then the engine works in the background.

Cards: Refresh redraws in place, Open posts a task's card, Watch follows the task from its card.
The watching list: Stop ends a watch or the project feed. App Home and the connection modal:
Configure opens a modal, Test connection checks the values typed so far.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.commands import ShowTask, parse
from bot.services.engine import Engine, Origin
from bot.slack import alerts, cards, home


def _origin(body: dict[str, Any]) -> Origin:
    container = body.get("container") or {}
    return Origin(
        team_id=(body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id"),
        channel_id=container.get("channel_id") or (body.get("channel") or {}).get("id"),
        user_id=(body.get("user") or {}).get("id"),
        response_url=body.get("response_url"),
    )


def _task_id(action: dict[str, Any]) -> str | None:
    parsed = parse(str(action.get("value", "")))
    return parsed.task_id if isinstance(parsed, ShowTask) else None


def _card_ts(body: dict[str, Any]) -> str | None:
    container = body.get("container") or {}
    return None if container.get("is_ephemeral") else container.get("message_ts")


async def refresh(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    if task_id := _task_id(action):
        origin = _origin(body)
        engine.spawn(engine.refresh(task_id, origin, client, message_ts=_card_ts(body)), reply_to=origin)


async def open_task(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    if task_id := _task_id(action):
        engine.spawn(engine.run_command(ShowTask(task_id), _origin(body), client))


async def watch(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    if task_id := _task_id(action):
        origin = _origin(body)
        engine.spawn(engine.watch_button(task_id, origin, client, message_ts=_card_ts(body)), reply_to=origin)


async def stop_watch(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    engine: Engine = context["engine"]
    if task_id := _task_id(action):
        origin = _origin(body)
        engine.spawn(engine.stop_button(origin, task_id=task_id), reply_to=origin)


async def stop_feed(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
    await ack()
    engine: Engine = context["engine"]
    origin = _origin(body)
    engine.spawn(engine.stop_button(origin, task_id=None), reply_to=origin)


async def configure_connection(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    engine.spawn(engine.admin.open_connection_modal(_origin(body), client, trigger_id=body.get("trigger_id")))


async def configure_guardrails(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    engine.spawn(engine.admin.open_guardrails_modal(_origin(body), client, trigger_id=body.get("trigger_id")))


async def test_connection(
    ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    engine.spawn(engine.admin.test_connection(_origin(body), client, view=body.get("view") or {}))


def register(app: AsyncApp) -> None:
    app.action(cards.ACTION_REFRESH)(refresh)
    app.action(cards.ACTION_OPEN)(open_task)
    app.action(cards.ACTION_WATCH)(watch)
    app.action(alerts.ACTION_UNWATCH)(stop_watch)
    app.action(alerts.ACTION_UNSUBSCRIBE)(stop_feed)
    app.action(home.ACTION_CONFIGURE)(configure_connection)
    app.action(home.ACTION_GUARDRAILS)(configure_guardrails)
    app.action(home.ACTION_TEST_CONNECTION)(test_connection)
