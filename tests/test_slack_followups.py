"""Follow-ups driven the way Slack drives them: signed slash commands and button clicks over HTTP to
the Bolt app's real server, the simulator and the Slack stand-in on loopback sockets. Every
assertion is on what the stand-in received (or what the simulator was asked)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack, demo_stack, is_alert
from bot.devtools.slack_standin import PostedMessage
from bot.slack import ids
from tests.support.waiting import eventually

CHANNEL = "C0FOLLOW01"
OTHER = "C0FOLLOW02"
RESOURCE = "knowledge-intent-question-create"
OTHER_RESOURCE = "knowledge-base-document-import"
POLL = 0.1
CARD_UPDATE = 0.2


def sim_task(task_id: str, *, duration: float, started_ago: float = 0.0, **kw: Any) -> sim.SimTask:
    values: dict[str, Any] = {
        "task_name": f"Import {task_id[-4:]}",
        "resource": RESOURCE,
        "total_count": 1200,
        "failure_rate": 0.01,
    }
    values.update(kw)
    return sim.SimTask(
        task_id=task_id,
        duration_seconds=duration,
        begin_time_ms=round((time.time() - started_ago) * 1000),
        **values,
    )


def on_an_empty_simulator(tmp_path: Path, **settings: Any) -> AbstractAsyncContextManager[LocalStack]:
    """The whole stack with an empty simulator and an API rate no test reaches; ``settings``
    (the follow-up timers) override the demo's."""
    return demo_stack(tmp_path, simulator=sim.Simulator(tasks=[]), api_rate=2000.0, **settings)


@pytest.fixture
async def fast(tmp_path: Path) -> AsyncIterator[LocalStack]:
    """The whole stack with follow-up timers in tenths of seconds and an empty simulator."""
    async with on_an_empty_simulator(
        tmp_path,
        poll_seconds=POLL,
        max_poll_seconds=0.5,
        card_update_seconds=CARD_UPDATE,
        feed_poll_seconds=POLL,
    ) as local:
        yield local


def alerts_about(stack: LocalStack, task_id: str) -> list[PostedMessage]:
    return [m for m in stack.slack.messages if is_alert(m) and task_id in json.dumps(m.payload)]


def replies(stack: LocalStack) -> list[PostedMessage]:
    """What reached a requester through response_url, in order."""
    return [m for m in stack.slack.messages if m.via == "response_url"]


def updates_of(stack: LocalStack, ts: str | None) -> list[PostedMessage]:
    return [m for m in stack.slack.messages if m.via == "chat.update" and m.ts == ts]


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
        found.extend(e for e in block.get("elements", []) if e.get("type") == "button")
    return found


async def reply_to(
    stack: LocalStack, http: httpx.AsyncClient, send: Callable[[], Awaitable[httpx.Response]]
) -> PostedMessage:
    """Send one request; return the next response_url message it produced."""
    seen = len(replies(stack))
    response = await send()
    assert response.status_code == 200
    await stack.slack.wait_for(lambda _: len(replies(stack)) > seen, timeout=10)
    return replies(stack)[seen]


async def command_reply(
    stack: LocalStack, http: httpx.AsyncClient, text: str, *, channel: str = CHANNEL, user: str = "U0ASKER01"
) -> PostedMessage:
    return await reply_to(stack, http, lambda: stack.command(http, text, channel_id=channel, user_id=user))


async def all_delivered(stack: LocalStack) -> None:
    """Wait until no alert is owed: every queued delivery is recorded as sent (or failed)."""

    async def none_owed() -> bool:
        return not await stack.runtime.followups.deliveries.pending_deliveries()

    await eventually(none_owed, what="no delivery owed")


def rendered(message: PostedMessage) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


# --- watching a task ---------------------------------------------------------------------------


async def test_watch_command_confirms_to_the_requester_and_alerts_the_channel_once(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    task_id = "f0110000000000000000000000000001"
    fast.simulator.add_task(sim_task(task_id, duration=1.5))
    confirmation = await command_reply(fast, http, f"watch {task_id}", user="U0ASKER01")
    assert confirmation.ephemeral
    assert "I'll tell this channel when *Import 0001* finishes" in confirmation.text
    assert "24 h" in confirmation.text

    await fast.slack.wait_for(lambda _: len(alerts_about(fast, task_id)) >= 1, timeout=10)
    await all_delivered(fast)
    (alert,) = alerts_about(fast, task_id)
    assert alert.channel == CHANNEL
    # No card to thread under: the alert is a plain channel message.
    assert "thread_ts" not in alert.payload
    assert alert.text.startswith("<@U0ASKER01> ")
    blocks = rendered(alert)
    assert "1,188 of 1,200" in blocks and ":warning: *12*" in blocks
    assert "99.0%" in blocks
    assert "*Duration*\\n1 s" in blocks
    [open_button] = buttons(alert.blocks)
    assert open_button["action_id"] == ids.ACTION_OPEN and open_button["value"] == task_id


async def test_card_button_threads_the_alert_under_the_card_and_keeps_the_card_live(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    task_id = "f0110000000000000000000000000002"
    fast.simulator.add_task(sim_task(task_id, duration=2.0, total_count=100_000))
    await fast.command(http, task_id, channel_id=CHANNEL, user_id="U0ASKER01")
    await fast.slack.wait_for(lambda ms: any(m.via == "chat.postMessage" for m in ms), timeout=10)
    card = next(m for m in fast.slack.messages if m.via == "chat.postMessage")
    watch_buttons = [b for b in buttons(card.blocks) if b["action_id"] == ids.ACTION_WATCH]
    assert [b["value"] for b in watch_buttons] == [task_id]

    confirmation = await reply_to(
        fast,
        http,
        lambda: fast.click(
            http, ids.ACTION_WATCH, task_id, channel_id=CHANNEL, user_id="U0CLICKER1", message_ts=card.ts
        ),
    )
    assert confirmation.ephemeral
    assert "I'll tell this channel when *Import 0002* finishes" in confirmation.text

    await fast.slack.wait_for(lambda _: len(alerts_about(fast, task_id)) >= 1, timeout=10)
    await fast.slack.wait_for(lambda _: any(not is_live(u) for u in updates_of(fast, card.ts)), timeout=5)
    await all_delivered(fast)
    (alert,) = alerts_about(fast, task_id)
    # Default TASKBOT_ALERT_MODE: a reply in the card's thread, also sent to the channel.
    assert alert.channel == CHANNEL
    assert alert.payload["thread_ts"] == card.ts
    assert alert.payload["reply_broadcast"] is True
    assert alert.text.startswith("<@U0CLICKER1> ")
    blocks = rendered(alert)
    assert "99,000 of 100,000" in blocks and ":warning: *1,000*" in blocks
    assert "*Success rate*\\n99.0%" in blocks and "*Duration*\\n2 s" in blocks
    assert [b["action_id"] for b in buttons(alert.blocks)] == [ids.ACTION_OPEN]

    updates = updates_of(fast, card.ts)
    live = [u for u in updates if is_live(u)]
    assert len(live) >= 3, "the card was not kept live while the task ran"
    # Each live redraw shows new counts.
    assert len({json.dumps(u.blocks[1]) for u in live}) == len(live)
    assert all("Updated" in rendered(u) for u in updates)
    # Live redraws come at most once per card_update_seconds.
    gaps = [b.at - a.at for a, b in itertools.pairwise(live)]
    assert all(gap >= CARD_UPDATE - 0.03 for gap in gaps), gaps
    # The last redraw, after the alert, is the final state.
    assert updates[-1].at >= alert.at
    assert "Finished" in rendered(updates[-1]) and "100,000 of 100,000" in rendered(updates[-1])


def is_live(update: PostedMessage) -> bool:
    return "Watching" in rendered(update)


async def test_watching_an_already_finished_task_says_so_and_watches_nothing(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    fast.simulator.add_task(sim.SimTask.static(sim.SEED_TASK_BODY))
    reply = await command_reply(fast, http, f"watch {sim.SEED_TASK_ID}")
    assert reply.ephemeral
    assert "*Imported Q&amp;A pairs.* has already finished" in reply.text
    listing = await command_reply(fast, http, "watching")
    assert "not watching any task" in rendered(listing)
    # The one show call was the command's own: no watch polls the task.
    assert fast.simulator.requests[("show", sim.SEED_TASK_ID)] == 1
    assert await fast.runtime.storage.active_watches() == []


async def test_watching_lists_watches_and_feed_and_stop_ends_them(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    first, second = "f0110000000000000000000000000003", "f0110000000000000000000000000004"
    for task_id in (first, second):
        fast.simulator.add_task(sim_task(task_id, duration=600))
    await command_reply(fast, http, f"watch {first}", user="U0ASKER01")
    await command_reply(fast, http, f"watch {second}", user="U0ASKER02")
    await command_reply(fast, http, f"subscribe {RESOURCE}", user="U0ASKER03")
    # Another channel's watch is not listed here.
    await command_reply(fast, http, f"watch {first}", channel=OTHER, user="U0ASKER04")

    listing = await command_reply(fast, http, "watching")
    assert listing.ephemeral
    assert listing.text == "Tasks watched in this channel: 2"
    text = rendered(listing)
    assert f"`{RESOURCE}`" in text and "Project feed" in text
    items = [
        b["text"]["text"]
        for b in listing.blocks
        if b.get("accessory", {}).get("action_id") == ids.ACTION_UNWATCH
    ]
    assert len(items) == 2
    for item, task_id, user in zip(items, (first, second), ("U0ASKER01", "U0ASKER02"), strict=True):
        assert f"`{task_id}`" in item and f"<@{user}>" in item
        assert " · since <!date^" in item and " · until <!date^" in item
    assert [b["value"] for b in buttons(listing.blocks) if b["action_id"] == ids.ACTION_UNSUBSCRIBE] == [
        CHANNEL
    ]
    assert [b["value"] for b in buttons(listing.blocks) if b["action_id"] == ids.ACTION_UNWATCH] == [
        first,
        second,
    ]

    # Stop on the first watch: the list is redrawn in place without it.
    redrawn = await reply_to(
        fast, http, lambda: fast.click(http, ids.ACTION_UNWATCH, first, channel_id=CHANNEL)
    )
    assert redrawn.payload.get("replace_original") is True
    assert redrawn.text == "Tasks watched in this channel: 1"
    assert first not in rendered(redrawn) and second in rendered(redrawn)
    watches, feed = await fast.runtime.followups.watching(team_id=fast.slack.team_id, channel_id=CHANNEL)
    assert [w.task_id for w in watches] == [second] and feed is not None
    # The other channel still watches the first task.
    watches, _ = await fast.runtime.followups.watching(team_id=fast.slack.team_id, channel_id=OTHER)
    assert [w.task_id for w in watches] == [first]

    # Stop the feed.
    redrawn = await reply_to(
        fast, http, lambda: fast.click(http, ids.ACTION_UNSUBSCRIBE, CHANNEL, channel_id=CHANNEL)
    )
    assert "No project feed in this channel." in rendered(redrawn)
    assert (
        await fast.runtime.followups.feeds.store.channel_feed(team_id=fast.slack.team_id, channel_id=CHANNEL)
        is None
    )


async def test_unwatch_command_ends_the_watch(fast: LocalStack, http: httpx.AsyncClient) -> None:
    task_id = "f0110000000000000000000000000005"
    fast.simulator.add_task(sim_task(task_id, duration=600))
    await command_reply(fast, http, f"watch {task_id}")
    again = await command_reply(fast, http, f"watch {task_id}")
    assert "already watching *Import 0005*" in again.text
    await eventually(lambda: fast.runtime.followups.polls >= 2)

    done = await command_reply(fast, http, f"unwatch {task_id}")
    assert done.ephemeral and done.text == f"This channel no longer watches `{task_id}`."
    none = await command_reply(fast, http, f"unwatch {task_id}")
    assert "was not watching" in none.text
    assert "not watching any task" in rendered(await command_reply(fast, http, "watching"))
    # The last channel left, so the task is no longer polled: while another watch plays out
    # from start to alert, the unwatched task gets no show call.
    polls = fast.simulator.requests[("show", task_id)]
    marker = "f0110000000000000000000000000006"
    fast.simulator.add_task(sim_task(marker, duration=0.5))
    await command_reply(fast, http, f"watch {marker}")
    await fast.slack.wait_for(lambda _: len(alerts_about(fast, marker)) >= 1, timeout=10)
    assert fast.simulator.requests[("show", task_id)] == polls
    assert alerts_about(fast, task_id) == []


# --- the project feed --------------------------------------------------------------------------


async def test_subscribe_announces_tasks_finishing_after_it_once_and_never_earlier_ones(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    finished_before = "fee00000000000000000000000000001"
    finishes_after = "fee00000000000000000000000000002"
    other_resource = "fee00000000000000000000000000003"
    fast.simulator.add_task(sim_task(finished_before, duration=1.0, started_ago=10))
    fast.simulator.add_task(sim_task(finishes_after, duration=1.5, started_ago=0.5))
    fast.simulator.add_task(sim_task(other_resource, duration=1.5, started_ago=0.5, resource=OTHER_RESOURCE))

    confirmation = await command_reply(fast, http, f"subscribe {RESOURCE}")
    assert confirmation.ephemeral
    assert (
        confirmation.text
        == f"This channel will hear about every task of `{RESOURCE}` that finishes from now on."
    )

    await fast.slack.wait_for(lambda _: len(alerts_about(fast, finishes_after)) >= 1, timeout=10)
    # Several more list polls after the announcement: none may announce it again.
    after = fast.runtime.followups.feed_polls
    await eventually(lambda: fast.runtime.followups.feed_polls >= after + 3)
    await all_delivered(fast)
    (announcement,) = alerts_about(fast, finishes_after)
    assert announcement.channel == CHANNEL
    assert "thread_ts" not in announcement.payload
    assert "<@" not in announcement.text  # a feed mentions nobody
    assert "from this channel's project feed" in rendered(announcement)
    assert alerts_about(fast, finished_before) == []
    assert alerts_about(fast, other_resource) == []
    assert fast.simulator.requests[("list", "")] == fast.runtime.followups.feed_polls

    listing = await command_reply(fast, http, "watching")
    assert f"`{RESOURCE}`" in rendered(listing)
    assert (await command_reply(fast, http, "unsubscribe")).text == "This channel's project feed is off."
    assert "has no project feed" in (await command_reply(fast, http, "unsubscribe")).text
    assert "No project feed in this channel." in rendered(await command_reply(fast, http, "watching"))


async def test_unsubscribed_channel_hears_nothing(fast: LocalStack, http: httpx.AsyncClient) -> None:
    later = "fee00000000000000000000000000004"
    fast.simulator.add_task(sim_task(later, duration=1.0, started_ago=0.2))
    await command_reply(fast, http, "subscribe")
    await command_reply(fast, http, "subscribe", channel=OTHER)
    assert (await command_reply(fast, http, "unsubscribe")).text == "This channel's project feed is off."
    # The channel that kept its feed hears of the task; the one that left does not.
    await fast.slack.wait_for(lambda _: len(alerts_about(fast, later)) >= 1, timeout=10)
    await all_delivered(fast)
    assert [m.channel for m in alerts_about(fast, later)] == [OTHER]


# --- cost -----------------------------------------------------------------------------------------


async def test_a_thousand_channels_on_one_task_cost_one_poll_per_interval(
    fast: LocalStack, http: httpx.AsyncClient
) -> None:
    task_id = "f0110000000000000000000000000999"
    fast.simulator.add_task(sim_task(task_id, duration=600, total_count=1_000_000))
    channels = [f"C0THOU{n:04d}" for n in range(1000)]
    by_command = channels[:50]
    started = time.monotonic()
    # Some channels ask through Slack, the rest through the engine call those commands end in
    # (1,000 signed commands would spend the test's time on Bolt, not on what is measured).
    responses = await asyncio.gather(
        *(fast.command(http, f"watch {task_id}", channel_id=c) for c in by_command)
    )
    assert all(r.status_code == 200 for r in responses)
    for channel in channels[len(by_command) :]:
        await fast.runtime.followups.watch(
            team_id=fast.slack.team_id, task_id=task_id, channel_id=channel, user_id="U0ASKER01"
        )
    await fast.slack.wait_for(
        lambda _: sum("I'll tell this channel" in m.text for m in replies(fast)) >= len(by_command),
        timeout=20,
    )
    setup_seconds = time.monotonic() - started
    (watch,) = await fast.runtime.storage.active_watches()
    assert len(watch.subscribers) == len(channels)

    # While the watches were made, the only show calls besides the commands' own were polls,
    # at most one per interval.
    polls = fast.simulator.requests[("show", task_id)] - len(by_command)
    assert 1 <= polls <= setup_seconds / (POLL * 0.9) + 2, (polls, setup_seconds)

    # A steady window with all 1,000 channels watching: still one poll per interval.
    calls_before, window_start = fast.simulator.requests[("show", task_id)], time.monotonic()
    await eventually(lambda: fast.simulator.requests[("show", task_id)] >= calls_before + 5)
    window = time.monotonic() - window_start
    calls = fast.simulator.requests[("show", task_id)] - calls_before
    assert calls <= window / (POLL * 0.9) + 1, (calls, window)
    assert window >= 4 * POLL * 0.9
