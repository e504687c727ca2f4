"""Buttons on cards: ack at once; Refresh redraws the card in place, Open posts a task's card."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot import cards
from bot.commands import Invalid, ShowTask, parse
from bot.engine import Engine, Origin


def _origin(body: dict[str, Any]) -> Origin:
    container = body.get("container") or {}
    return Origin(
        team_id=(body.get("team") or {}).get("id"),
        channel_id=container.get("channel_id") or (body.get("channel") or {}).get("id"),
        user_id=(body.get("user") or {}).get("id"),
        response_url=body.get("response_url"),
    )


def _task_id(action: dict[str, Any]) -> ShowTask | Invalid:
    parsed = parse(str(action.get("value", "")))
    return parsed if isinstance(parsed, ShowTask | Invalid) else Invalid("")


async def refresh(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    command = _task_id(action)
    if isinstance(command, ShowTask):
        container = body.get("container") or {}
        message_ts = None if container.get("is_ephemeral") else container.get("message_ts")
        engine.spawn(engine.refresh(command.task_id, _origin(body), client, message_ts=message_ts))


async def open_task(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    await ack()
    engine: Engine = context["engine"]
    command = _task_id(action)
    if isinstance(command, ShowTask):
        engine.spawn(engine.run_command(command, _origin(body), client))


def register(app: AsyncApp) -> None:
    app.action(cards.ACTION_REFRESH)(refresh)
    app.action(cards.ACTION_OPEN)(open_task)
