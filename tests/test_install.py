"""Issue 4 end to end: installed by workspace admins, over real sockets.

The bot runs in multi-workspace mode (Bolt OAuth, slack_sdk's SQLAlchemy stores) behind its
real HTTP server; the Slack stand-in and one MetaStudio simulator per project are real servers
too. Every request below is what Slack would send, signed with the signing secret.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot import messages
from bot.db.workspaces import mask_access_key
from bot.devtools.slack_standin import PostedMessage
from bot.slack import ids
from bot.slack.clients import BOT_SCOPES
from bot.slack.ids import DELIVERY_EVENT
from tests.install_support import (
    AK_A,
    CHANNEL_A,
    GRID_ORG,
    PROJECT_A,
    SK_A,
    TASK_A,
    MultiStack,
    Workspace,
    actions_in,
    authorize_link,
    connection_values,
    guardrail_values,
    multi_stack,
    project_a,
    view_text,
)
from tests.support.clock import FakeClock
from tests.support.waiting import eventually

T = TypeVar("T")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def stack(tmp_path: Path, sqlite_url: str, clock: FakeClock) -> AsyncIterator[MultiStack]:
    async with multi_stack(tmp_path, sqlite_url, {"A": project_a(clock)}) as local:
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

    store = stack.runtime.installation_store
    assert store is not None
    installation = await store.async_find_installation(enterprise_id=None, team_id=team.team_id)
    assert installation is not None and installation.bot_token == token

    await team.connect(stack.projects["A"])
    response = await team.command(TASK_A, channel=CHANNEL_A)
    assert response.status_code == 200
    card = await team.wait_message(
        lambda m: m.via == "chat.postMessage" and m.channel == CHANNEL_A, what="the card"
    )
    assert "Team A import" in card.text + str(card.blocks)
    assert ids.ACTION_WATCH in str(card.blocks)
    assert {call.token for call in stack.slack.calls_to("chat.postMessage")} == {token}


async def test_an_org_wide_grid_install_is_refused_with_a_page_and_its_token_revoked(
    stack: MultiStack,
) -> None:
    org_admin = stack.workspace("T0TEAMAAA1", admin="U0ORGADMIN", member="U0MEMBERA1", enterprise_id=GRID_ORG)
    page = await org_admin.install(org_wide=True)
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert html.escape(messages.text("install_org_wide_refused")) in page.text
    [token] = [t for t, issued in stack.slack.tokens.items() if issued.team_id == GRID_ORG]
    assert stack.slack.tokens[token].revoked, "the refused install's token is handed back"
    assert [call.token for call in stack.slack.calls_to("auth.revoke")] == [token]
    assert sum((await stack.rows_mentioning(GRID_ORG)).values()) == 0, "nothing of the org is stored"

    # A workspace of the same org installs as usual, and answers /task.
    assert (await org_admin.install()).status_code == 200
    store = stack.runtime.installation_store
    assert store is not None
    found = await store.find_team(org_admin.team_id)
    assert found is not None and found.enterprise_id == GRID_ORG and not found.is_enterprise_install
    answer = await org_admin.command("help", channel=CHANNEL_A)
    assert answer.status_code == 200 and "/task" in answer.json()["text"]


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
    return sum(
        1
        for call in stack.slack.calls_to("oauth.v2.access")
        if call.params.get("grant_type") == "refresh_token"
    )


def _is_alert(message: PostedMessage) -> bool:
    metadata = message.payload.get("metadata") or {}
    return message.via == "chat.postMessage" and metadata.get("event_type") == DELIVERY_EVENT


@pytest.mark.parametrize("enterprise_id", [None, GRID_ORG], ids=["workspace", "grid-workspace"])
async def test_scheduled_alert_refreshes_an_expiring_token_before_it_posts(
    stack: MultiStack, clock: FakeClock, enterprise_id: str | None
) -> None:
    # Tokens live one hour: inside the two hours before expiry in which a token is refreshed.
    stack.slack.token_lifetime = 3600
    team = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1", enterprise_id=enterprise_id)
    assert (await team.install()).status_code == 200
    [installed] = team.tokens()
    assert installed.startswith("xoxe.xoxb-")
    await team.connect(stack.projects["A"])
    # Bolt refreshed the token for that incoming request (the modal submission) on its own.
    assert _refreshes(stack) >= 1

    await team.command(f"watch {TASK_A}", channel=CHANNEL_A)
    await team.wait_message(
        lambda m: m.via == "response_url" and "Team A import" in m.text, what="watch started"
    )
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
    store = stack.runtime.installation_store
    assert store is not None
    saved = await store.async_find_installation(enterprise_id=enterprise_id, team_id=team.team_id)
    assert saved is not None and saved.bot_token == post.token, (
        "the refreshed token was saved for the next run"
    )
    assert saved.enterprise_id == enterprise_id


ADMIN, MEMBER = "U0ADMINA01", "U0MEMBERA1"


@pytest.fixture
async def team(stack: MultiStack) -> Workspace:
    # Inside an Enterprise Grid org: App Home names the installer from outside any request.
    workspace = stack.workspace("T0TEAMAAA1", admin=ADMIN, member=MEMBER, enterprise_id=GRID_ORG)
    assert (await workspace.install()).status_code == 200
    return workspace


async def test_app_home_admin_gets_configure_buttons_member_gets_status(
    stack: MultiStack, team: Workspace
) -> None:
    admin_view = await team.open_home(ADMIN)
    assert {ids.ACTION_CONFIGURE, ids.ACTION_GUARDRAILS} <= actions_in(admin_view)
    assert messages.text("home_not_connected") in view_text(admin_view)

    member_view = await team.open_home(MEMBER)
    assert actions_in(member_view) == set()
    # The member is told whom to ask: the admin who installed taskbot.
    assert messages.text("home_admins_ask", admins=f"<@{ADMIN}>") in view_text(member_view)

    await team.connect(stack.projects["A"])
    admin_view = await team.open_home(ADMIN)
    member_view = await team.open_home(MEMBER)
    for view in (admin_view, member_view):
        assert PROJECT_A in view_text(view)
        assert SK_A not in json.dumps(view)
    assert mask_access_key(AK_A) in view_text(admin_view)
    assert mask_access_key(AK_A) not in view_text(member_view), "only admins see even the masked key"
    assert ADMIN in view_text(admin_view), "the audit log names who connected"
    assert actions_in(member_view) == set()
    assert [call.token for call in stack.slack.calls_to("views.publish")] == [next(iter(team.tokens()))] * 5


async def test_configure_modal_open_test_submit(stack: MultiStack, team: Workspace, tmp_path: Path) -> None:
    project = stack.projects["A"]
    home_view = await team.open_home(ADMIN)
    await team.click(ids.ACTION_CONFIGURE, user=ADMIN, view={"id": "VHOME00001", **home_view})
    opened = await eventually(lambda: _views(stack, "views.open"), what="views.open")
    modal = opened[0]["view"]
    assert modal["callback_id"] == ids.CONNECTION_MODAL and opened[0]["trigger_id"]

    # Test connection calls the simulator's list API with what is typed, and shows the outcome.
    lists_before = project.simulator.requests[("list", "")]
    typed = {**modal, "id": "VMODAL0001", "hash": "h1", "state": {"values": connection_values(project)}}
    await team.click(ids.ACTION_TEST_CONNECTION, user=ADMIN, view=typed)
    [update] = await eventually(lambda: _views(stack, "views.update"), what="views.update")
    assert update["view_id"] == "VMODAL0001" and update["hash"] == "h1"
    assert messages.text("connection_test_ok", count="1") in view_text(update["view"])
    assert project.simulator.requests[("list", "")] == lists_before + 1
    wrong = {**typed, "state": {"values": connection_values(project, secret_key="not-the-secret-key-0000")}}
    await team.click(ids.ACTION_TEST_CONNECTION, user=ADMIN, view=wrong)
    updates = await eventually(lambda: _views(stack, "views.update")[1:], what="second views.update")
    assert "The test call failed" in view_text(updates[0]["view"])
    assert "not-the-secret-key" not in json.dumps(updates[0]["view"])

    # Invalid values: field errors in the HTTP response itself, nothing saved.
    bad = connection_values(project, project_id="no!", endpoint="ftp://example.com")
    response = await team.submit(ids.CONNECTION_MODAL, bad, user=ADMIN)
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) >= {ids.ConnectionInput.PROJECT_ID, ids.ConnectionInput.ENDPOINT}
    assert body["errors"][ids.ConnectionInput.PROJECT_ID] == messages.text(
        "connection_error_project_id_invalid"
    )
    assert await stack.runtime.workspaces.get_connection(team.team_id) is None  # type: ignore[union-attr]

    # Valid values: saved encrypted, App Home republished, audited.
    published = len(stack.slack.views)
    await team.connect(project)
    republished = await eventually(
        lambda: team.published_since(published, ADMIN), what="App Home republished"
    )
    assert PROJECT_A in view_text(republished[-1]["view"])
    [entry] = await stack.runtime.workspaces.audit(team.team_id)  # type: ignore[union-attr]
    assert (entry.user_id, entry.action) == (ADMIN, "connection.updated")
    assert SK_A not in entry.detail and AK_A not in entry.detail
    raw = _database_bytes(tmp_path)
    assert PROJECT_A.encode() in raw, "the file read is the live database"
    for secret in (SK_A, AK_A):
        assert secret.encode() not in raw
    # The connection works: /task reaches that project with those credentials.
    await team.command(TASK_A, channel=CHANNEL_A)
    await team.wait_message(lambda m: m.via == "chat.postMessage" and "Team A import" in m.text, what="card")


async def test_non_admin_cannot_configure(stack: MultiStack, team: Workspace) -> None:
    await team.click(
        ids.ACTION_CONFIGURE, user=MEMBER, view={"id": "VHOME00002", "type": "home", "blocks": []}
    )
    await team.click(
        ids.ACTION_GUARDRAILS, user=MEMBER, view={"id": "VHOME00002", "type": "home", "blocks": []}
    )
    response = await team.submit(ids.CONNECTION_MODAL, connection_values(stack.projects["A"]), user=MEMBER)
    assert response.status_code == 200
    await team.submit(ids.GUARDRAILS_MODAL, guardrail_values(["C0ELSEWHER"], ""), user=MEMBER)

    refusals = await eventually(
        lambda: [m for m in team.messages() if m.channel == MEMBER][3:], what="four refusals by DM"
    )
    assert {m.text for m in refusals} == {messages.text("admin_only")}
    await team.open_home(ADMIN)  # a request after the four: their work has finished by now
    assert _views(stack, "views.open") == []
    assert await stack.runtime.workspaces.get_connection(team.team_id) is None  # type: ignore[union-attr]
    assert (await stack.runtime.workspaces.get_guardrails(team.team_id)).unrestricted  # type: ignore[union-attr]
    assert await stack.runtime.workspaces.audit(team.team_id) == []  # type: ignore[union-attr]


async def test_task_without_a_connection_says_where_or_whom(stack: MultiStack, team: Workspace) -> None:
    await team.command(TASK_A, channel=CHANNEL_A, user=ADMIN)
    to_admin = await team.wait_message(lambda m: m.via == "response_url", what="answer to the admin")
    assert to_admin.text == messages.text("not_connected_admin") and to_admin.ephemeral
    await team.command(TASK_A, channel=CHANNEL_A, user=MEMBER)
    to_member = await team.wait_message(
        lambda m: m.via == "response_url" and m is not to_admin, what="answer to the member"
    )
    assert to_member.text == messages.text("not_connected_member") and to_member.ephemeral
    assert stack.projects["A"].simulator.requests[("show", TASK_A)] == 0


def _database_bytes(workdir: Path) -> bytes:
    """The SQLite file as it is on disk, with its journal or WAL when there is one."""
    return b"".join(path.read_bytes() for path in sorted(workdir.glob("taskbot.db*")))


def _views(stack: MultiStack, method: str) -> list[dict[str, Any]]:
    return [view for view in stack.slack.views if view["method"] == method]


async def test_a_connection_saved_without_a_project_id_is_looked_up_through_iam(stack: MultiStack) -> None:
    team = stack.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1")
    assert (await team.install()).status_code == 200
    project = stack.projects["A"]
    values = connection_values(project, project_id="")
    region = project.simulator.region
    field = ids.ConnectionInput.REGION
    values[field][field.action_id]["selected_option"] = {
        "value": region,
        "text": {"type": "plain_text", "text": region},
    }
    looked_up = project.simulator.requests[("projects", "")]

    response = await team.submit(ids.CONNECTION_MODAL, values, user=team.admin)
    assert response.status_code == 200 and not response.content, response.text
    workspaces = stack.runtime.workspaces
    assert workspaces is not None
    saved = await eventually(lambda: workspaces.get_connection(team.team_id), what="connection saved")
    # IAM's GET /v3/projects?name=<region> answered the project the keys belong to, as the SDK does.
    assert saved.project_id == project.project_id
    assert project.simulator.requests[("projects", "")] == looked_up + 1
