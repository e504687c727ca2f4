"""ETA, rate, trend and stall notices as a channel sees them: signed requests to the Bolt
app's real server, the simulator and the Slack stand-in on loopback sockets. Every assertion is on
what the stand-in received."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack, is_alert
from bot.devtools.slack_standin import PostedMessage
from bot.services.parsing import Invalid, Recent, Subscribe, parse
from bot.slack import ids
from tests.support.waiting import eventually
from tests.test_slack_followups import (
    CHANNEL,
    OTHER,
    all_delivered,
    command_reply,
    on_an_empty_simulator,
    reply_to,
    sim_task,
)

STALL_MINUTES = 0.02  # 1.2 s


@pytest.fixture
async def stalls(tmp_path: Path) -> AsyncIterator[LocalStack]:
    async with on_an_empty_simulator(
        tmp_path,
        poll_seconds=0.1,
        max_poll_seconds=0.4,
        card_update_seconds=0.1,
        feed_poll_seconds=0.1,
        stall_minutes=STALL_MINUTES,
    ) as local:
        yield local


def rendered(message: PostedMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def posted(stack: LocalStack) -> list[PostedMessage]:
    return [m for m in stack.slack.messages if m.via == "chat.postMessage"]


async def card_for(stack: LocalStack, http: httpx.AsyncClient, task_id: str) -> PostedMessage:
    """``/task <id>`` in the channel; the card it posts."""
    seen = len(posted(stack))
    await stack.command(http, task_id, channel_id=CHANNEL, user_id="U0ASKER01")
    await stack.slack.wait_for(lambda _: len(posted(stack)) > seen, timeout=10)
    return posted(stack)[seen]


def stall_notices(stack: LocalStack) -> list[PostedMessage]:
    return [m for m in posted(stack) if "no progress for" in m.text]


async def test_a_card_seen_once_shows_eta_and_rate_from_begin_time(
    stalls: LocalStack, http: httpx.AsyncClient
) -> None:
    running = "e7a00000000000000000000000000001"
    # 36,000 items in an hour, ten minutes in: 10 items/s, 50 minutes left.
    stalls.simulator.add_task(sim_task(running, duration=3600, started_ago=600, total_count=36_000))
    reply = await card_for(stalls, http, running)
    body = rendered(reply)
    assert re.search(r"≈ (49|50|51) min left · (9\.9|10\.0) items/s", body), body
    # A card seen once has no trend: one look is not a history.
    assert "Trend" not in body


async def test_no_eta_without_progress(stalls: LocalStack, http: httpx.AsyncClient) -> None:
    fresh = "e7a00000000000000000000000000002"
    stalls.simulator.add_task(sim_task(fresh, duration=36_000, total_count=100))
    reply = await card_for(stalls, http, fresh)
    body = rendered(reply)
    assert "Running" in body
    assert "≈" not in body and "items/" not in body


async def test_a_stall_is_announced_once_marked_on_the_card_and_its_end_noted(
    stalls: LocalStack, http: httpx.AsyncClient
) -> None:
    task_id = "e7a00000000000000000000000000003"
    stalls.simulator.add_task(
        sim.SimTask(
            task_id=task_id,
            task_name="Stalling import",
            resource="knowledge-intent-question-create",
            total_count=50_000,
            duration_seconds=8.0,
            begin_time_ms=round(time.time() * 1000),
            stall_at_seconds=2.0,
            stall_seconds=4.0,
        )
    )
    # One channel watches through its card, the other by command (no card).
    card = await card_for(stalls, http, task_id)
    await reply_to(
        stalls,
        http,
        lambda: stalls.click(
            http, ids.ACTION_WATCH, task_id, channel_id=CHANNEL, user_id="U0ASKER01", message_ts=card.ts
        ),
    )
    await command_reply(stalls, http, f"watch {task_id}", channel=OTHER)

    await stalls.slack.wait_for(
        lambda _: sum(is_alert(m) and task_id in json.dumps(m.payload) for m in stalls.slack.messages) >= 2,
        timeout=20,
    )
    await all_delivered(stalls)

    notices = stall_notices(stalls)
    # One per stall and subscriber, never one per poll: the card's thread, and the other channel.
    assert sorted(n.channel for n in notices) == sorted([CHANNEL, OTHER]), [n.text for n in notices]
    in_thread = next(n for n in notices if n.channel == CHANNEL)
    assert in_thread.payload.get("thread_ts") == card.ts
    assert not in_thread.payload.get("reply_broadcast")
    in_channel = next(n for n in notices if n.channel == OTHER)
    assert "thread_ts" not in in_channel.payload or in_channel.payload["thread_ts"] is None
    assert re.search(r"stuck at [\d,]+ of 50,000", in_thread.text), in_thread.text

    updates = [m for m in stalls.slack.messages if m.via == "chat.update" and m.ts == card.ts]
    bodies = [rendered(u) for u in updates]
    before = next(i for i, b in enumerate(bodies) if "Stalled" in b)
    assert any("items/s" in b and "Trend `" in b for b in bodies[:before]), "no ETA or trend before the stall"
    assert re.search(r"Trend `[▁▂▃▄▅▆▇█]{2,}`", "".join(bodies[:before]))
    # While stalled there is no ETA; once moving again the card says the stall ended.
    assert "≈" not in bodies[before]
    assert any("Moving again after a stall" in b for b in bodies[before:]), (
        "the end of the stall was not noted"
    )
    # The final card keeps the request id like every other card.
    assert "Finished" in bodies[-1] and "request `" in bodies[-1]


# --- feed filters ---------------------------------------------------------------------------------


def test_subscribe_parses_filters_besides_resources() -> None:
    assert parse("subscribe res-a failed by:alice res-b") == Subscribe(
        ("res-a", "res-b"), only_failed=True, operator="alice"
    )
    assert parse("subscribe") == Subscribe()
    assert isinstance(parse("subscribe by:"), Invalid)
    assert isinstance(parse("subscribe by:alice by:bob"), Invalid)


async def test_a_filtered_feed_announces_only_what_passes_and_lists_its_filters(
    stalls: LocalStack, http: httpx.AsyncClient
) -> None:
    confirmation = await command_reply(stalls, http, "subscribe failed by:opAlice")
    assert "Filters: only tasks that had failures, only tasks by `opAlice`." in confirmation.text
    wanted = "e7a00000000000000000000000000011"
    clean_run = "e7a00000000000000000000000000012"
    other_operator = "e7a00000000000000000000000000013"
    stalls.simulator.add_task(sim_task(wanted, duration=0.5, operator="opAlice"))
    stalls.simulator.add_task(sim_task(clean_run, duration=0.5, operator="opAlice", failure_rate=0.0))
    stalls.simulator.add_task(sim_task(other_operator, duration=0.5, operator="opBob"))

    def announced(task_id: str) -> list[PostedMessage]:
        return [m for m in stalls.slack.messages if is_alert(m) and task_id in json.dumps(m.payload)]

    await stalls.slack.wait_for(lambda _: bool(announced(wanted)), timeout=10)
    # Several more feed polls after every task has finished: the others stay unannounced.
    polls = stalls.runtime.followups.stats.feed_polls
    await eventually(lambda: stalls.runtime.followups.stats.feed_polls >= polls + 5)
    await all_delivered(stalls)
    assert len(announced(wanted)) == 1
    assert announced(clean_run) == [] and announced(other_operator) == []

    listing = await command_reply(stalls, http, "watching")
    assert "Filters: only tasks that had failures, only tasks by `opAlice`." in rendered(listing)


# --- /task recent beyond the first ten ------------------------------------------------------------


async def test_recent_pages_past_the_first_ten_and_says_when_the_server_ignores_paging(
    stalls: LocalStack, http: httpx.AsyncClient
) -> None:
    for n in range(15):
        stalls.simulator.add_task(
            sim_task(f"e7a000000000000000000000000001{n:02d}", duration=0, started_ago=100 + n)
        )
    first = rendered(await command_reply(stalls, http, "recent"))
    assert "Showing 10 of 15" in first and "Next ten: `/task recent page 2`" in first
    second = rendered(await command_reply(stalls, http, "recent page 2"))
    assert "Page 2: tasks 11 to 15 of 15" in second and "Next ten" not in second
    # The five oldest, none of the first ten.
    assert "e7a00000000000000000000000000114" in second and "e7a00000000000000000000000000100" not in second

    stalls.simulator.honour_offset = False
    ignored = rendered(await command_reply(stalls, http, "recent page 2"))
    assert "paging is not part of its documented task list" in ignored
    assert "e7a000000000000000000000000001" not in ignored
    assert isinstance(parse("recent page 0"), Invalid) and parse("recent res page 3") == Recent(
        ("res",), page=3
    )
