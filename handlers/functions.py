"""Workflow Builder steps (``function_executed``): parse, ack, hand over.

Bolt acks the event itself (``auto_acknowledge``); the step's work runs in the background with
Bolt's ``complete``/``fail``, which carry the event's own token (``bot.services.steps``).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.context.complete.async_complete import AsyncComplete
from slack_bolt.context.fail.async_fail import AsyncFail
from slack_sdk.web.async_client import AsyncWebClient

from bot.aio.background import Background
from bot.services.steps import WorkflowSteps
from bot.slack.ids import GET_TASK, WAIT_FOR_TASK
from bot.slack.origin import Origin
from bot.slack.steps import step_run


async def step_executed(
    body: dict[str, Any],
    client: AsyncWebClient,
    complete: AsyncComplete,
    fail: AsyncFail,
    context: AsyncBoltContext,
) -> None:
    workflow_steps: WorkflowSteps = context["steps"]
    background: Background[Origin] = context["background"]
    background.spawn(workflow_steps.run(step_run(body), client, complete, fail))


def register(app: AsyncApp) -> None:
    for callback_id in (GET_TASK, WAIT_FOR_TASK):
        app.function(callback_id)(step_executed)
