"""Guardrails end to end: /task and the card's buttons limited to channels and to a user group.

Multi-workspace taskbot behind its real HTTP server; the admin sets the guardrails through the
modal, the Slack stand-in answers ``usergroups.users.list``, and every refusal is checked as
the refused user sees it: one ephemeral sentence that says why and whom to ask.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import messages
from bot.devtools.slack_standin import PostedMessage
from bot.slack import ids
from tests.install_support import (
    TASK_A,
    MultiStack,
    Workspace,
    multi_stack,
    project_a,
)
from tests.support.clock import FakeClock

ADMIN, MEMBER, OUTSIDER = "U0ADMINA01", "U0MEMBERA1", "U0OUTSIDE1"
ALLOWED, OTHER = "C0ALLOWED1", "C0OTHER001"
GROUP = "S0ONCALL01"


@pytest.fixture
async def team(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Workspace]:
    clock = FakeClock()
    async with multi_stack(tmp_path, sqlite_url, {"A": project_a(clock)}) as stack:
        workspace = stack.workspace("T0TEAMAAA1", admin=ADMIN, member=MEMBER)
        stack.slack.users[OUTSIDER] = {"is_admin": False}
        stack.slack.usergroups[GROUP] = [ADMIN, MEMBER]
        assert (await workspace.install()).status_code == 200
        await workspace.connect(stack.projects["A"])
        yield workspace


async def _answer(team: Workspace, seen: int, *, what: str) -> PostedMessage:
    return await team.wait_message(after=seen, what=what)


def _shows(stack: MultiStack) -> int:
    return stack.projects["A"].simulator.requests[("show", TASK_A)]


async def test_channel_guardrail_refuses_elsewhere_with_one_sentence(team: Workspace) -> None:
    stack = team.stack
    await team.guard(channels=[ALLOWED])
    shows = _shows(stack)

    seen = len(stack.slack.messages)
    await team.command(TASK_A, channel=OTHER)
    refusal = await _answer(team, seen, what="the refusal")
    assert refusal.via == "response_url" and refusal.ephemeral
    assert refusal.text == messages.text("guardrails_denied_channel", channels=f"<#{ALLOWED}>")
    assert "ask a workspace admin or owner" in refusal.text, "it says whom to ask"
    assert refusal.text.count(". ") == 0 and "\n" not in refusal.text and refusal.text.endswith("."), (
        "one sentence"
    )
    assert _shows(stack) == shows, "a refused command never reaches MetaStudio"

    seen = len(stack.slack.messages)
    await team.command(TASK_A, channel=ALLOWED)
    card = await _answer(team, seen, what="the card in the allowed channel")
    assert card.via == "chat.postMessage" and card.channel == ALLOWED


async def test_usergroup_guardrail_refuses_non_members(team: Workspace) -> None:
    stack = team.stack
    await team.guard(usergroup=GROUP)
    lookups = len(stack.slack.calls_to("usergroups.users.list"))

    seen = len(stack.slack.messages)
    await team.command(TASK_A, channel=OTHER, user=OUTSIDER)
    refusal = await _answer(team, seen, what="the refusal")
    assert refusal.ephemeral
    assert refusal.text == messages.text("guardrails_denied_usergroup", group=f"<!subteam^{GROUP}>")
    assert "ask a workspace admin or owner" in refusal.text, "it says whom to ask"
    assert len(stack.slack.calls_to("usergroups.users.list")) > lookups
    assert stack.slack.calls_to("usergroups.users.list")[-1].params["usergroup"] == GROUP

    seen = len(stack.slack.messages)
    await team.command(TASK_A, channel=OTHER, user=MEMBER)
    card = await _answer(team, seen, what="the member's card")
    assert card.via == "chat.postMessage" and "Team A import" in card.text + str(card.blocks)


async def test_card_buttons_respect_guardrails(team: Workspace) -> None:
    stack = team.stack
    await team.command(TASK_A, channel=OTHER, user=MEMBER)
    card = await team.wait_message(
        lambda m: m.via == "chat.postMessage", what="a card posted before the limit"
    )
    await team.guard(usergroup=GROUP)
    shows = _shows(stack)

    for action in (ids.ACTION_WATCH, ids.ACTION_OPEN, ids.ACTION_REFRESH):
        seen = len(stack.slack.messages)
        await team.click(action, TASK_A, user=OUTSIDER, channel=OTHER, message_ts=card.ts)
        refusal = await _answer(team, seen, what=f"the refusal of {action}")
        assert refusal.via == "response_url" and refusal.ephemeral, action
        assert f"<!subteam^{GROUP}>" in refusal.text, action
        assert not refusal.payload.get("replace_original"), f"{action} must not overwrite the card"
    assert _shows(stack) == shows, "no button reached MetaStudio for a refused user"
    assert await stack.runtime.storage.active_watch_count(team.team_id) == 0

    # A member's Notify-when-done still works.
    seen = len(stack.slack.messages)
    await team.click(ids.ACTION_WATCH, TASK_A, user=MEMBER, channel=OTHER, message_ts=card.ts)
    started = await _answer(team, seen, what="the watch")
    assert "Team A import" in started.text
    assert await stack.runtime.storage.active_watch_count(team.team_id) == 1


async def test_stop_buttons_respect_guardrails(team: Workspace) -> None:
    """Stop on a watch or on the feed in ``/task watching`` is a change: outside the group, refused."""
    stack = team.stack
    await team.watch(TASK_A, OTHER)
    seen = len(stack.slack.messages)
    await team.command("subscribe", channel=OTHER, user=MEMBER)
    await _answer(team, seen, what="the feed")
    await team.guard(usergroup=GROUP)

    for action, value in ((ids.ACTION_UNWATCH, TASK_A), (ids.ACTION_UNSUBSCRIBE, OTHER)):
        seen = len(stack.slack.messages)
        await team.click(action, value, user=OUTSIDER, channel=OTHER)
        refusal = await _answer(team, seen, what=f"the refusal of {action}")
        assert refusal.ephemeral and f"<!subteam^{GROUP}>" in refusal.text, action
        assert not refusal.payload.get("replace_original"), f"{action} must not overwrite the list"
    assert await stack.runtime.storage.active_watch_count(team.team_id) == 1
    assert len(await stack.runtime.followups.feeds.store.active_feeds([team.team_id])) == 1

    # A member of the group still stops both.
    for action, value in ((ids.ACTION_UNWATCH, TASK_A), (ids.ACTION_UNSUBSCRIBE, OTHER)):
        seen = len(stack.slack.messages)
        await team.click(action, value, user=MEMBER, channel=OTHER)
        listing = await _answer(team, seen, what=f"the list after {action}")
        assert listing.payload.get("replace_original"), action
    assert await stack.runtime.storage.active_watch_count(team.team_id) == 0
    assert await stack.runtime.followups.feeds.store.active_feeds([team.team_id]) == []
