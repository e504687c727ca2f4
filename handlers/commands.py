"""``/task``: parse, ack at once, and hand the rest to the engine in the background."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.services.commands import parse
from bot.services.engine import Engine, Origin


async def task_command(
    ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    engine: Engine = context["engine"]
    parsed = parse(command.get("text"))
    immediate = engine.immediate_reply(parsed)
    if immediate is not None:
        await ack(text=immediate.text, response_type="ephemeral")
        return
    await ack()
    origin = Origin(
        team_id=command.get("team_id"),
        channel_id=command.get("channel_id"),
        user_id=command.get("user_id"),
        response_url=command.get("response_url"),
    )
    engine.spawn(engine.run_command(parsed, origin, client))


def register(app: AsyncApp) -> None:
    app.command("/task")(task_command)
