"""``wait_for_task`` completes exactly once across ``kill -9``, restarts and replicas.

``taskbot serve`` runs as a real process (``tests/test_crash_recovery.py``'s ``BotProcess``);
the step arrives as a signed ``function_executed`` event over HTTP, and the Slack stand-in
accepts one completion per function execution, as Slack does. The stand-in can record a
completion and then hold its answer: the step is complete in Slack, the bot has not recorded
it, which is the window the outbox guards.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.deliveries import STEP, DeliveryRow
from bot.db.followups import SubscriberRow
from bot.devtools.slack_standin import DEMO_BOT_TOKEN
from bot.devtools.slack_steps import Completion
from bot.slack.ids import WAIT_FOR_TASK
from tests.databases import open_database
from tests.support.waiting import eventually
from tests.test_crash_recovery import SIGNING_SECRET, BotProcess, Cloud, add_tasks, cloud, two_bots  # noqa: F401
from tests.test_replicas import Fleet, fleet  # noqa: F401 - fleet is a fixture


async def run_step(bot: BotProcess, http: httpx.AsyncClient, task_id: str) -> str:
    """Send ``wait_for_task`` to ``bot``; its function execution id, once the step is stored."""
    body, headers, execution = bot.cloud.slack.function_executed(
        SIGNING_SECRET, WAIT_FOR_TASK, {"task_id": task_id}
    )
    response = await http.post(f"{bot.url}/slack/events", content=body, headers=headers)
    assert response.status_code == 200
    await eventually(lambda: stored(bot.env["DATABASE_URL"], execution), within=10, what="the step stored")
    return execution


async def stored(database_url: str, execution: str) -> bool:
    async with open_database(database_url) as database, AsyncSession(database.engine) as session:
        row = await session.scalar(select(SubscriberRow).where(SubscriberRow.channel_id == execution))
        return row is not None and row.target == STEP


async def step_deliveries(database_url: str) -> list[DeliveryRow]:
    async with open_database(database_url) as database, AsyncSession(database.engine) as session:
        return list((await session.scalars(select(DeliveryRow).where(DeliveryRow.target == STEP))).all())


def assert_completed_once_with_outputs(stack: Cloud, execution: str, task_id: str) -> Completion:
    [completion] = stack.slack.completions_of(execution)
    assert completion.method == "functions.completeSuccess"
    outputs: dict[str, Any] = completion.outputs or {}
    snapshot = stack.simulator.snapshot(task_id)
    assert outputs["finished"] is True
    assert outputs["task_name"] == snapshot["task_name"]
    assert outputs["total_count"] == 500
    assert outputs["success_count"] + outputs["failure_count"] == 500
    assert outputs["resource"] == snapshot["resource"]
    assert completion.token == DEMO_BOT_TOKEN
    return completion


async def test_sigkill_while_the_task_runs_then_restart_completes_the_step_once(
    cloud: Cloud,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    async with two_bots(cloud, database_url, tmp_path) as (first, second, http):
        await first.start(http)
        [task_id] = add_tasks(cloud.simulator, [6.0])
        execution = await run_step(first, http, task_id)
        first.send(signal.SIGKILL)
        assert await first.wait(5) == -signal.SIGKILL
        assert cloud.slack.completions == []  # the task was still running

        await second.start(http)
        await eventually(lambda: cloud.slack.completions, within=30, what="the completion")
        await asyncio.sleep(1.5)  # several poll rounds: nothing completes it again
        assert_completed_once_with_outputs(cloud, execution, task_id)
        [row] = await step_deliveries(database_url)
        assert row.status == "sent" and row.channel_id == execution
    assert "Traceback" not in first.log() + second.log()


class HoldingStepSlack:
    """Makes the cloud's stand-in hold its answer to ``functions.completeSuccess`` after recording it."""

    def __init__(self, stack: Cloud) -> None:
        self.held = asyncio.Event()
        self.release = stack.slack.released
        original = stack.slack._api_functions_completeSuccess

        async def holding(params: dict[str, Any]) -> dict[str, Any]:
            result = await original(params)
            self.held.set()
            await self.release.wait()
            return result

        stack.slack._api_functions_completeSuccess = holding  # type: ignore[method-assign]


async def test_sigkill_after_slack_accepted_the_completion_does_not_complete_twice(
    cloud: Cloud,  # noqa: F811
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    holding = HoldingStepSlack(cloud)
    async with two_bots(cloud, sqlite_url, tmp_path) as (first, second, http):
        await first.start(http)
        [task_id] = add_tasks(cloud.simulator, [2.0])
        execution = await run_step(first, http, task_id)
        await asyncio.wait_for(holding.held.wait(), 20)
        first.send(signal.SIGKILL)
        assert await first.wait(5) == -signal.SIGKILL
        [row] = await step_deliveries(sqlite_url)
        assert row.status == "sending"  # in Slack, not recorded here
        holding.release.set()

        await second.start(http)

        async def recorded() -> bool:
            return [r.status for r in await step_deliveries(sqlite_url)] == ["sent"]

        await eventually(recorded, within=30, what="the completion recorded")
        assert "already completed; not completing again" in second.log()
    assert_completed_once_with_outputs(cloud, execution, task_id)
    # The second process asked once more and was told the execution is done.
    assert len(cloud.slack.calls_to("functions.completeSuccess")) == 2
    assert "Traceback" not in first.log() + second.log()


@pytest.mark.postgres
async def test_two_replicas_the_owner_killed_the_step_completes_once(fleet: Fleet) -> None:  # noqa: F811
    stack = fleet.cloud
    async with httpx.AsyncClient(timeout=10) as http:
        r1 = await fleet.add("r1", http)
        await fleet.add("r2", http)
        [task_id] = add_tasks(stack.simulator, [8.0])
        # Sent to r1; whichever replica owns the workspace polls and completes it.
        execution = await run_step(r1, http, task_id)
        owners = await eventually(fleet.owners, within=10, what="the workspace owned")
        owner = next(iter(owners.values()))
        await eventually(
            lambda: any(p[1] == owner and p[2] == task_id for p in fleet.polls), within=10, what="a poll"
        )
        fleet.replicas[owner].send(signal.SIGKILL)
        assert await fleet.replicas[owner].wait(5) == -signal.SIGKILL
        survivor = ({"r1", "r2"} - {owner}).pop()

        await eventually(lambda: stack.slack.completions, within=40, what="the completion")
        await asyncio.sleep(2.5)  # more poll rounds and a heartbeat: nothing completes it again
    assert_completed_once_with_outputs(stack, execution, task_id)
    # Only the survivor polled the task after the kill: still one poll per task.
    killed_at = max(p[0] for p in fleet.polls if p[1] == owner)
    assert all(p[1] == survivor for p in fleet.polls if p[0] > killed_at)
    assert [r.status for r in await step_deliveries(fleet.database_url)] == ["sent"]
