"""The two Workflow Builder steps as Slack sees them: the run, outputs, failure sentences.

``get_task`` and ``wait_for_task`` are declared in ``manifest.yaml`` under ``functions`` (their
callback ids are ``bot.slack.ids.GET_TASK`` and ``WAIT_FOR_TASK``); their
outputs are the same, built here from a ``Task`` (one home, so a finished ``wait_for_task``
and a ``get_task`` of the same task give the same values). Workflow Builder shows a failed
step's error to the person who ran the workflow, so every failure is one catalog sentence.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot import messages
from bot.metastudio.models import Task
from bot.slack.blocks import quoted

__all__ = [
    "OUTPUT_NAMES",
    "StepRun",
    "expired_sentence",
    "not_found_sentence",
    "outputs",
    "step_run",
]

OUTPUT_NAMES: Final = (
    "task_name",
    "status_code",
    "finished",
    "total_count",
    "success_count",
    "failure_count",
    "success_rate",
    "begin_time",
    "end_time",
    "operator",
    "resource",
)
_ECHO_LIMIT: Final = 40


def outputs(task: Task, finished_codes: frozenset[str]) -> dict[str, Any]:
    """The step's outputs; a value MetaStudio did not give is left out, never sent as null.

    ``success_rate`` is the percentage of the task's items that succeeded (0 to 100, one
    decimal), absent while the total is unknown; times are Unix seconds (``slack#/types/timestamp``).
    """
    values: dict[str, Any] = {
        "task_name": task.task_name,
        "status_code": task.task_status,
        "finished": task.is_finished(finished_codes),
        "total_count": task.total_count,
        "success_count": task.success_count,
        "failure_count": task.failure_count,
        "success_rate": round(100 * task.success_count / task.total_count, 1)
        if task.total_count > 0
        else None,
        "begin_time": task.begin_time // 1000 if task.begin_time else None,
        "end_time": task.end_time // 1000 if task.end_time else None,
        "operator": task.operator,
        "resource": task.resource,
    }
    return {name: value for name, value in values.items() if value is not None}


def expired_sentence(task_id: str, locale: str) -> str:
    return messages.text("step_expired", locale, task_id=quoted(task_id, _ECHO_LIMIT))


def not_found_sentence(task_id: str, locale: str) -> str:
    return messages.text("step_task_gone", locale, task_id=quoted(task_id, _ECHO_LIMIT))


@dataclass(frozen=True, slots=True)
class StepRun:
    """One ``function_executed`` event of our steps, as the use cases need it."""

    callback_id: str
    """``GET_TASK`` or ``WAIT_FOR_TASK``."""
    team_id: str
    execution_id: str
    task_id: str
    user_id: str | None
    """Who ran the workflow, when the workflow gives the step its ``user`` input (Slack says
    who only then: the event itself names no person)."""
    timeout_hours: float | None
    """As the workflow gave it; None when not given; NaN when it is not a number."""


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _hours(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        hours = float(value)
    except (TypeError, ValueError):
        return math.nan
    return hours if math.isfinite(hours) else math.nan


def step_run(body: Mapping[str, Any]) -> StepRun:
    """Read a ``function_executed`` Events API body. ``user`` is a ``slack#/types/user_context``
    (``{"id": ...}``) or, from older workflows, a plain user id."""
    event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
    assert isinstance(event, Mapping)
    inputs = event.get("inputs") if isinstance(event.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    user = inputs.get("user")
    user_id = _text(user.get("id")) if isinstance(user, Mapping) else _text(user)
    function = event.get("function") if isinstance(event.get("function"), Mapping) else {}
    assert isinstance(function, Mapping)
    return StepRun(
        callback_id=_text(function.get("callback_id")),
        team_id=_text(body.get("team_id")),
        execution_id=_text(event.get("function_execution_id")),
        task_id=_text(inputs.get("task_id")),
        user_id=user_id or None,
        timeout_hours=_hours(inputs.get("timeout_hours")),
    )
