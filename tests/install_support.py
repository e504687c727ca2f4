"""Multi-workspace taskbot on loopback, driven exactly as Slack drives it.

``multi_stack`` serves the bot in OAuth mode (client id and secret, signing secret, a Fernet
key, no bot token) next to the Slack stand-in and one MetaStudio simulator per workspace.
``Workspace`` sends what Slack would send for one installed team: the OAuth round trip,
signed slash commands, button clicks, modal submissions and Events API callbacks.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Connection, MetaData, Table, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.app import Runtime, create_asgi
from bot.config import Settings
from bot.devtools import simulator as sim
from bot.devtools.simulator.auth import AccessKey
from bot.devtools.slack_standin import ApiCall, PostedMessage, SlackStandIn, sign_request
from bot.servers import serve_asgi
from bot.slack import ids
from tests.support.clock import FakeClock
from tests.support.forms import text_value, view_values
from tests.support.waiting import eventually

T = TypeVar("T")
APP_ID = "A0TASKBOT1"
BOT_USER = "U0TASKBOT1"


PROJECT_A = "aaaa0000aaaa0000aaaa0000aaaa0000"
TASK_A = "a0000000000000000000000000000001"
AK_A, SK_A = "ACCESSKEYTEAMA000001", "secret-key-of-team-a-0000000000000000"
CHANNEL_A = "C0AAAAAAA1"
PROJECT_B = "bbbb1111bbbb1111bbbb1111bbbb1111"
TASK_B = "b0000000000000000000000000000002"
AK_B, SK_B = "ACCESSKEYTEAMB000002", "secret-key-of-team-b-1111111111111111"
CHANNEL_B = "C0BBBBBBB2"
GRID_ORG = "E0ORGAAAA1"
"""The Enterprise Grid org of team A in ``two_teams``."""


def running_task(task_id: str, name: str, clock: FakeClock, *, seconds_left: float = 60.0) -> sim.SimTask:
    return sim.SimTask(
        task_id=task_id,
        task_name=name,
        resource="knowledge-intent-question-create",
        total_count=100,
        duration_seconds=2 * seconds_left,
        begin_time_ms=int((clock.now - seconds_left) * 1000),
    )


@dataclass
class Project:
    """One MetaStudio project on its own simulator, with its own access key."""

    simulator: sim.Simulator
    url: str
    project_id: str
    access_key: str
    secret_key: str


@dataclass
class MultiStack:
    slack: SlackStandIn
    settings: Settings
    bot_url: str
    runtime: Runtime
    http: httpx.AsyncClient
    signing_secret: str
    workdir: Path
    projects: dict[str, Project] = field(default_factory=dict)

    def workspace(
        self, team_id: str, *, admin: str, member: str, enterprise_id: str | None = None
    ) -> Workspace:
        """Users of ``team_id`` as users.info describes them: one admin, one ordinary member.

        ``enterprise_id``: the workspace belongs to that Enterprise Grid org (E…), so Slack
        names the org in every request and installation.
        """
        self.slack.users[admin] = {"is_admin": True, "team_id": team_id}
        self.slack.users[member] = {"is_admin": False, "team_id": team_id}
        return Workspace(self, team_id, admin=admin, member=member, enterprise_id=enterprise_id)

    async def two_teams(self) -> tuple[Workspace, Workspace]:
        """Teams A and B, each installed, connected to its own project and held to its own channel.

        A is a workspace of an Enterprise Grid org, B a standalone one: both kinds are covered.
        """
        a = self.workspace("T0TEAMAAA1", admin="U0ADMINA01", member="U0MEMBERA1", enterprise_id=GRID_ORG)
        b = self.workspace("T0TEAMBBB2", admin="U0ADMINB02", member="U0MEMBERB2")
        for team, project, channel in ((a, "A", CHANNEL_A), (b, "B", CHANNEL_B)):
            assert (await team.install()).status_code == 200
            await team.connect(self.projects[project])
            await team.guard(channels=[channel])
        return a, b

    def db(self) -> AsyncEngine:
        return create_async_engine(self.settings.database_url)

    async def rows_mentioning(self, needle: str) -> dict[str, int]:
        """Every table in the database: how many rows hold ``needle`` in any column."""
        return await rows_mentioning(self.settings.database_url, needle)


async def rows_mentioning(database_url: str, needle: str) -> dict[str, int]:
    """Every table in the database: how many rows hold ``needle`` in any column."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            # Reflected, not imported: a table someone adds later is scanned too.
            tables = await conn.run_sync(_reflect_all)
            assert tables, "the database has no tables"
            found: dict[str, int] = {}
            for table in tables:
                rows = (await conn.execute(select(table))).all()
                found[table.name] = sum(1 for row in rows if any(needle in str(value) for value in row))
    finally:
        await engine.dispose()
    return found


@dataclass
class Workspace:
    stack: MultiStack
    team_id: str
    admin: str
    member: str
    enterprise_id: str | None = None

    # -- OAuth -----------------------------------------------------------------------------
    async def install(self, *, with_cookie: bool = True, org_wide: bool = False) -> httpx.Response:
        """The admin opens /slack/install, approves at Slack, and Slack redirects back.

        The admin's browser is its own client. Bolt marks the state cookie ``Secure`` and the
        bot is served over plain http here, so the browser's cookie goes back as a header, as
        it would over https in production.
        """
        async with httpx.AsyncClient(timeout=20) as browser:
            page = await browser.get(f"{self.stack.bot_url}/slack/install")
            assert page.status_code == 200, page.text
            [state] = authorize_link(page)["state"]
            cookie = page.headers["set-cookie"]
            assert "Secure" in cookie and "HttpOnly" in cookie
            code = self.stack.slack.issue_code(
                self.enterprise_id if org_wide and self.enterprise_id else self.team_id,
                self.admin,
                enterprise_id=self.enterprise_id,
                org_wide=org_wide,
            )
            headers = {"Cookie": cookie.split(";", 1)[0]} if with_cookie else {}
            return await browser.get(
                f"{self.stack.bot_url}/slack/oauth_redirect",
                params={"code": code, "state": state},
                headers=headers,
            )

    # -- requests Slack sends ----------------------------------------------------------------
    def _grid(self) -> dict[str, Any]:
        """What an interaction payload says of the workspace's Grid org (nothing outside one)."""
        if self.enterprise_id is None:
            return {}
        return {
            "enterprise": {"id": self.enterprise_id, "name": f"Org {self.enterprise_id}"},
            "is_enterprise_install": False,
        }

    async def _post_form(self, form: dict[str, str]) -> httpx.Response:
        body = urlencode(form).encode()
        headers = sign_request(self.stack.signing_secret, body)
        return await self.stack.http.post(f"{self.stack.bot_url}/slack/events", content=body, headers=headers)

    async def command(self, text: str, *, channel: str, user: str | None = None) -> httpx.Response:
        return await self._post_form(
            {
                "token": "deprecated",
                "team_id": self.team_id,
                "team_domain": self.team_id.lower(),
                **({"enterprise_id": self.enterprise_id} if self.enterprise_id else {}),
                "channel_id": channel,
                "channel_name": "general",
                "user_id": user or self.member,
                "user_name": "someone",
                "command": "/task",
                "text": text,
                "api_app_id": APP_ID,
                "response_url": self.stack.slack.response_url(),
                "trigger_id": _trigger(),
            }
        )

    async def click(
        self,
        action_id: str,
        value: str = "",
        *,
        user: str,
        channel: str | None = None,
        message_ts: str | None = None,
        view: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """A button click on a message (channel given) or in App Home / a modal (view given)."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": self.team_id.lower()},
            "user": {"id": user, "team_id": self.team_id},
            **self._grid(),
            "api_app_id": APP_ID,
            "trigger_id": _trigger(),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value}],
        }
        if channel is not None:
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": message_ts is None,
            }
            payload["channel"] = {"id": channel}
            payload["response_url"] = self.stack.slack.response_url()
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = view
        return await self._post_form({"payload": json.dumps(payload)})

    async def submit(self, callback_id: str, values: dict[str, Any], *, user: str) -> httpx.Response:
        """A modal's Submit: view_submission with the typed values in ``state.values``."""
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_id.lower()},
            "user": {"id": user, "team_id": self.team_id},
            **self._grid(),
            "api_app_id": APP_ID,
            "trigger_id": _trigger(),
            "view": _view(callback_id, values),
        }
        return await self._post_form({"payload": json.dumps(payload)})

    async def event(self, event: dict[str, Any]) -> httpx.Response:
        envelope = {
            "token": "deprecated",
            "team_id": self.team_id,
            "enterprise_id": self.enterprise_id,
            "api_app_id": APP_ID,
            "event": {"event_ts": f"{time.time():.6f}", **event},
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": self.enterprise_id,
                    "team_id": self.team_id,
                    "user_id": BOT_USER,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }
        body = json.dumps(envelope).encode()
        headers = {**sign_request(self.stack.signing_secret, body), "Content-Type": "application/json"}
        return await self.stack.http.post(f"{self.stack.bot_url}/slack/events", content=body, headers=headers)

    async def open_home(self, user: str) -> dict[str, Any]:
        """app_home_opened; returns the view published for ``user`` in answer."""
        seen = len(self.stack.slack.views)
        response = await self.event(
            {"type": "app_home_opened", "user": user, "channel": "D0" + user, "tab": "home"}
        )
        assert response.status_code == 200
        published = await eventually(
            lambda: self.published_since(seen, user), what=f"views.publish for {user}"
        )
        return published[-1]["view"]

    async def watch(self, task_id: str, channel: str) -> None:
        """The member's ``/task watch``, confirmed in the channel."""
        seen = len(self.stack.slack.messages)
        await self.command(f"watch {task_id}", channel=channel)
        answer = await self.wait_message(after=seen, what=f"watch {task_id}")
        assert answer.text.startswith("I'll tell this channel"), answer.text

    # -- what Slack saw ------------------------------------------------------------------------
    def published_since(self, seen: int, user: str) -> list[dict[str, Any]]:
        return [
            v
            for v in self.stack.slack.views[seen:]
            if v["method"] == "views.publish" and v.get("user_id") == user
        ]

    def tokens(self) -> set[str]:
        return {token for token, issued in self.stack.slack.tokens.items() if issued.team_id == self.team_id}

    def calls(self, method: str) -> list[ApiCall]:
        mine = self.tokens()
        return [call for call in self.stack.slack.calls_to(method) if call.token in mine]

    def messages(self) -> list[PostedMessage]:
        """What reached Slack for this team: Web API posts made with its token, and response_url posts."""
        return [m for m in self.stack.slack.messages if m.team_id == self.team_id]

    async def wait_message(
        self,
        predicate: Callable[[PostedMessage], bool] = lambda _: True,
        *,
        what: str,
        after: int = 0,
        timeout: float = 10.0,
    ) -> PostedMessage:
        """The first message Slack received (after the first ``after`` ones) that matches."""

        async def found() -> PostedMessage | None:
            return next((m for m in self.stack.slack.messages[after:] if predicate(m)), None)

        return await eventually(found, within=timeout, what=what)

    # -- setup through the real admin paths ----------------------------------------------------
    async def connect(self, project: Project) -> None:
        """The admin saves the MetaStudio connection in the Configure modal."""
        response = await self.submit(ids.CONNECTION_MODAL, connection_values(project), user=self.admin)
        assert response.status_code == 200 and not response.content, response.text
        await eventually(
            lambda: self.stack.runtime.workspaces.get_connection(self.team_id), what="connection saved"
        )  # type: ignore[union-attr]

    async def guard(self, *, channels: Sequence[str] = (), usergroup: str = "") -> None:
        response = await self.submit(
            ids.GUARDRAILS_MODAL, guardrail_values(channels, usergroup), user=self.admin
        )
        assert response.status_code == 200 and not response.content, response.text
        workspaces = self.stack.runtime.workspaces
        assert workspaces is not None

        async def saved() -> bool:
            rules = await workspaces.get_guardrails(self.team_id)
            return rules.channels == tuple(channels) and (rules.usergroup_id or "") == usergroup

        await eventually(saved, what="guardrails saved")


def _reflect_all(sync: Connection) -> list[Table]:
    metadata = MetaData()
    metadata.reflect(bind=sync)
    assert set(metadata.tables) == set(inspect(sync).get_table_names())
    return list(metadata.tables.values())


def connection_values(
    project: Project,
    *,
    project_id: str | None = None,
    endpoint: str | None = None,
    secret_key: str | None = None,
) -> dict[str, Any]:
    """``view.state.values`` of the connection modal filled in for ``project`` (endpoint override, AK/SK)."""
    field = ids.ConnectionInput
    empty = (field.SECURITY_TOKEN, field.IAM_USERNAME, field.IAM_PASSWORD, field.IAM_DOMAIN)
    return view_values(
        {
            field.REGION: {"type": "static_select", "selected_option": None},
            field.ENDPOINT: text_value(endpoint if endpoint is not None else project.url),
            field.PROJECT_ID: text_value(project_id if project_id is not None else project.project_id),
            field.KIND: {
                "type": "radio_buttons",
                "selected_option": {"value": "aksk", "text": _plain("AK/SK")},
            },
            field.ACCESS_KEY: text_value(project.access_key),
            field.SECRET_KEY: text_value(secret_key if secret_key is not None else project.secret_key),
            **{part: text_value(None) for part in empty},
        }
    )


def guardrail_values(channels: Sequence[str], usergroup: str) -> dict[str, Any]:
    field = ids.GuardrailsInput
    return view_values(
        {
            field.CHANNELS: {"type": "multi_conversations_select", "selected_conversations": list(channels)},
            field.USERGROUP: text_value(usergroup or None),
        }
    )


def view_text(view: dict[str, Any]) -> str:
    return json.dumps(view.get("blocks", []), ensure_ascii=False)


def actions_in(view: dict[str, Any]) -> set[str]:
    return {
        element.get("action_id", "")
        for block in view.get("blocks", [])
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    }


def _view(callback_id: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "V" + uuid.uuid4().hex[:10].upper(),
        "team_id": "",
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": "",
        "state": {"values": values},
        "hash": uuid.uuid4().hex,
        "title": _plain("taskbot"),
        "blocks": [],
    }


def _plain(value: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": value}


def _trigger() -> str:
    return f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}"


def authorize_link(page: httpx.Response) -> dict[str, list[str]]:
    """The query of the "Add to Slack" link (or redirect) that sends the admin to Slack."""
    location = page.headers.get("location")
    if location is None:
        found = re.search(r'<a href="([^"]+)"', page.text)
        assert found, page.text
        location = html.unescape(found.group(1))
    parts = urlsplit(location)
    assert parts.netloc == "slack.com" and parts.path == "/oauth/v2/authorize", location
    return parse_qs(parts.query)


def make_project(project_id: str, tasks: list[sim.SimTask], clock: Callable[[], float]) -> sim.Simulator:
    """A simulator for one project that accepts one access key of its own (none of the demo keys)."""
    simulator = sim.Simulator(tasks, project_id=project_id, clock=clock)
    simulator.gateway.access_keys = {}
    return simulator


def project_a(clock: FakeClock, tasks: list[sim.SimTask] | None = None) -> tuple[sim.Simulator, str, str]:
    """Team A's project for ``multi_stack``: (simulator, access key, secret key). By default it
    holds one running task, ``TASK_A``."""
    if tasks is None:
        tasks = [running_task(TASK_A, "Team A import", clock)]
    return make_project(PROJECT_A, tasks, clock), AK_A, SK_A


def project_b(clock: FakeClock, tasks: list[sim.SimTask]) -> tuple[sim.Simulator, str, str]:
    """Team B's project for ``multi_stack``, with its own key pair."""
    return make_project(PROJECT_B, tasks, clock), AK_B, SK_B


@contextlib.asynccontextmanager
async def multi_stack(
    workdir: Path,
    database_url: str,
    projects: dict[str, tuple[sim.Simulator, str, str]],
    **overrides: Any,
) -> AsyncIterator[MultiStack]:
    """The bot in multi-workspace mode, the Slack stand-in and one simulator per project.

    ``projects`` maps a name to (simulator, access key, secret key); the key is registered
    with that simulator only, so a workspace can reach no project but its own.
    """
    signing_secret = secrets.token_hex(16)
    slack = SlackStandIn()
    async with contextlib.AsyncExitStack() as servers:
        served: dict[str, Project] = {}
        for name, (simulator, access_key, secret_key) in projects.items():
            simulator.gateway.access_keys[access_key] = AccessKey(secret_key, simulator.project_id)
            url = await servers.enter_async_context(serve_asgi(simulator.app))
            served[name] = Project(simulator, url, simulator.project_id, access_key, secret_key)
        slack.base_url = await servers.enter_async_context(serve_asgi(slack.app))
        values: dict[str, Any] = {
            "slack_signing_secret": SecretStr(signing_secret),
            "slack_client_id": slack.client_id,
            "slack_client_secret": SecretStr(slack.client_secret),
            "encryption_key": SecretStr(Fernet.generate_key().decode()),
            "slack_api_url": slack.api_url,
            "database_url": database_url,
            "max_retries": 1,
            "poll_seconds": 0.2,
            "max_poll_seconds": 0.5,
            "card_update_seconds": 0.2,
            "feed_poll_seconds": 0.2,
            "api_rate": 500.0,
            # The simulators listen on loopback over plain http: the operator's widened allow-list.
            "allowed_endpoint_hosts": ["http://127.0.0.1"],
        }
        values.update(overrides)
        settings = Settings(**values)
        assert settings.multi_workspace and settings.slack_bot_token is None
        asgi = create_asgi(settings)
        bot_url = await servers.enter_async_context(serve_asgi(asgi))
        http = await servers.enter_async_context(httpx.AsyncClient(timeout=20))
        yield MultiStack(slack, settings, bot_url, asgi.state.runtime, http, signing_secret, workdir, served)
