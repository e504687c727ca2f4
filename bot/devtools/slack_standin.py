"""A stand-in for Slack's Web API and for Slack itself, on loopback.

It lets ``taskbot demo``, the tests and the benchmarks run with no Slack account:

* it answers the Web API methods taskbot calls (``/api/<method>``) and records every call;
* it accepts ``response_url`` posts (``/response/<id>``) and records them;
* it serves Socket Mode (``apps.connections.open``, then a websocket) and, as Slack does, hands
  each envelope to ONE of the app's open connections, so several app processes can be
  connected at once (Slack picks one at random; here they take turns, so a test knows that
  each connection gets its share). Each websocket URL carries a ticket, so every
  connection is known by the app-level token that asked for it: app processes given tokens of
  their own can be told apart, and an envelope can be addressed to one of them, whichever
  connection it holds after reconnecting;
* it builds slash-command and interactivity requests signed with a real ``X-Slack-Signature``,
  exactly as Slack sends them to the bot.

Channels whose id starts with ``D`` or ``G`` (or are listed in ``not_in_channel``) answer
``chat.postMessage`` with ``not_in_channel``, as Slack does for a bot that was never invited;
``channel_errors`` makes any channel answer any error. Posting to a user id (``U…``) is a DM.
``conversations.history`` and ``conversations.replies`` return what was posted, with metadata.

Workflow steps: ``function_executed`` builds a signed event for a new function execution; the
executions and ``functions.completeSuccess``/``completeError`` are in ``bot.devtools.slack_steps``,
and the Socket Mode connections in ``bot.devtools.slack_socket_mode``, both mixed in here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from bot.devtools.slack_socket_mode import SocketModeStandIn
from bot.devtools.slack_steps import FUNCTION_TOKEN_SECONDS, Completion, Execution, StepsStandIn

DEMO_TEAM_ID = "T0DEMO0001"
DEMO_BOT_USER_ID = "U0TASKBOT1"
DEMO_BOT_TOKEN = "xoxb-demo-0000000000-taskbot"  # a stand-in token, accepted only here
DEMO_APP_TOKEN = "xapp-1-demo-0000000000-taskbot"  # app-level token for Socket Mode, accepted only here


@dataclass
class PostedMessage:
    """One message as a channel (or the requester, for ephemeral replies) would see it."""

    via: str  # "chat.postMessage", "chat.update", "chat.postEphemeral" or "response_url"
    channel: str | None
    payload: dict[str, Any]
    ts: str | None = None
    at: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)
    team_id: str | None = None

    @property
    def text(self) -> str:
        return str(self.payload.get("text") or "")

    @property
    def blocks(self) -> list[dict[str, Any]]:
        blocks = self.payload.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        return list(blocks)

    @property
    def ephemeral(self) -> bool:
        if self.via == "chat.postEphemeral":
            return True
        return self.via == "response_url" and self.payload.get("response_type", "ephemeral") == "ephemeral"


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    token: str | None


@dataclass(frozen=True)
class Grant:
    """An approved install, waiting for its ``oauth.v2.access`` exchange."""

    team_id: str
    user_id: str
    enterprise_id: str | None = None
    org_wide: bool = False


@dataclass
class IssuedToken:
    team_id: str
    expires_at: float | None = None  # wall-clock seconds; None for a token that never expires
    revoked: bool = False


class SlackStandIn(SocketModeStandIn, StepsStandIn):
    """The fake Slack. ``app`` is its ASGI app; ``base_url`` is set once it is served."""

    def __init__(
        self,
        *,
        team_id: str = DEMO_TEAM_ID,
        bot_token: str = DEMO_BOT_TOKEN,
        not_in_channel: Iterable[str] = (),
    ) -> None:
        self.team_id = team_id
        # token -> which workspace it belongs to; OAuth installs add more.
        self.tokens: dict[str, IssuedToken] = {bot_token: IssuedToken(team_id)}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> team id
        self.oauth_codes: dict[str, Grant] = {}  # code -> what the admin approved
        # Enterprise Grid: team id -> the id of the org it belongs to (E…); org-wide grants use E….
        self.enterprises: dict[str, str] = {}
        self.token_lifetime: int | None = None  # seconds; set to issue rotating (expiring) tokens
        self.client_id = "0000000000.1111111111"
        self.client_secret = "stand-in-client-secret"
        # user id -> users.info "user" fields (is_admin, is_owner, ...)
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        # user id -> Slack locale tag ("zh-CN"); users.info reports it only with include_locale=true.
        self.locales: dict[str, str] = {}
        self.users_info_delay = 0.0  # seconds users.info waits before answering, to make look-ups overlap
        self.users_info_active = self.users_info_peak = 0  # concurrent users.info calls: now, at most
        self.views: list[dict[str, Any]] = []
        self.not_in_channel = set(not_in_channel)
        # channel id -> the error chat.postMessage answers there ("channel_not_found", "is_archived", ...)
        self.channel_errors: dict[str, str] = {}
        self.calls: list[ApiCall] = []
        self.messages: list[PostedMessage] = []
        self.errors: dict[str, list[dict[str, Any]]] = {}
        self.base_url = ""
        self.app_tokens = {DEMO_APP_TOKEN}
        self._start_socket_mode()
        self.executions: dict[str, Execution] = {}
        self.completions: list[Completion] = []
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["POST", "GET"]),
                Route("/response/{hook}", self._response_url, methods=["POST"]),
                Route("/_recorded", self._recorded, methods=["GET"]),
                WebSocketRoute("/socket-mode", self._socket_mode),
            ]
        )

    # -- configuration ---------------------------------------------------------------------
    def fail_next(
        self, method: str, *, error: str = "ratelimited", status: int = 200, retry_after: int | None = None
    ) -> None:
        """Make the next call of ``method`` fail (``status=429`` with ``retry_after`` for a rate limit)."""
        self.errors.setdefault(method, []).append(
            {"error": error, "status": status, "retry_after": retry_after}
        )

    def response_url(self, hook: str | None = None) -> str:
        return f"{self.base_url}/response/{hook or uuid.uuid4().hex}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    # -- observation -----------------------------------------------------------------------
    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self, predicate: Callable[[list[PostedMessage]], bool], timeout: float = 5.0
    ) -> list[PostedMessage]:
        """Wait until ``predicate(messages)`` holds; returns the messages. Raises TimeoutError."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(self.messages)), timeout)
        return self.messages

    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[PostedMessage]:
        await self.wait_for(lambda messages: len(messages) >= count, timeout)
        return self.messages

    async def _record(self, message: PostedMessage) -> None:
        team_id = message.payload.pop("_team_id", None)
        message.payload.pop("_token", None)
        message.team_id = message.team_id or team_id
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    # -- HTTP handlers ---------------------------------------------------------------------
    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        params = await _read_params(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() or params.pop("token", None)
        self.calls.append(ApiCall(method, params, token))
        queued = self.errors.get(method)
        if queued:
            failure = queued.pop(0)
            headers = (
                {"Retry-After": str(failure["retry_after"])} if failure["retry_after"] is not None else {}
            )
            return JSONResponse(
                {"ok": False, "error": failure["error"]}, status_code=failure["status"], headers=headers
            )
        if method == "oauth.v2.access":
            return JSONResponse(await self._api_oauth_v2_access(params, request))
        if method == "apps.connections.open":
            if token not in self.app_tokens:
                return JSONResponse({"ok": False, "error": "invalid_auth"})
            ticket = uuid.uuid4().hex
            self._tickets[ticket] = token
            ws_url = self.base_url.replace("http://", "ws://", 1) + "/socket-mode?ticket=" + ticket
            return JSONResponse({"ok": True, "url": ws_url})
        issued = self.tokens.get(token or "")
        if issued is None or issued.revoked:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        if issued.expires_at is not None and issued.expires_at <= time.time():
            return JSONResponse({"ok": False, "error": "token_expired"})
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return JSONResponse({"ok": False, "error": "unknown_method"})
        params["_team_id"] = issued.team_id
        params["_token"] = token
        result: dict[str, Any] = await handler(params)
        return JSONResponse(result)

    # -- OAuth -----------------------------------------------------------------------------
    def issue_code(
        self,
        team_id: str,
        user_id: str = "U0INSTALLR",
        *,
        enterprise_id: str | None = None,
        org_wide: bool = False,
    ) -> str:
        """What Slack puts in ``?code=`` on the redirect after someone approves the install.

        ``enterprise_id``: the workspace belongs to that Enterprise Grid org; ``org_wide``: an
        org admin installed the app for the whole org (``team_id`` is then the org's id, E…).
        """
        code = uuid.uuid4().hex
        if enterprise_id is not None:
            self.enterprises[team_id] = enterprise_id
        self.oauth_codes[code] = Grant(team_id, user_id, enterprise_id, org_wide)
        return code

    def _new_bot_token(self, team_id: str) -> dict[str, Any]:
        prefix = "xoxe.xoxb-" if self.token_lifetime else "xoxb-"
        token = f"{prefix}{team_id}-{uuid.uuid4().hex[:16]}"
        expires_at = time.time() + self.token_lifetime if self.token_lifetime else None
        self.tokens[token] = IssuedToken(team_id, expires_at)
        grant: dict[str, Any] = {"access_token": token}
        if self.token_lifetime:
            refresh = f"xoxe-1-{uuid.uuid4().hex}"
            self.refresh_tokens[refresh] = team_id
            grant.update({"refresh_token": refresh, "expires_in": self.token_lifetime})
        return grant

    async def _api_oauth_v2_access(self, params: dict[str, Any], request: Request) -> dict[str, Any]:
        client_id, client_secret = params.get("client_id"), params.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):
            import base64

            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != self.client_id or client_secret != self.client_secret:
            return {"ok": False, "error": "invalid_client_id"}
        if params.get("grant_type") == "refresh_token":
            team_id = self.refresh_tokens.pop(str(params.get("refresh_token")), None)
            if team_id is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            grant = self._new_bot_token(team_id)
            return {"ok": True, "token_type": "bot", "team": {"id": team_id}, **grant}
        code = self.oauth_codes.pop(str(params.get("code")), None)
        if code is None:
            return {"ok": False, "error": "invalid_code"}
        grant = self._new_bot_token(code.team_id)
        enterprise = (
            {"id": code.enterprise_id, "name": f"Org {code.enterprise_id}"} if code.enterprise_id else None
        )
        return {
            "ok": True,
            "app_id": "A0TASKBOT1",
            "authed_user": {"id": code.user_id},
            "scope": "commands,chat:write",
            "token_type": "bot",
            "bot_user_id": DEMO_BOT_USER_ID,
            "team": None if code.org_wide else {"id": code.team_id, "name": f"Workspace {code.team_id}"},
            "enterprise": enterprise,
            "is_enterprise_install": code.org_wide,
            **grant,
        }

    def revoke_token(self, token: str) -> None:
        self.tokens[token].revoked = True

    async def _api_auth_revoke(self, params: dict[str, Any]) -> dict[str, Any]:
        token = str(params.get("_token", ""))
        self.revoke_token(token)
        return {"ok": True, "revoked": True}

    def revoke_team(self, team_id: str) -> None:
        for issued in self.tokens.values():
            if issued.team_id == team_id:
                issued.revoked = True

    async def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://demo.slack.invalid/",
            "team": "Demo workspace",
            "user": "taskbot",
            "team_id": params["_team_id"],
            "user_id": DEMO_BOT_USER_ID,
            "bot_id": "B0TASKBOT1",
            "enterprise_id": self.enterprises.get(params["_team_id"]),
            "is_enterprise_install": False,
        }

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    async def _api_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.channel_errors:
            return {"ok": False, "error": self.channel_errors[channel]}
        if channel in self.not_in_channel or channel[:1] in ("D", "G"):
            return {"ok": False, "error": "not_in_channel"}
        ts = self._next_ts()
        await self._record(PostedMessage("chat.postMessage", channel, params, ts))
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": params.get("text"), "ts": ts}}

    def _history(self, channel: str) -> list[dict[str, Any]]:
        """Messages the channel holds now, newest first, as conversations.history returns them."""
        latest: dict[str, dict[str, Any]] = {}
        for message in self.messages:
            if (
                message.channel != channel
                or message.ts is None
                or message.via not in ("chat.postMessage", "chat.update")
            ):
                continue
            entry = dict(latest.get(message.ts, {"type": "message", "ts": message.ts}))
            entry.update(
                {
                    k: message.payload[k]
                    for k in ("text", "blocks", "thread_ts", "metadata")
                    if k in message.payload
                }
            )
            if message.payload.get("reply_broadcast"):
                entry["subtype"] = "thread_broadcast"
            latest[message.ts] = entry
        return sorted(latest.values(), key=lambda m: m["ts"], reverse=True)

    async def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        oldest = float(params.get("oldest") or 0)
        found = [
            m
            for m in self._history(channel)
            if float(m["ts"]) >= oldest and (not m.get("thread_ts") or m.get("subtype") == "thread_broadcast")
        ]
        return {"ok": True, "messages": found[: int(params.get("limit") or 100)], "has_more": False}

    async def _api_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        thread = [m for m in self._history(channel) if m["ts"] == ts or m.get("thread_ts") == ts]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": sorted(thread, key=lambda m: m["ts"]), "has_more": False}

    async def _api_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("ts", ""))
        if not any(m.channel == channel and m.ts == ts for m in self.messages):
            return {"ok": False, "error": "message_not_found"}
        await self._record(PostedMessage("chat.update", channel, params, ts))
        return {"ok": True, "channel": channel, "ts": ts, "text": params.get("text")}

    async def _api_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user", ""))
        self.users_info_active += 1
        self.users_info_peak = max(self.users_info_peak, self.users_info_active)
        try:
            if self.users_info_delay:
                await asyncio.sleep(self.users_info_delay)
        finally:
            self.users_info_active -= 1
        fields = self.users.get(user_id)
        if fields is None and user_id not in self.locales:
            return {"ok": False, "error": "user_not_found"}
        user = {
            "id": user_id,
            "team_id": params["_team_id"],
            "is_admin": False,
            "is_owner": False,
            **(fields or {}),
        }
        if str(params.get("include_locale", "")).lower() in ("true", "1"):
            user["locale"] = self.locales.get(user_id, "en-US")
        return {"ok": True, "user": user}

    async def _api_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = str(params.get("usergroup", ""))
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    async def _api_views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        self.views.append({"method": "views.publish", **params})
        return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:10].upper(), **(params.get("view") or {})}}

    async def _api_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self.views.append({"method": "views.open", **params})
        return {"ok": True, "view": {"id": "V" + uuid.uuid4().hex[:10].upper(), **(params.get("view") or {})}}

    async def _api_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        self.views.append({"method": "views.update", **params})
        return {"ok": True, "view": {"id": params.get("view_id"), **(params.get("view") or {})}}

    async def _api_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        await self._record(PostedMessage("chat.postEphemeral", str(params.get("channel")), params))
        return {"ok": True, "message_ts": self._next_ts()}

    async def _recorded(self, request: Request) -> Response:
        """What was posted, for a benchmark or test in another process."""
        return JSONResponse(
            [
                {"via": m.via, "channel": m.channel, "ts": m.ts, "wall": m.wall, "text": m.text}
                for m in self.messages
            ]
        )

    async def _response_url(self, request: Request) -> Response:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            return Response("invalid_payload", status_code=400)
        await self._record(PostedMessage("response_url", None, payload))
        return Response("ok")

    # -- requests as Slack sends them to the bot -------------------------------------------
    def slash_command(
        self,
        signing_secret: str,
        text: str,
        *,
        channel_id: str = "C0DEMO0001",
        user_id: str = "U0DEMOUSER",
        command: str = "/task",
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A form-encoded slash command with valid signature headers."""
        form = self.slash_command_fields(text, channel_id=channel_id, user_id=user_id, command=command)
        body = urlencode(form).encode()
        return body, sign_request(signing_secret, body, timestamp)

    def slash_command_fields(
        self,
        text: str,
        *,
        channel_id: str = "C0DEMO0001",
        user_id: str = "U0DEMOUSER",
        command: str = "/task",
    ) -> dict[str, str]:
        """What Slack sends for a slash command: form fields over HTTP, a JSON payload over Socket Mode."""
        return {
            "token": "deprecated-verification-token",
            "team_id": self.team_id,
            "team_domain": "demo",
            "channel_id": channel_id,
            "channel_name": "demo",
            "user_id": user_id,
            "user_name": "demo.user",
            "command": command,
            "text": text,
            "api_app_id": "A0TASKBOT1",
            "response_url": self.response_url(),
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
        }

    def function_executed(
        self,
        signing_secret: str,
        callback_id: str,
        inputs: dict[str, Any],
        *,
        team_id: str | None = None,
    ) -> tuple[bytes, dict[str, str], str]:
        """A signed ``function_executed`` Events API request for a new execution; its id last."""
        team = team_id or self.team_id
        execution_id = "Fx" + uuid.uuid4().hex[:10].upper()
        token = f"xwfp-{team}-{uuid.uuid4().hex[:16]}"
        self.tokens[token] = IssuedToken(team, time.time() + FUNCTION_TOKEN_SECONDS)
        self.executions[execution_id] = Execution(callback_id, team, token)
        body = {
            "token": "deprecated-verification-token",
            "team_id": team,
            "api_app_id": "A0TASKBOT1",
            "type": "event_callback",
            "event_id": "Ev" + uuid.uuid4().hex[:10].upper(),
            "event_time": int(time.time()),
            "event": {
                "type": "function_executed",
                "function": {
                    "id": "Fn" + callback_id.upper()[:10],
                    "callback_id": callback_id,
                    "title": callback_id,
                    "type": "app",
                    "app_id": "A0TASKBOT1",
                },
                "inputs": inputs,
                "function_execution_id": execution_id,
                "workflow_execution_id": "Wx" + uuid.uuid4().hex[:10].upper(),
                "event_ts": f"{time.time():.6f}",
                "bot_access_token": token,
            },
        }
        raw = json.dumps(body).encode()
        headers = {**sign_request(signing_secret, raw), "Content-Type": "application/json"}
        return raw, headers, execution_id

    def block_action(
        self,
        signing_secret: str,
        *,
        action_id: str,
        value: str,
        channel_id: str = "C0DEMO0001",
        user_id: str = "U0DEMOUSER",
        message_ts: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """A button click on a message, form-encoded as ``payload=<json>``, signed."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "demo"},
            "user": {"id": user_id, "team_id": self.team_id},
            "api_app_id": "A0TASKBOT1",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": message_ts is None,
            },
            "channel": {"id": channel_id},
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
            "response_url": self.response_url(),
            "actions": [{"type": "button", "action_id": action_id, "block_id": "actions", "value": value}],
        }
        if message_ts:
            payload["message"] = {"ts": message_ts, "type": "message"}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return body, sign_request(signing_secret, body)


def sign_request(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack sends with a request: timestamp and ``v0=`` HMAC signature (slack_sdk's own)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature or "",
    }


async def _read_params(request: Request) -> dict[str, Any]:
    raw = await request.body()
    content_type = request.headers.get("content-type", "")
    params: dict[str, Any] = dict(request.query_params)
    if "application/json" in content_type:
        try:
            loaded = json.loads(raw or b"{}")
        except ValueError:
            loaded = {}
        if isinstance(loaded, dict):
            params.update(loaded)
    else:
        params.update(parse_qsl(raw.decode(), keep_blank_values=True))
    for key in ("blocks", "attachments", "metadata", "view"):
        if isinstance(params.get(key), str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params
