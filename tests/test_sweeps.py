"""The watches' change detector on the follow-ups' clock, driven as Slack drives it:
signed slash commands to the Bolt app's real server, the simulator and the Slack stand-in on
loopback sockets. The stack polls every 0.4 s, so its list sweep (the ``changes:<team>`` job)
runs every second, while a watch no sweep shows is still polled only every 27 s: an alert that
comes within a sweep came from the sweep."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.devtools.demo import LocalStack
from bot.followups import FollowUps
from bot.followups.changes import sweep_job
from bot.followups.polling import UNLISTED_CEILING
from tests.support.waiting import eventually
from tests.test_slack_followups import (
    CHANNEL,
    OTHER,
    alerts_about,
    command_reply,
    on_an_empty_simulator,
    sim_task,
)

POLL = 0.4
LIST = 1.0
"""``list_seconds`` at that poll interval: 2.5 base intervals."""
LOAD_SLACK = 5.0
"""What a loaded machine may add to an alert's delay (a poll, a database write, a Slack post)."""
LONG = 3 * 3600.0
"""A three-hour task: its estimate alone would space its polls by the ceiling."""


@pytest.fixture
async def sweeping(tmp_path: Path) -> AsyncIterator[LocalStack]:
    async with on_an_empty_simulator(
        tmp_path, poll_seconds=POLL, max_poll_seconds=600.0, card_update_seconds=60.0
    ) as local:
        yield local


def long_tasks(stack: LocalStack, *task_ids: str) -> list[str]:
    """Three-hour imports of a million items, begun now, in the simulator; their ids."""
    for task_id in task_ids:
        stack.simulator.add_task(sim_task(task_id, duration=LONG, total_count=1_000_000))
    return list(task_ids)


async def two_watched_and_swept(
    stack: LocalStack, http: httpx.AsyncClient, first: str, second: str, *, second_channel: str = CHANNEL
) -> None:
    """Two long tasks watched one after the other, the second from ``second_channel``: the
    second watch arms the workspace's sweep, the first alone does not. Returns once a sweep has
    shown both."""
    long_tasks(stack, first, second)
    await command_reply(stack, http, f"watch {first}")
    assert not sweep_armed(stack)
    await command_reply(stack, http, f"watch {second}", channel=second_channel)
    assert sweep_armed(stack)
    await eventually(lambda: all_listed(stack, 2), what="a sweep showing both watches")


def engine_of(stack: LocalStack) -> FollowUps:
    return stack.runtime.followups


def sweep_armed(stack: LocalStack) -> bool:
    return engine_of(stack).scheduler.pending(sweep_job(stack.slack.team_id))


def all_listed(stack: LocalStack, count: int) -> bool:
    plans = engine_of(stack).watches.plans(stack.slack.team_id)
    return len(plans) == count and all(plan.listed for plan in plans)


def assert_on_its_own(stack: LocalStack) -> None:
    """The workspace's one watch left waits for no sweep: its next poll is within the unlisted ceiling."""
    engine = engine_of(stack)
    (plan,) = engine.watches.plans(stack.slack.team_id)
    assert not plan.listed
    assert plan.next_poll_at - time.time() <= UNLISTED_CEILING * (1 + engine.policy.jitter)


async def test_the_policy_of_this_stack_sweeps_well_within_the_unlisted_ceiling(sweeping: LocalStack) -> None:
    policy = engine_of(sweeping).policy
    assert policy.list_seconds == LIST
    assert policy.ceiling_for(listed=False) == UNLISTED_CEILING


async def test_an_early_end_is_alerted_within_one_sweep_not_the_poll_ceiling(
    sweeping: LocalStack, http: httpx.AsyncClient
) -> None:
    failing, steady = "5e1f0000000000000000000000000001", "5e1f0000000000000000000000000002"
    await two_watched_and_swept(sweeping, http, failing, steady, second_channel=OTHER)
    # A sweep showed both: their own next polls are minutes away, planned from the rows.
    soonest = min(p.next_poll_at for p in engine_of(sweeping).watches.plans(sweeping.slack.team_id))
    assert soonest - time.time() > UNLISTED_CEILING

    # The task fails now: end_time set, counts frozen.
    task = sweeping.simulator.task(failing)
    ends_at = time.time() + 0.5
    sweeping.simulator.add_task(
        dataclasses.replace(task, ends_early_at_seconds=ends_at - task.begin_time_ms / 1000)
    )
    await sweeping.slack.wait_for(
        lambda _: len(alerts_about(sweeping, failing)) >= 1, timeout=UNLISTED_CEILING
    )
    (alert,) = alerts_about(sweeping, failing)
    delay = alert.wall - ends_at
    # Its next poll was minutes away, and an unlisted watch waits up to 27 s (24.3 with jitter).
    assert delay <= LIST * 1.1 + LOAD_SLACK, delay
    assert alert.channel == CHANNEL
    assert alerts_about(sweeping, steady) == []
    # One watch left: a lone watch costs no list call, its job is gone.
    await eventually(lambda: not sweep_armed(sweeping), what="the sweep job cancelled")
    assert_on_its_own(sweeping)


async def test_the_sweep_job_runs_only_while_two_watches_run(
    sweeping: LocalStack, http: httpx.AsyncClient
) -> None:
    first, second = "5e1f0000000000000000000000000011", "5e1f0000000000000000000000000012"
    await two_watched_and_swept(sweeping, http, first, second)

    await command_reply(sweeping, http, f"unwatch {second}")
    assert not sweep_armed(sweeping)
    assert_on_its_own(sweeping)

    await command_reply(sweeping, http, f"watch {second}", channel=OTHER)
    assert sweep_armed(sweeping)


async def test_one_list_call_serves_every_watch_of_the_workspace(
    sweeping: LocalStack, http: httpx.AsyncClient
) -> None:
    task_ids = long_tasks(sweeping, *(f"5e1f00000000000000000000000002{n:02d}" for n in range(6)))
    for number, task_id in enumerate(task_ids):
        await command_reply(sweeping, http, f"watch {task_id}", channel=f"C0SWEEP{number:03d}")
    await eventually(lambda: all_listed(sweeping, len(task_ids)), what="a sweep showing every watch")
    started = time.time()
    lists = sweeping.simulator.requests[("list", "")]
    shows = sum(sweeping.simulator.requests[("show", t)] for t in task_ids)
    await eventually(lambda: sweeping.simulator.requests[("list", "")] >= lists + 3, what="three more sweeps")
    elapsed = time.time() - started

    # One call per sweep, however many watches: at most one per 0.9 list interval (the jitter).
    assert sweeping.simulator.requests[("list", "")] - lists <= elapsed / (LIST * 0.9) + 1
    assert sweeping.simulator.requests[("list", "")] == engine_of(sweeping).stats.list_pages
    # Each row stood for a poll: no watch was polled on its own meanwhile.
    assert sum(sweeping.simulator.requests[("show", t)] for t in task_ids) == shows
    assert all_listed(sweeping, len(task_ids))
