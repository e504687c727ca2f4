"""Two installed workspaces end to end: isolation, and uninstall that leaves nothing behind.

Workspaces A and B each connect their own MetaStudio project, on its own simulator that accepts
only that workspace's access key. Everything is driven through signed requests on real sockets.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot import messages
from bot.db.workspaces import mask_access_key
from bot.slack import ids
from tests.install_support import (
    AK_A,
    AK_B,
    CHANNEL_A,
    CHANNEL_B,
    PROJECT_A,
    PROJECT_B,
    SK_B,
    TASK_A,
    TASK_B,
    MultiStack,
    Workspace,
    multi_stack,
    project_a,
    project_b,
    running_task,
    view_text,
)
from tests.support.clock import FakeClock
from tests.support.waiting import eventually

# Finishes when the clock moves 2 minutes; TASK_A and TASK_B take hours.
TASK_A_SHORT = "a0000000000000000000000000000003"


@dataclass
class Pair:
    stack: MultiStack
    a: Workspace
    b: Workspace
    clock: FakeClock


@pytest.fixture
async def pair(tmp_path: Path, database_url: str) -> AsyncIterator[Pair]:
    clock = FakeClock()
    projects = {
        "A": project_a(
            clock,
            [
                running_task(TASK_A, "Team A import", clock, seconds_left=7200),
                running_task(TASK_A_SHORT, "Team A quick export", clock, seconds_left=60),
            ],
        ),
        "B": project_b(clock, [running_task(TASK_B, "Team B secret import", clock, seconds_left=7200)]),
    }
    async with multi_stack(tmp_path, database_url, projects) as stack:
        a, b = await stack.two_teams()
        yield Pair(stack, a, b, clock)


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


async def test_a_cannot_see_bs_tasks_watches_credentials_or_audit(pair: Pair) -> None:
    stack, a, b = pair.stack, pair.a, pair.b
    sim_a = stack.projects["A"].simulator
    await b.watch(TASK_B, CHANNEL_B)

    # Commands: B's task id asked in A goes to A's project, which has no such task.
    seen = len(stack.slack.messages)
    await a.command(TASK_B, channel=CHANNEL_A)
    answer = await a.wait_message(after=seen, what="A's answer about B's task")
    assert answer.ephemeral and answer.text.startswith(messages.text("error_not_found"))
    assert "task not found" in answer.text, "MetaStudio's own words are quoted"
    assert sim_a.requests[("show", TASK_B)] == 1, "A's command went to A's project"

    # Buttons: a forged Watch click for B's task from A watches nothing of B's.
    seen = len(stack.slack.messages)
    await a.click(ids.ACTION_WATCH, TASK_B, user=a.member, channel=CHANNEL_A, message_ts=None)
    refused = await a.wait_message(after=seen, what="A's watch click")
    assert refused.text.startswith(messages.text("error_not_found"))
    seen = len(stack.slack.messages)
    await a.command("watching", channel=CHANNEL_A)
    listing = await a.wait_message(after=seen, what="A's watching list")
    assert TASK_B not in _dump(listing.payload) and "Team B" not in _dump(listing.payload)
    assert await stack.runtime.storage.active_watch_count(a.team_id) == 0
    assert await stack.runtime.storage.active_watch_count(b.team_id) == 1

    # App Home and the Configure modal: A's admin sees A's connection and audit only.
    view = await a.open_home(a.admin)
    shown = _dump(view)
    assert PROJECT_A in shown and mask_access_key(AK_A) in shown
    for other in (PROJECT_B, mask_access_key(AK_B), AK_B, SK_B, b.admin, CHANNEL_B, "Team B"):
        assert other not in shown, other
    assert a.admin in view_text(view), "A's own audit entries are there"
    opened = len(stack.slack.views)
    await a.click(ids.ACTION_CONFIGURE, user=a.admin, view={"id": "VHOMEA0001", **view})

    async def modal() -> list[dict[str, object]]:
        return [v for v in stack.slack.views[opened:] if v["method"] == "views.open"]

    [opened_view] = await eventually(modal, what="A's Configure modal")
    assert PROJECT_A in _dump(opened_view) and PROJECT_B not in _dump(opened_view)
    audit_a = await stack.runtime.workspaces.audit(a.team_id)  # type: ignore[union-attr]
    assert audit_a and {entry.user_id for entry in audit_a} == {a.admin}

    # Every Web API call made for A carried A's token, never B's.
    b_tokens = b.tokens()
    for call in stack.slack.calls:
        if call.token in a.tokens():
            assert _dump(call.params).find(b.team_id) == -1
    assert all(call.token not in b_tokens for call in stack.slack.calls_to("views.open"))


async def test_uninstall_removes_everything_of_that_workspace_only(pair: Pair) -> None:
    stack, a, b = pair.stack, pair.a, pair.b
    await a.watch(TASK_A, CHANNEL_A)
    await a.watch(TASK_A_SHORT, CHANNEL_A)
    await b.watch(TASK_B, CHANNEL_B)
    seen = len(stack.slack.messages)
    await a.command("subscribe", channel=CHANNEL_A)
    await a.wait_message(after=seen, what="A's feed")
    pair.clock.now += 120  # TASK_A_SHORT finishes: A gets a delivery row and an alert
    await a.wait_message(
        lambda m: (
            m.via == "chat.postMessage" and "Team A quick export" in m.text + _dump(m.payload.get("blocks"))
        ),
        what="A's alert",
        timeout=15,
    )

    before = await stack.rows_mentioning(a.team_id)
    for table in (
        "slack_installations",
        "slack_bots",
        "connections",
        "guardrails",
        "audit_log",
        "watches",
        "subscribers",
        "feeds",
        "deliveries",
    ):
        assert before.get(table), f"A has nothing in {table} to delete: {before}"
    b_before = await stack.rows_mentioning(b.team_id)

    response = await a.event({"type": "app_uninstalled"})
    assert response.status_code == 200

    async def a_gone() -> bool:
        return not any((await stack.rows_mentioning(a.team_id)).values())

    await eventually(a_gone, what=f"every row of A gone: {await stack.rows_mentioning(a.team_id)}")
    assert await stack.rows_mentioning(b.team_id) == b_before, "B is untouched"
    assert await stack.runtime.workspaces.get_connection(b.team_id) is not None  # type: ignore[union-attr]

    # B still works end to end.
    seen = len(stack.slack.messages)
    await b.command(TASK_B, channel=CHANNEL_B)
    card = await b.wait_message(after=seen, what="B's card")
    assert card.via == "chat.postMessage" and "Team B secret import" in card.text + _dump(card.blocks)

    # tokens_revoked does the same for B.
    response = await b.event({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0TASKBOT1"]}})
    assert response.status_code == 200

    async def b_gone() -> bool:
        return not any((await stack.rows_mentioning(b.team_id)).values())

    await eventually(b_gone, what="every row of B gone")
