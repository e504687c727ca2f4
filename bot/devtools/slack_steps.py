"""The Slack stand-in's Workflow Builder side: function executions and their completions.

``SlackStandIn.function_executed`` builds the signed event of one new function execution (an
``Execution``), with its own ``bot_access_token``: valid ``FUNCTION_TOKEN_SECONDS``, revoked when
the step completes, as Slack documents. ``functions.completeSuccess``/``completeError`` complete a running
execution once; after that they answer ``function_execution_not_found``, and for an execution
whose workflow was cancelled (``cancel_execution``) ``execution_not_in_running_state``.
``completions`` records each completion that took. ``SlackStandIn`` mixes this in.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["FUNCTION_TOKEN_SECONDS", "Completion", "Execution", "StepsStandIn"]


@dataclass
class Completion:
    """A step completion Slack accepted: ``functions.completeSuccess`` or ``completeError``."""

    method: str
    execution_id: str
    outputs: dict[str, Any] | None
    error: str | None
    token: str | None


@dataclass
class Execution:
    """One run of a step: ``running`` until completed, or ``cancelled`` with its workflow."""

    callback_id: str
    team_id: str
    token: str
    state: str = "running"


# What Slack gives a function's event token: 15 minutes, or until the step completes.
FUNCTION_TOKEN_SECONDS = 15 * 60


class StepsStandIn:
    """Workflow steps for ``SlackStandIn``, which provides the attributes declared here."""

    team_id: str
    executions: dict[str, Execution]
    completions: list[Completion]
    _changed: asyncio.Condition

    def revoke_token(self, token: str) -> None:
        raise NotImplementedError  # SlackStandIn's

    def cancel_execution(self, execution_id: str) -> None:
        """The workflow was cancelled (or the step timed out in Slack): it cannot complete any more."""
        self.executions[execution_id].state = "cancelled"

    def completions_of(self, execution_id: str) -> list[Completion]:
        return [c for c in self.completions if c.execution_id == execution_id]

    async def wait_for_completions(self, count: int, timeout: float = 5.0) -> list[Completion]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.completions) >= count), timeout)
        return self.completions

    async def _api_functions_completeSuccess(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._complete("functions.completeSuccess", params)

    async def _api_functions_completeError(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._complete("functions.completeError", params)

    async def _complete(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        token = params.pop("_token", None)
        execution_id = str(params.get("function_execution_id", ""))
        execution = self.executions.get(execution_id)
        if execution is None or execution.team_id != params["_team_id"] or execution.state == "done":
            return {"ok": False, "error": "function_execution_not_found"}
        if execution.state != "running":
            return {"ok": False, "error": "execution_not_in_running_state"}
        outputs = params.get("outputs")
        if isinstance(outputs, str):
            outputs = json.loads(outputs)
        if method == "functions.completeError" and not params.get("error"):
            return {"ok": False, "error": "invalid_arguments"}
        execution.state = "done"
        self.revoke_token(execution.token)
        async with self._changed:
            self.completions.append(
                Completion(
                    method,
                    execution_id,
                    outputs if method == "functions.completeSuccess" else None,
                    str(params.get("error")) if method == "functions.completeError" else None,
                    token,
                )
            )
            self._changed.notify_all()
        return {"ok": True}
