"""Issue 4 end to end: installed by workspace admins, over real sockets.

The bot runs in multi-workspace mode (Bolt OAuth, slack_sdk's SQLAlchemy stores) behind its
real HTTP server; the Slack stand-in and one MetaStudio simulator per project are real servers
too. Every request below is what Slack would send, signed with the signing secret.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore

from bot import cards
from bot import simulator as sim
from bot.engine import BOT_SCOPES
from bot.followups import DELIVERY_EVENT
from bot.slack_standin import PostedMessage
from tests.install_support import MultiStack, authorize_link, make_project, multi_stack

pytest_plugins = ["tests.databases"]

PROJECT_A = "aaaa0000aaaa0000aaaa0000aaaa0000"
TASK_A = "a0000000000000000000000000000001"
AK_A, SK_A = "ACCESSKEYTEAMA000001", "secret-key-of-team-a-0000000000000000"
CHANNEL_A = "C0AAAAAAA1"


class Clock:
    """The simulators' clock: tasks finish when a test moves it, not when time passes."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def running_task(task_id: str, name: str, clock: Clock, *, seconds_left: float = 60.0) -> sim.SimTask:
    return sim.SimTask(
        task_id=task_id,
        task_name=name,
        resource="knowledge-intent-question-create",
        total_count=100,
        duration_seconds=2 * seconds_left,
        begin_time_ms=int((clock.now - seconds_left) * 1000),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stack(tmp_path: Path, sqlite_url: str, clock: Clock) -> AsyncIterator[MultiStack]:
    simulator = make_project(PROJECT_A, [running_task(TASK_A, "Team A import", clock)], clock)
    async with multi_stack(tmp_path, sqlite_url, {"A": (simulator, AK_A, SK_A)}) as local:
        yield local


async def test_oauth_round_trip_then_task_uses_that_teams_token(stack: MultiStack) -> None:
    team = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1")

    page = await stack.http.get(f"{stack.bot_url}/slack/install")
    assert page.status_code in (200, 302)
    link = authorize_link(page)
    assert link["client_id"] == [stack.slack.client_id]
    assert link["scope"][0].split(",") == list(BOT_SCOPES)
    assert link["state"] == [page.cookies["slack-app-oauth-state"]]

    done = await team.install()
    assert done.status_code == 200, done.text
    [exchange] = stack.slack.calls_to("oauth.v2.access")
    assert exchange.params.get("grant_type") in (None, "authorization_code")
    [token] = team.tokens()

    store = AsyncSQLAlchemyInstallationStore(client_id=stack.slack.client_id, engine=stack.engine.storage.engine)
    installation = await store.async_find_installation(enterprise_id=None, team_id=team.team_id)
    assert installation is not None and installation.bot_token == token

    await team.connect(stack.projects["A"])
    response = await team.command(TASK_A, channel=CHANNEL_A)
    assert response.status_code == 200
    card = await team.wait_message(lambda m: m.via == "chat.postMessage" and m.channel == CHANNEL_A, what="the card")
    assert "Team A import" in card.text + str(card.blocks)
    assert cards.ACTION_WATCH in str(card.blocks)
    assert {call.token for call in stack.slack.calls_to("chat.postMessage")} == {token}


async def test_a_redirect_without_our_state_installs_nothing(stack: MultiStack) -> None:
    code = stack.slack.issue_code("T0FORGED01", "U0FORGED01")
    forged = await stack.http.get(
        f"{stack.bot_url}/slack/oauth_redirect", params={"code": code, "state": "made-up-state"}
    )
    assert forged.status_code >= 400
    # A real state, but in another browser than the one that started the install.
    team = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1")
    no_cookie = await team.install(with_cookie=False)
    assert no_cookie.status_code >= 400
    assert stack.slack.calls_to("oauth.v2.access") == []
    assert team.tokens() == set()
    assert sum((await stack.rows_mentioning("T0FORGED01")).values()) == 0
    assert sum((await stack.rows_mentioning("T0TEAMAAA1")).values()) == 0


def _refreshes(stack: MultiStack) -> int:
    return sum(1 for call in stack.slack.calls_to("oauth.v2.access") if call.params.get("grant_type") == "refresh_token")


def _is_alert(message: PostedMessage) -> bool:
    metadata = message.payload.get("metadata") or {}
    return message.via == "chat.postMessage" and metadata.get("event_type") == DELIVERY_EVENT


async def test_scheduled_alert_refreshes_an_expiring_token_before_it_posts(stack: MultiStack, clock: Clock) -> None:
    # Tokens live one hour: inside the two hours before expiry in which a token is refreshed.
    stack.slack.token_lifetime = 3600
    team = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1")
    assert (await team.install()).status_code == 200
    [installed] = team.tokens()
    assert installed.startswith("xoxe.xoxb-")
    await team.connect(stack.projects["A"])
    # Bolt refreshed the token for that incoming request (the modal submission) on its own.
    assert _refreshes(stack) >= 1

    await team.command(f"watch {TASK_A}", channel=CHANNEL_A)
    await team.wait_message(lambda m: m.via == "response_url" and "Team A import" in m.text, what="watch started")
    refreshed_by_requests = _refreshes(stack)
    issued_before = team.tokens()
    # Every token issued so far stops working at Slack: an alert posted without a refresh fails.
    for token in issued_before:
        stack.slack.tokens[token].expires_at = time.time() - 1

    clock.now += 120  # the task finishes; no request reaches the bot from here on
    alert = await team.wait_message(_is_alert, what="the completion alert", timeout=15)

    assert _refreshes(stack) > refreshed_by_requests, "the scheduler refreshed the token itself"
    [post] = [call for call in stack.slack.calls_to("chat.postMessage") if call.params.get("metadata")][:1]
    assert post.token not in issued_before
    assert stack.slack.tokens[post.token or ""].team_id == team.team_id
    assert alert.channel == CHANNEL_A and "Team A import" in alert.text + str(alert.blocks)
    store = AsyncSQLAlchemyInstallationStore(client_id=stack.slack.client_id, engine=stack.engine.storage.engine)
    saved = await store.async_find_installation(enterprise_id=None, team_id=team.team_id)
    assert saved is not None and saved.bot_token == post.token, "the refreshed token was saved for the next run"
