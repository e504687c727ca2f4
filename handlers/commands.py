"""``/task``: parse, ack at once, and hand the rest to the command runner in the background."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.aio.background import Background
from bot.services.commands import CommandRunner, immediate_reply
from bot.services.languages import Languages
from bot.services.parsing import parse
from bot.slack.ids import COMMAND_TASK
from bot.slack.origin import Origin, origin_from_body


async def task_command(
    ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
) -> None:
    languages: Languages = context["languages"]
    team_id, user_id = str(command.get("team_id") or ""), str(command.get("user_id") or "")
    # The cache only: help and parse errors go in the ack, before anything may ask Slack.
    locale = languages.cached(team_id, user_id)
    parsed = parse(command.get("text"), locale=locale)
    immediate = immediate_reply(parsed, locale=locale)
    if immediate is not None:
        await ack(text=immediate.text, response_type="ephemeral")
        # After the ack: the next reply to a user seen for the first time is in their language.
        languages.prefetch(client, team_id, user_id)
        return
    await ack()
    runner: CommandRunner = context["commands"]
    background: Background[Origin] = context["background"]
    background.spawn(runner.run(parsed, origin_from_body(command), client))


def register(app: AsyncApp) -> None:
    app.command(COMMAND_TASK)(task_command)
