"""Cold start: the first burst of commands after a start authorizes each workspace once.

Bolt's authorize calls ``auth.test`` for every request until its first call returns; the first
500 commands after a start made 104 to 131 of them on the ack path. Counted at the Slack
stand-in, over real sockets, in single- and multi-workspace mode.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import httpx

from bot.app import create_asgi
from bot.devtools.demo import LocalStack
from bot.servers import serve_asgi
from tests.install_support import Workspace, multi_stack

BURST = 100


async def test_first_burst_after_start_makes_one_auth_test_single_workspace(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    assert stack.slack.calls_to("auth.test") == []
    responses = await asyncio.gather(*(stack.command(http, "help") for _ in range(BURST)))
    assert [r.status_code for r in responses] == [200] * BURST
    assert all("/task" in r.json()["text"] for r in responses)
    assert len(stack.slack.calls_to("auth.test")) == 1


async def test_first_burst_after_start_makes_one_auth_test_per_workspace(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with multi_stack(tmp_path, sqlite_url, {}) as first:
        teams = [
            first.workspace("T0COLDAAA1", admin="U0ADMINA01", member="U0MEMBERA1"),
            first.workspace("T0COLDBBB2", admin="U0ADMINB02", member="U0MEMBERB2"),
        ]
        for team in teams:
            assert (await team.install()).status_code == 200
        # A second taskbot process on the same database: started now, nothing authorized yet.
        async with serve_asgi(create_asgi(first.settings)) as fresh_url:
            fresh = dataclasses.replace(first, bot_url=fresh_url)
            seen = len(first.slack.calls)
            burst = [
                Workspace(fresh, team.team_id, admin=team.admin, member=team.member).command(
                    "help", channel="C0COLD0001"
                )
                for team in teams
                for _ in range(BURST // 2)
            ]
            responses = await asyncio.gather(*burst)
            assert [r.status_code for r in responses] == [200] * BURST
            calls = [c for c in first.slack.calls[seen:] if c.method == "auth.test"]
            per_team = sorted(first.slack.tokens[c.token or ""].team_id for c in calls)
            assert per_team == sorted(team.team_id for team in teams)
