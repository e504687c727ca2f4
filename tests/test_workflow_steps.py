"""The Workflow Builder steps behind the real HTTP server, driven the way Slack drives them.

Slack sends a signed ``function_executed`` event (the stand-in builds it, with its own
short-lived ``bot_access_token``); the bot completes the step with
``functions.completeSuccess``/``completeError`` on the stand-in, which accepts one completion
per execution, as Slack does. The crash and replica guarantees are in
``tests/test_crash_recovery.py`` and ``tests/test_replicas.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot import messages
from bot.db.followups import STEP
from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack, demo_stack
from bot.devtools.slack_standin import DEMO_BOT_TOKEN
from bot.devtools.slack_steps import Completion
from bot.slack import steps
from bot.slack.ids import GET_TASK, WAIT_FOR_TASK
from tests.install_support import TASK_A, Workspace, multi_stack, project_a
from tests.support.clock import FakeClock
from tests.support.waiting import eventually
from tests.test_install_guardrails import GROUP, MEMBER, OUTSIDER, team  # noqa: F401 - team is a fixture

UNKNOWN_TASK = "deadbeefdeadbeefdeadbeefdeadbeef"


def add_running_task(simulator: sim.Simulator, task_id: str, finishes_in: float) -> None:
    now = time.time()
    duration = finishes_in + 2.0
    simulator.add_task(
        sim.SimTask(
            task_id=task_id,
            task_name="Nightly import",
            resource="knowledge-intent-question-create",
            total_count=400,
            duration_seconds=duration,
            begin_time_ms=round((now + finishes_in - duration) * 1000),
        )
    )


@pytest.fixture
async def fast(tmp_path: Path) -> AsyncIterator[LocalStack]:
    """The stack with polls every 0.2 s, so a watched task finishes within a test."""
    async with demo_stack(tmp_path, poll_seconds=0.2, max_poll_seconds=0.5) as local:
        yield local


def one_sentence(error: str | None) -> str:
    """A readable sentence: one line, no traceback, no unfilled placeholder, no Slack error code."""
    assert error, "completeError carries no error"
    assert "\n" not in error and "Traceback" not in error and "{" not in error
    assert error.rstrip().endswith((".", "。")), error
    return error


async def step_waits_on_a_new_task(
    fast: LocalStack,
    http: httpx.AsyncClient,
    task_id: str,
    *,
    finishes_in: float,
    channel_watches: bool = False,
    timeout_hours: float | None = None,
) -> str:
    """A task that finishes in ``finishes_in`` seconds and a wait_for_task step on it (after the
    channel's own ``watch`` when ``channel_watches``); returns the step's execution id."""
    add_running_task(fast.simulator, task_id, finishes_in=finishes_in)
    if channel_watches:
        await fast.command(http, f"watch {task_id}")
    inputs: dict[str, object] = {"task_id": task_id}
    if timeout_hours is not None:
        inputs["timeout_hours"] = timeout_hours
    _, execution = await fast.step(http, WAIT_FOR_TASK, inputs)
    return execution


async def one_watch_polling(stack: LocalStack) -> None:
    """Wait until the engine polls exactly one watch (the step's)."""
    await eventually(lambda: len(stack.runtime.followups.watches) == 1, within=5, what="the watch")


def error_sentence(completion: Completion) -> str:
    """The sentence of a step that failed: completed with completeError, in one readable sentence."""
    assert completion.method == "functions.completeError"
    return one_sentence(completion.error)


async def only_completion(stack: LocalStack, execution_id: str, *, settle: float = 0.5) -> Completion:
    await eventually(
        lambda: stack.slack.completions_of(execution_id), within=15, what="the step's completion"
    )
    await asyncio.sleep(settle)  # nothing more arrives for this execution
    [completion] = stack.slack.completions_of(execution_id)
    return completion


# --- get_task ---------------------------------------------------------------------------------------


async def test_get_task_completes_at_once_with_the_tasks_outputs(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    started = time.perf_counter()
    response, execution = await stack.step(http, GET_TASK, {"task_id": sim.SEED_TASK_ID})
    assert response.status_code == 200
    assert time.perf_counter() - started < 1.0
    completion = await only_completion(stack, execution)
    assert completion.method == "functions.completeSuccess"
    snapshot = stack.simulator.snapshot(sim.SEED_TASK_ID)
    outputs = completion.outputs or {}
    assert outputs["task_name"] == snapshot["task_name"]
    assert outputs["finished"] is True
    assert outputs["total_count"] == int(snapshot["total_count"])
    assert outputs["success_count"] + outputs["failure_count"] == outputs["total_count"]
    assert isinstance(outputs["begin_time"], int) and outputs["end_time"] >= outputs["begin_time"]
    assert outputs["resource"] == snapshot["resource"]
    # The event's own token completes a step answered at once (it is revoked on completion).
    token = stack.slack.executions[execution].token
    assert completion.token == token and stack.slack.tokens[token].revoked
    # Nothing was posted anywhere: a step answers its workflow only.
    assert stack.slack.messages == []


@pytest.mark.parametrize(
    ("task_id", "expected"),
    [
        (UNKNOWN_TASK, "error_not_found"),
        ("not-a-task-id", None),
        (sim.FORBIDDEN_TASK_ID, "error_forbidden"),
        (sim.MSS_TASK_IDS["MSS.000000004"], "error_auth"),
    ],
)
async def test_get_task_errors_each_fail_the_step_once_with_a_sentence(
    stack: LocalStack, http: httpx.AsyncClient, task_id: str, expected: str | None
) -> None:
    _, execution = await stack.step(http, GET_TASK, {"task_id": task_id})
    sentence = error_sentence(await only_completion(stack, execution))
    if expected is not None:
        assert messages.text(expected) in sentence
    else:
        assert "is not a task id" in sentence


async def test_get_task_without_a_connection_fails_with_a_sentence(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    async with demo_stack(tmp_path, cloud_ak=None, cloud_sk=None, cloud_project_id=None) as stack:
        _, execution = await stack.step(http, GET_TASK, {"task_id": sim.SEED_TASK_ID})
        completion = await only_completion(stack, execution)
    assert error_sentence(completion) == messages.text("error_not_configured")
    assert not stack.simulator.requests


async def test_a_step_is_answered_in_the_language_of_the_person_who_ran_it(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    stack.slack.locales["U0ZHUSER01"] = "zh-CN"
    _, execution = await stack.step(
        http, GET_TASK, {"task_id": UNKNOWN_TASK, "user": {"id": "U0ZHUSER01", "secret": "s"}}
    )
    completion = await only_completion(stack, execution)
    assert messages.text("error_not_found", "zh-CN") in one_sentence(completion.error)


# --- wait_for_task ----------------------------------------------------------------------------------


async def test_wait_for_task_completes_once_when_the_task_finishes_sharing_the_channels_watch(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    task_id = "a1" * 16
    first = await step_waits_on_a_new_task(fast, http, task_id, finishes_in=2.0, channel_watches=True)
    _, second = await fast.step(http, WAIT_FOR_TASK, {"task_id": task_id, "timeout_hours": 1})
    storage = fast.runtime.storage

    async def watched_three_times() -> bool:
        watches = await storage.active_watches()
        return len(watches) == 1 and len(watches[0].subscribers) == 3

    await eventually(watched_three_times, within=5, what="one watch, three subscribers")
    [watch] = await storage.active_watches()
    # One watch (so one poll per interval) serves the channel and both steps.
    assert sorted(s.target or "channel" for s in watch.subscribers) == ["channel", STEP, STEP]
    assert {s.channel_id for s in watch.subscribers if s.is_step} == {first, second}
    done = [await only_completion(fast, execution, settle=0) for execution in (first, second)]
    await asyncio.sleep(1.0)
    for execution, completion in zip((first, second), done, strict=True):
        assert fast.slack.completions_of(execution) == [completion]
        assert completion.method == "functions.completeSuccess"
        outputs = completion.outputs or {}
        assert outputs["finished"] is True and outputs["total_count"] == 400
        assert outputs["success_count"] + outputs["failure_count"] == 400
        assert outputs["task_name"] == "Nightly import"
        # Long after the event, the workspace's own bot token completes it.
        assert completion.token == DEMO_BOT_TOKEN
    assert sum(1 for m in fast.slack.messages if m.payload.get("metadata")) == 1  # the channel's alert


async def test_wait_for_task_already_finished_completes_at_once(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    _, execution = await stack.step(http, WAIT_FOR_TASK, {"task_id": sim.SEED_TASK_ID})
    completion = await only_completion(stack, execution)
    assert completion.method == "functions.completeSuccess"
    assert (completion.outputs or {})["finished"] is True
    assert await stack.runtime.storage.active_watches() == []


async def test_wait_for_task_times_out_with_a_sentence_while_the_channel_goes_on_waiting(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    task_id = "b2" * 16
    execution = await step_waits_on_a_new_task(
        fast, http, task_id, finishes_in=5.0, channel_watches=True, timeout_hours=1 / 3600
    )
    completion = await only_completion(fast, execution, settle=0)
    assert error_sentence(completion) == steps.expired_sentence(task_id, "en")
    # The channel's watch is untouched: it is told when the task finishes, not that it expired.
    [watch] = await fast.runtime.storage.active_watches()
    assert [s.channel_id for s in watch.subscribers] == ["C0DEMO0001"]
    await fast.slack.wait_for(lambda ms: any(m.payload.get("metadata") for m in ms), timeout=15)
    assert fast.slack.completions_of(execution) == [completion]


async def test_wait_for_task_fails_when_the_task_disappears(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    task_id = "c3" * 16
    execution = await step_waits_on_a_new_task(fast, http, task_id, finishes_in=60.0)
    await one_watch_polling(fast)
    fast.simulator.remove_task(task_id)
    completion = await only_completion(fast, execution)
    assert error_sentence(completion) == steps.not_found_sentence(task_id, "en")


async def test_a_completion_slack_failed_to_take_is_retried_until_it_takes_once(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    fast.slack.fail_next("functions.completeSuccess", error="internal_error")
    fast.slack.fail_next("functions.completeSuccess", status=503, error="service_unavailable")
    execution = await step_waits_on_a_new_task(fast, http, "e5" * 16, finishes_in=1.0)
    completion = await only_completion(fast, execution, settle=1.0)
    assert completion.method == "functions.completeSuccess"
    assert len(fast.slack.calls_to("functions.completeSuccess")) == 3
    [row] = [r for r in await _all(fast.runtime.storage) if r.channel_id == execution]
    assert (row.status, row.attempts) == ("sent", 3)


async def test_a_failure_inside_taskbot_fails_the_step_with_a_sentence(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    from sqlalchemy import text

    # A real failure: the table the step's watch is written to is gone.
    async with stack.runtime.database.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE subscribers RENAME TO subscribers_gone"))
    _, execution = await stack.step(http, WAIT_FOR_TASK, {"task_id": sim.RUNNING_TASK_ID})
    completion = await only_completion(stack, execution)
    assert error_sentence(completion) == messages.text("error_internal")


@pytest.mark.parametrize("timeout", [0, -1, "soon", 10_000])
async def test_wait_for_task_refuses_a_time_limit_out_of_range(
    stack: LocalStack, http: httpx.AsyncClient, timeout: object
) -> None:
    _, execution = await stack.step(
        http, WAIT_FOR_TASK, {"task_id": sim.RUNNING_TASK_ID, "timeout_hours": timeout}
    )
    completion = await only_completion(stack, execution)
    hours = f"{stack.settings.watch_max_hours:g}"
    assert one_sentence(completion.error) == messages.text("step_invalid_timeout", hours=hours)
    assert await stack.runtime.storage.active_watches() == []


async def test_a_step_whose_workflow_was_cancelled_is_given_up_not_retried(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    execution = await step_waits_on_a_new_task(fast, http, "d4" * 16, finishes_in=1.5)
    await one_watch_polling(fast)
    fast.slack.cancel_execution(execution)
    storage = fast.runtime.storage

    async def failed() -> bool:
        return any(row.status == "failed" for row in await _all(storage))

    await eventually(failed, within=15, what="the delivery given up")
    calls = len(fast.slack.calls_to("functions.completeSuccess"))
    await asyncio.sleep(1.5)
    assert len(fast.slack.calls_to("functions.completeSuccess")) == calls == 1
    assert fast.slack.completions == []


async def _all(storage: object) -> list:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.db.deliveries import DeliveryRow
    from bot.db.followups import FollowUpStore

    assert isinstance(storage, FollowUpStore)
    async with AsyncSession(storage.database.engine) as session:
        return list((await session.scalars(select(DeliveryRow))).all())


# --- many workspaces: guardrails and a workspace without a connection ----------------------------------


async def step_in(workspace: Workspace, callback_id: str, inputs: dict[str, object]) -> Completion:
    stack = workspace.stack
    body, headers, execution = stack.slack.function_executed(
        stack.signing_secret, callback_id, inputs, team_id=workspace.team_id
    )
    response = await stack.http.post(f"{stack.bot_url}/slack/events", content=body, headers=headers)
    assert response.status_code == 200
    await eventually(lambda: stack.slack.completions_of(execution), within=15, what="the step's completion")
    [completion] = stack.slack.completions_of(execution)
    return completion


async def test_the_user_group_guardrail_applies_to_the_person_who_ran_the_workflow(team: Workspace) -> None:  # noqa: F811
    await team.guard(channels=["C0ALLOWED1"], usergroup=GROUP)
    group = f"<!subteam^{GROUP}>"
    shows = team.stack.projects["A"].simulator.requests[("show", TASK_A)]
    for callback_id in (GET_TASK, WAIT_FOR_TASK):
        outsider = await step_in(team, callback_id, {"task_id": TASK_A, "user": {"id": OUTSIDER}})
        assert one_sentence(outsider.error) == messages.text("step_denied_usergroup", group=group)
        # Slack names nobody unless the workflow gives the step its User input: refused, not guessed.
        nobody = await step_in(team, callback_id, {"task_id": TASK_A})
        assert one_sentence(nobody.error) == messages.text("step_denied_unknown_user", group=group)
    assert team.stack.projects["A"].simulator.requests[("show", TASK_A)] == shows, "refused before MetaStudio"
    # A member passes; the channel rule does not apply to a step, which answers in no channel.
    member = await step_in(team, GET_TASK, {"task_id": TASK_A, "user": {"id": MEMBER}})
    assert member.method == "functions.completeSuccess"
    assert (member.outputs or {})["total_count"] == 100


async def test_a_workspace_without_a_connection_gets_a_sentence_saying_whom_to_ask(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with multi_stack(tmp_path, sqlite_url, {"A": project_a(FakeClock())}) as multi:
        workspace = multi.workspace("T0TEAMBBB2", admin="U0ADMINB02", member="U0MEMBERB2")
        assert (await workspace.install()).status_code == 200
        for callback_id in (GET_TASK, WAIT_FOR_TASK):
            completion = await step_in(workspace, callback_id, {"task_id": TASK_A})
            assert error_sentence(completion) == messages.text("not_connected_member")
        assert await multi.runtime.storage.active_watches() == []
