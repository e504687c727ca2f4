"""The Slack commands and the feed against the simulator in SDK mode (repeated ``resource``,
``begin_time``/``end_time`` applied), over real sockets: Bolt behind its HTTP server, the
simulator and the Slack stand-in on loopback."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack, demo_stack, is_alert
from bot.devtools.slack_standin import PostedMessage
from bot.slack import ids
from tests.support.waiting import eventually

EXPORT = "knowledge-intent-question-export"
IMPORT = "knowledge-base-document-import"
THIRD = "knowledge-intent-question-create"
POLL = 0.1


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


def task(task_id: str, resource: str, *, duration: float, started_ago: float) -> sim.SimTask:
    return sim.SimTask(
        task_id=task_id,
        task_name=f"Task {task_id[-4:]}",
        resource=resource,
        total_count=10,
        duration_seconds=duration,
        begin_time_ms=round((time.time() - started_ago) * 1000),
    )


def alerts_about(stack: LocalStack, task_id: str) -> list[PostedMessage]:
    return [m for m in stack.slack.messages if is_alert(m) and task_id in json.dumps(m.payload)]


def open_buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        b["accessory"]["value"]
        for b in blocks
        if b.get("type") == "section" and b.get("accessory", {}).get("action_id") == ids.ACTION_OPEN
    ]


async def test_recent_with_two_resources(tmp_path: Path, http: httpx.AsyncClient) -> None:
    async with demo_stack(tmp_path) as stack:
        await stack.command(http, f"recent {EXPORT} {IMPORT}")
        [message] = await stack.slack.wait_for_messages(1)
        shown = open_buttons(message.blocks)
        # The demo set holds five tasks of these two resources; comma-joined, SDK mode matches none.
        assert len(shown) == 5
        assert {stack.simulator.task(t).resource for t in shown} == {EXPORT, IMPORT}


async def test_feed_filtered_on_two_resources(tmp_path: Path, http: httpx.AsyncClient) -> None:
    a, b, c = (
        "feed0000000000000000000000000001",
        "feed0000000000000000000000000002",
        "feed0000000000000000000000000003",
    )
    simulator = sim.Simulator(tasks=[])
    async with demo_stack(
        tmp_path, simulator=simulator, poll_seconds=POLL, feed_poll_seconds=POLL, api_rate=2000.0
    ) as stack:
        await stack.command(http, f"subscribe {EXPORT} {IMPORT}")
        # A feed announces only what finishes after it began: the tasks start once it has polled,
        # whatever the stack's start and the command took.
        await eventually(lambda: stack.runtime.followups.feed_polls >= 1, what="the feed's first poll")
        simulator.add_task(task(a, EXPORT, duration=1.0, started_ago=0.2))
        simulator.add_task(task(b, IMPORT, duration=1.2, started_ago=0.2))
        simulator.add_task(task(c, THIRD, duration=1.0, started_ago=0.2))
        await eventually(lambda: alerts_about(stack, a) and alerts_about(stack, b), what="alerts on a and b")
        # c finished with a: two more polls after a's alert would have announced it.
        polls = stack.runtime.followups.feed_polls
        await eventually(lambda: stack.runtime.followups.feed_polls >= polls + 2, what="two more feed polls")
        assert alerts_about(stack, c) == []
        assert len(alerts_about(stack, a)) == len(alerts_about(stack, b)) == 1


async def test_feed_stops_when_the_server_ignores_offset(
    tmp_path: Path, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="taskbot")
    simulator = sim.Simulator(tasks=[])
    # More running tasks than one page (100): a server that ignores offset repeats page one.
    for index in range(150):
        simulator.add_task(task(f"{index:032x}", THIRD, duration=3600, started_ago=1 + index / 1000))
    simulator.honour_offset = False
    async with demo_stack(
        tmp_path, simulator=simulator, poll_seconds=POLL, feed_poll_seconds=POLL, api_rate=2000.0
    ) as stack:
        await stack.command(http, "subscribe")
        await eventually(lambda: stack.runtime.followups.feed_polls >= 8)
        calls = stack.simulator.requests[("list", "")]
        stopped = sum("ignores offset" in r.getMessage() for r in caplog.records)
    # Each poll stops after the repeated page: two calls, not LIST_MAX_PAGES (5).
    assert stopped >= 3
    assert calls <= 2 * stopped + 2


async def test_single_workspace_without_project_id_looks_it_up_in_the_simulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.config import Settings
    from bot.servers import serve_asgi
    from bot.services.connections import env_client

    simulator = sim.Simulator()
    async with serve_asgi(simulator.app) as url:
        for name in ("HUAWEICLOUD_SDK_PROJECT_ID", "METASTUDIO_PROJECT_ID", "METASTUDIO_IAM_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HUAWEICLOUD_SDK_AK", sim.DEMO_ACCESS_KEY)
        monkeypatch.setenv("HUAWEICLOUD_SDK_SK", sim.DEMO_SECRET_KEY)
        monkeypatch.setenv("METASTUDIO_ENDPOINT", url)
        monkeypatch.setenv("METASTUDIO_REGION", sim.DEMO_REGION)
        async with env_client(Settings()) as client:
            shown = await client.get_task(sim.SEED_TASK_ID)
            await client.list_tasks(resources=[EXPORT, IMPORT])
    assert shown.value.task_id == sim.SEED_TASK_ID
    assert await client.project_id() == sim.DEMO_PROJECT_ID
    assert simulator.requests[("projects", "")] == 1
