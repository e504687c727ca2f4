"""Buttons: ack at once, then the work runs in the background.

Cards: Refresh redraws in place, Open posts a task's card, Watch follows the task from its card.
The watching list: Stop ends a watch or the project feed. App Home and the connection modal:
Configure opens a modal, Test connection checks the values typed so far, and the channel
language menu saves at once.

Each listener is built by one of two factories, so every button acks first, reads its origin
the same way and hands its work to ``Background``; the table in ``register`` says which use
case each button runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.aio.background import Background
from bot.services.admin import WorkspaceAdmin
from bot.services.commands import CommandRunner
from bot.services.parsing import ShowTask, parse
from bot.slack import ids
from bot.slack.origin import Origin, origin_from_body

Listener = Callable[..., Awaitable[None]]
Work = Coroutine[Any, Any, Any]
TaskWork = Callable[[CommandRunner, str, Origin, AsyncWebClient, dict[str, Any]], Work]
AdminWork = Callable[[WorkspaceAdmin, Origin, AsyncWebClient, dict[str, Any], dict[str, Any]], Work]
Start = Callable[[dict[str, Any], dict[str, Any], AsyncWebClient, AsyncBoltContext], None]
"""``(body, action, client, context)``, once the button is acked: hands the work to ``Background``."""


def _task_id(action: dict[str, Any]) -> str | None:
    parsed = parse(str(action.get("value", "")))
    return parsed.task_id if isinstance(parsed, ShowTask) else None


def _card_ts(body: dict[str, Any]) -> str | None:
    container = body.get("container") or {}
    return None if container.get("is_ephemeral") else container.get("message_ts")


def _acked(start: Start) -> Listener:
    """The one listener Bolt calls for every button (it passes arguments by name): ack, then start."""

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        client: AsyncWebClient,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        start(body, action, client, context)

    return listener


def on_task(work: TaskWork, *, needs_task: bool = True) -> Listener:
    """A button about one task (its id is the button's value); failures answer whoever pressed it."""

    def start(
        body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        task_id = _task_id(action)
        if needs_task and task_id is None:
            return
        origin = origin_from_body(body)
        background: Background[Origin] = context["background"]
        background.spawn(work(context["commands"], task_id or "", origin, client, body), reply_to=origin)

    return _acked(start)


def on_admin(work: AdminWork) -> Listener:
    """An App Home or modal button; there is nothing to administer with one workspace."""

    def start(
        body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        admin: WorkspaceAdmin | None = context["admin"]
        if admin is not None:
            background: Background[Origin] = context["background"]
            background.spawn(work(admin, origin_from_body(body), client, body, action))

    return _acked(start)


def register(app: AsyncApp) -> None:
    buttons: dict[str, Listener] = {
        ids.ACTION_REFRESH: on_task(
            lambda run, task, origin, client, body: run.refresh(
                task, origin, client, message_ts=_card_ts(body)
            )
        ),
        ids.ACTION_OPEN: on_task(
            lambda run, task, origin, client, _: run.run(ShowTask(task), origin, client)
        ),
        ids.ACTION_WATCH: on_task(
            lambda run, task, origin, client, body: run.watch_button(
                task, origin, client, message_ts=_card_ts(body)
            )
        ),
        ids.ACTION_UNWATCH: on_task(
            lambda run, task, origin, client, _: run.stop_button(origin, client, task_id=task)
        ),
        ids.ACTION_UNSUBSCRIBE: on_task(
            lambda run, _, origin, client, __: run.stop_button(origin, client, task_id=None), needs_task=False
        ),
        ids.ACTION_CONFIGURE: on_admin(
            lambda admin, origin, client, body, _: admin.open_connection_modal(
                origin, client, trigger_id=body.get("trigger_id")
            )
        ),
        ids.ACTION_GUARDRAILS: on_admin(
            lambda admin, origin, client, body, _: admin.open_guardrails_modal(
                origin, client, trigger_id=body.get("trigger_id")
            )
        ),
        ids.ACTION_TEST_CONNECTION: on_admin(
            lambda admin, origin, client, body, _: admin.test_connection(
                origin, client, view=body.get("view") or {}
            )
        ),
        # The channel-language menu in App Home: saved at once, like a setting, and audited.
        ids.ACTION_CHANNEL_LANGUAGE: on_admin(
            lambda admin, origin, client, _, action: admin.save_channel_language(
                origin, client, str((action.get("selected_option") or {}).get("value") or "")
            )
        ),
    }
    for action_id, listener in buttons.items():
        app.action(action_id)(listener)
