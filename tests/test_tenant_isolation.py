"""A workspace whose MetaStudio endpoint hangs delays only itself (issue 8, tenants are isolated).

Two installed workspaces over real sockets, each on its own simulator. A watches many tasks,
then its simulator turns hostile: every show call hangs past the call deadline. One task of B
finishes; B's alert must come in a few seconds, not after A's hanging polls let go of a global
pool of slots (57 s in the report; 8 s here, two 4 s deadlines, with the old global pool).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.devtools import simulator as sim
from tests.install_support import (
    CHANNEL_A,
    CHANNEL_B,
    TASK_B,
    MultiStack,
    multi_stack,
    project_a,
    project_b,
    running_task,
)
from tests.support.clock import FakeClock
from tests.support.waiting import eventually

DEADLINE = 4.0
"""TASKBOT_CALL_DEADLINE_SECONDS here: every hostile call holds its slot this long."""
HOSTILE_TASKS = 24
"""Three times the old global pool of 8: B's poll queued behind three rounds of A's."""


def _a_task(i: int) -> str:
    return f"a{i:031d}"


def _alert_for_b(stack: MultiStack, seen: int) -> bool:
    return any(
        m.via == "chat.postMessage" and "Team B quick export" in m.text + json.dumps(m.payload.get("blocks"))
        for m in stack.slack.messages[seen:]
    )


async def b_alert_delay(
    workdir: Path,
    database_url: str,
    *,
    prepare: Callable[[MultiStack], None] | None = None,
    **overrides: Any,
) -> float:
    """Seconds from B's task finishing to B's alert, while A's endpoint hangs every show call.

    ``prepare`` runs once the stack is up (``bench/bench_tenants.py`` swaps the scheduler there).
    """
    clock = FakeClock()
    hostile = [
        running_task(_a_task(i), f"Team A import {i}", clock, seconds_left=7200) for i in range(HOSTILE_TASKS)
    ]
    projects = {
        "A": project_a(clock, hostile),
        "B": project_b(clock, [running_task(TASK_B, "Team B quick export", clock, seconds_left=60)]),
    }
    sim_a, sim_b = projects["A"][0], projects["B"][0]
    async with multi_stack(workdir, database_url, projects, call_deadline=DEADLINE, **overrides) as stack:
        if prepare is not None:
            prepare(stack)
        a, b = await stack.two_teams()
        for i in range(HOSTILE_TASKS):
            await a.watch(_a_task(i), CHANNEL_A)
        await b.watch(TASK_B, CHANNEL_B)
        # A turns hostile: each show call hangs a little past the deadline.
        for i in range(HOSTILE_TASKS):
            sim_a.set_fault(_a_task(i), sim.Fault("slow", seconds=DEADLINE + 0.5))
        hung = sim_a.requests.copy()

        async def a_hanging() -> bool:
            started = sum(
                sim_a.requests[("show", _a_task(i))] - hung[("show", _a_task(i))]
                for i in range(HOSTILE_TASKS)
            )
            return started >= 4

        await eventually(a_hanging, what="A's polls hanging", within=DEADLINE * 4)
        # Every other watch of A falls due (max_poll_seconds is 0.5) and queues for a slot.
        await asyncio.sleep(1.0)
        # B's task finishes just after one of B's polls saw it running, so what is measured is
        # how long B's next poll waits for a slot, not where the clock move fell in that wait.
        polled = sim_b.requests[("show", TASK_B)]

        async def b_polled() -> bool:
            return sim_b.requests[("show", TASK_B)] > polled

        await eventually(b_polled, what="a poll of B", within=DEADLINE * 8)
        await asyncio.sleep(0.1)  # that poll's answer is read, with B's task running
        seen = len(stack.slack.messages)
        clock.now += 120
        finished = time.monotonic()

        async def b_told() -> bool:
            return _alert_for_b(stack, seen)

        await eventually(b_told, what="B's alert", within=DEADLINE * 8)
        delay = time.monotonic() - finished
        for i in range(HOSTILE_TASKS):
            sim_a.set_fault(_a_task(i), None)
        await asyncio.sleep(0)
        return delay


async def test_a_hanging_workspace_does_not_delay_another_workspaces_alert(
    tmp_path: Path, database_url: str
) -> None:
    delay = await b_alert_delay(tmp_path, database_url)
    # With one global pool of 8 slots, B's poll queued behind 16 of A's hanging polls: 7.9 to
    # 8.1 s (two deadlines) when this test ran against it. With fair slots B uses its own: 0.5 s.
    assert delay < DEADLINE / 2, f"B's alert took {delay:.1f} s behind A's hanging calls"
