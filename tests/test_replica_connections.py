"""A connection saved through one replica reaches the others within RECHECK_SECONDS (issue 21 item 2).

Two taskbot app instances behind their real HTTP servers on one PostgreSQL database, the Slack
stand-in and two MetaStudio simulators of the same project (the old endpoint and key, and the
new). The admin moves the connection through replica 1; replica 2 must answer ``/task`` from the
new endpoint with the new key within the stated bound, and never again from the old one.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from bot.app import create_asgi
from bot.servers import serve_asgi
from bot.services.connections import RECHECK_SECONDS
from bot.slack import ids
from tests.install_support import (
    CHANNEL_A,
    GRID_ORG,
    PROJECT_A,
    TASK_A,
    Workspace,
    connection_values,
    make_project,
    multi_stack,
    project_a,
    running_task,
)
from tests.support.clock import FakeClock
from tests.support.waiting import eventually

MOVED_AK, MOVED_SK = "ACCESSKEYMOVED000003", "secret-key-after-the-move-3333333333"


@pytest.mark.postgres
async def test_a_connection_moved_through_one_replica_reaches_the_other_within_the_bound(
    tmp_path: Path, postgres_url: str
) -> None:
    clock = FakeClock()
    moved = make_project(PROJECT_A, [running_task(TASK_A, "Moved import", clock)], clock)
    projects = {"A": project_a(clock), "moved": (moved, MOVED_AK, MOVED_SK)}
    async with multi_stack(tmp_path, postgres_url, projects) as stack:
        asgi = create_asgi(stack.settings)
        async with serve_asgi(asgi) as second_url:
            second = dataclasses.replace(stack, bot_url=second_url, runtime=asgi.state.runtime)
            on_first = stack.workspace(
                "T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1", enterprise_id=GRID_ORG
            )
            on_second = Workspace(second, on_first.team_id, on_first.admin, on_first.member, GRID_ORG)
            assert (await on_first.install()).status_code == 200
            await on_first.connect(stack.projects["A"])

            async def card_from_second() -> str:
                seen = len(stack.slack.messages)
                assert (await on_second.command(TASK_A, channel=CHANNEL_A)).status_code == 200
                card = await on_second.wait_message(
                    lambda m: m.via == "chat.postMessage", after=seen, what="replica 2's card"
                )
                return card.text + str(card.blocks)

            assert "Team A import" in await card_from_second()

            # The admin moves the connection (new endpoint, new key) through replica 1.
            values = connection_values(stack.projects["moved"])
            assert (
                await on_first.submit(ids.CONNECTION_MODAL, values, user=on_first.admin)
            ).status_code == 200
            workspaces = stack.runtime.workspaces
            assert workspaces is not None

            async def saved() -> bool:
                connection = await workspaces.get_connection(on_first.team_id)
                return connection is not None and connection.endpoint == stack.projects["moved"].url

            await eventually(saved, what="the new connection saved")
            moved_at = time.monotonic()

            async def second_moved() -> bool:
                return "Moved import" in await card_from_second()

            await eventually(second_moved, within=RECHECK_SECONDS + 5, what="replica 2 on the new endpoint")
            assert time.monotonic() - moved_at <= RECHECK_SECONDS + 3, "within the stated bound"

            old = stack.projects["A"].simulator.requests[("show", TASK_A)]
            assert "Moved import" in await card_from_second()
            assert stack.projects["A"].simulator.requests[("show", TASK_A)] == old, (
                "the old key is no longer used"
            )
