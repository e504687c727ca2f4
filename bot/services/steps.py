"""Workflow Builder steps: ``get_task`` answers at once, ``wait_for_task`` waits in a watch.

``get_task`` reads the task like ``/task <id>`` (the command slots, ``Priority.COMMAND``) and
completes with its outputs, or fails with one sentence. ``wait_for_task`` reads it once the
same way (so a missing task, connection or permission fails at once), completes at once when
the task is already finished, and otherwise becomes one more subscriber of the task's watch,
whose "channel" is the function execution: the watch's single poll serves it with every
channel, and the outbox completes it exactly once (``bot.followups.outbox``), with the
workspace's bot token, however long the task takes.

Immediate answers go through Bolt's ``complete``/``fail``, which carry the event's own token:
it is valid for 15 minutes after the event, far longer than one read takes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.config import Settings
from bot.followups import FollowUps
from bot.metastudio.errors import MetaStudioError
from bot.services.access import Access
from bot.services.languages import Languages
from bot.services.tasks import TaskViews
from bot.slack import steps
from bot.slack.delivery import slack_error
from bot.slack.ids import WAIT_FOR_TASK
from bot.slack.origin import Origin

__all__ = ["Complete", "Fail", "WorkflowSteps"]

log = logging.getLogger("taskbot.services")

Complete = Callable[[dict[str, Any]], Awaitable[Any]]
"""Bolt's ``complete``: ``functions.completeSuccess`` with these outputs."""
Fail = Callable[[str], Awaitable[Any]]
"""Bolt's ``fail``: ``functions.completeError`` with this sentence."""


@dataclass(eq=False, repr=False)
class WorkflowSteps:
    settings: Settings
    followups: FollowUps
    tasks: TaskViews
    _: KW_ONLY
    access: Access
    languages: Languages

    async def run(self, run: steps.StepRun, client: AsyncWebClient, complete: Complete, fail: Fail) -> None:
        """Run one step event: answer it now, or (a task still running) leave it to its watch.

        Whatever goes wrong inside taskbot, the workflow gets one sentence, not a silent wait.
        """
        try:
            await self._run(run, client, complete, fail)
        except Exception:
            log.exception("%s step failed inside taskbot", run.callback_id, extra=_extra(run))
            await _finish(run, fail(messages.text("error_internal", messages.DEFAULT_LOCALE)))

    async def _run(self, run: steps.StepRun, client: AsyncWebClient, complete: Complete, fail: Fail) -> None:
        origin = await self._origin(run, client)
        refusal = await self.access.step_refusal(run.team_id, run.user_id, origin.locale, client)
        if refusal is not None:
            await _finish(run, fail(refusal))
            return
        waits = run.callback_id == WAIT_FOR_TASK
        most = self.settings.watch_max_hours
        hours = most if run.timeout_hours is None else run.timeout_hours
        if waits and (math.isnan(hours) or not 0 < hours <= most):
            await _finish(run, fail(messages.text("step_invalid_timeout", origin.locale, hours=f"{most:g}")))
            return
        try:
            task, _ = await self.tasks.fetch(run.task_id, origin)
        except MetaStudioError as exc:
            log.info("%s step failed: %s", run.callback_id, type(exc).__name__, extra=_extra(run))
            await _finish(run, fail(self.tasks.error_sentence(exc, origin.locale)))
            return
        if not waits or task.is_finished(self.settings.finished_codes):
            await _finish(run, complete(steps.outputs(task, self.settings.finished_codes)))
            return
        await self.followups.watch(
            team_id=run.team_id,
            task_id=run.task_id,
            channel_id=run.execution_id,
            user_id=run.user_id or "",
            locale=origin.locale,
            step_expires_at=datetime.now(UTC) + timedelta(hours=hours),
        )

    async def _origin(self, run: steps.StepRun, client: AsyncWebClient) -> Origin:
        """The workflow's language: its runner's when Slack says who, else the workspace's."""
        origin = Origin(team_id=run.team_id, channel_id=None, user_id=run.user_id)
        if run.user_id:
            return await self.languages.person(origin, client)
        setting = await self.languages.channel_setting(run.team_id)
        return Origin(
            team_id=run.team_id, channel_id=None, user_id=None, locale=setting or messages.DEFAULT_LOCALE
        )


async def _finish(run: steps.StepRun, call: Awaitable[Any]) -> None:
    """Complete or fail now; Slack refusing (the workflow was cancelled meanwhile) is only logged."""
    try:
        await call
    except SlackApiError as exc:
        log.warning("step could not be completed: %s", slack_error(exc), extra=_extra(run))


def _extra(run: steps.StepRun) -> dict[str, str]:
    return {"team": run.team_id, "task_id": run.task_id, "execution": run.execution_id}
