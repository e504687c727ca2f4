"""Slack Connect: people of another organisation in a shared channel read, but change nothing.

Multi-workspace taskbot behind its real HTTP server, the Slack stand-in answering ``users.info``
with the person's own ``team_id`` (another organisation's, or a sibling workspace of the same
Enterprise Grid org), and a MetaStudio simulator. Rules: docs/operations.md, Slack Connect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import messages
from bot.slack import ids
from tests.install_support import (
    CHANNEL_A,
    TASK_A,
    MultiStack,
    Workspace,
    connection_values,
    multi_stack,
    project_a,
)
from tests.support.clock import FakeClock

OUTSIDER = "U0EXTERN01"
"""An admin and owner of another organisation's workspace, in team A's shared channel."""
GRID_PEER = "U0GRIDPEER"
"""A member of team A who also belongs to a sibling workspace of the same Grid org."""


@pytest.fixture
async def team(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Workspace]:
    clock = FakeClock()
    async with multi_stack(tmp_path, sqlite_url, {"A": project_a(clock)}) as stack:
        workspace = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1")
        stack.slack.users[OUTSIDER] = {"is_admin": True, "is_owner": True, "team_id": "T0OTHERORG"}
        stack.slack.users[GRID_PEER] = {
            "is_admin": False,
            "team_id": "T0SIBLING1",
            "enterprise_user": {"enterprise_id": "E0ORGAAAA1", "teams": ["T0SIBLING1", "T0TEAMAAA1"]},
        }
        assert (await workspace.install()).status_code == 200
        await workspace.connect(stack.projects["A"])
        yield workspace


def _outsider_answers(stack: MultiStack, seen: int) -> list[str]:
    return [m.text for m in stack.slack.messages[seen:] if m.text == messages.text("outsider_denied")]


async def test_an_admin_of_another_organisation_cannot_configure(team: Workspace) -> None:
    stack = team.stack
    workspaces = stack.runtime.workspaces
    assert workspaces is not None
    before = await workspaces.get_connection(team.team_id)
    assert before is not None

    seen = len(stack.slack.messages)
    values = connection_values(
        stack.projects["A"], endpoint="http://127.0.0.1:9", secret_key="sk-of-intruder"
    )
    response = await team.submit(ids.CONNECTION_MODAL, values, user=OUTSIDER)
    assert response.status_code == 200
    told = await team.wait_message(lambda m: m.channel == OUTSIDER, after=seen, what="the outsider's DM")
    assert told.text == messages.text("outsider_denied")
    after = await workspaces.get_connection(team.team_id)
    assert after == before, "the connection is untouched"

    home = await team.open_home(OUTSIDER)
    assert home["blocks"] and "Configure" not in str(home["blocks"]), "no admin controls for an outsider"


async def test_an_outsider_reads_tasks_but_cannot_watch_subscribe_or_set_a_digest(team: Workspace) -> None:
    stack = team.stack
    seen = len(stack.slack.messages)
    await team.command(TASK_A, channel=CHANNEL_A, user=OUTSIDER)
    card = await team.wait_message(lambda m: m.via == "chat.postMessage", after=seen, what="the card")
    assert "Team A import" in card.text + str(card.blocks)

    for text in (f"watch {TASK_A}", "subscribe", "digest daily 09:00", "digest off"):
        seen = len(stack.slack.messages)
        await team.command(text, channel=CHANNEL_A, user=OUTSIDER)
        refusal = await team.wait_message(after=seen, what=f"the answer to {text}")
        assert refusal.ephemeral and refusal.text == messages.text("outsider_denied"), text
    seen = len(stack.slack.messages)
    await team.click(ids.ACTION_WATCH, TASK_A, user=OUTSIDER, channel=CHANNEL_A, message_ts=card.ts)
    refusal = await team.wait_message(after=seen, what="the answer to Watch")
    assert refusal.ephemeral and refusal.text == messages.text("outsider_denied")
    assert await stack.runtime.storage.active_watch_count(team.team_id) == 0
    assert await stack.runtime.followups.feeds.store.active_feeds([team.team_id]) == []
    assert await stack.runtime.followups.digests.store.active_digests([team.team_id]) == []

    # A member who is also in a sibling Grid workspace is one of this workspace's members.
    seen = len(stack.slack.messages)
    await team.command(f"watch {TASK_A}", channel=CHANNEL_A, user=GRID_PEER)
    started = await team.wait_message(after=seen, what="the Grid member's watch")
    assert started.text.startswith("I'll tell this channel"), started.text
    assert _outsider_answers(stack, seen) == []
    assert await stack.runtime.storage.active_watch_count(team.team_id) == 1
