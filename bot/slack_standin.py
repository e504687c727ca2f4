"""A stand-in for Slack's Web API and for Slack itself, on loopback.

It lets ``taskbot demo``, the tests and the benchmarks run with no Slack account:

* it answers the Web API methods taskbot calls (``/api/<method>``) and records every call;
* it accepts ``response_url`` posts (``/response/<id>``) and records them;
* it builds slash-command and interactivity requests signed with a real ``X-Slack-Signature``,
  exactly as Slack sends them to the bot.

Channels whose id starts with ``D`` or ``G`` (or are listed in ``not_in_channel``) answer
``chat.postMessage`` with ``not_in_channel``, as Slack does for a bot that was never invited;
``channel_errors`` makes any channel answer any error. Posting to a user id (``U…``) is a DM.
``conversations.history`` and ``conversations.replies`` return what was posted, with metadata.
"""

from __future__ import annotations

import asyncio
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
from starlette.routing import Route

DEMO_TEAM_ID = "T0DEMO0001"
DEMO_BOT_USER_ID = "U0TASKBOT1"
DEMO_BOT_TOKEN = "xoxb-demo-0000000000-taskbot"  # a stand-in token, accepted only here


@dataclass
class PostedMessage:
    """One message as a channel (or the requester, for ephemeral replies) would see it."""

    via: str  # "chat.postMessage", "chat.update", "chat.postEphemeral" or "response_url"
    channel: str | None
    payload: dict[str, Any]
    ts: str | None = None
    at: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)

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


class SlackStandIn:
    """The fake Slack. ``app`` is its ASGI app; ``base_url`` is set once it is served."""

    def __init__(
        self,
        *,
        team_id: str = DEMO_TEAM_ID,
        bot_token: str = DEMO_BOT_TOKEN,
        not_in_channel: Iterable[str] = (),
    ) -> None:
        self.team_id = team_id
        self.valid_tokens = {bot_token}
        self.not_in_channel = set(not_in_channel)
        # channel id -> the error chat.postMessage answers there ("channel_not_found", "is_archived", ...)
        self.channel_errors: dict[str, str] = {}
        self.calls: list[ApiCall] = []
        self.messages: list[PostedMessage] = []
        self.errors: dict[str, list[dict[str, Any]]] = {}
        self.base_url = ""
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["POST", "GET"]),
                Route("/response/{hook}", self._response_url, methods=["POST"]),
                Route("/_recorded", self._recorded, methods=["GET"]),
            ]
        )

    # -- configuration ---------------------------------------------------------------------
    def fail_next(self, method: str, *, error: str = "ratelimited", status: int = 200, retry_after: int | None = None) -> None:
        """Make the next call of ``method`` fail (``status=429`` with ``retry_after`` for a rate limit)."""
        self.errors.setdefault(method, []).append({"error": error, "status": status, "retry_after": retry_after})

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
            headers = {"Retry-After": str(failure["retry_after"])} if failure["retry_after"] is not None else {}
            return JSONResponse({"ok": False, "error": failure["error"]}, status_code=failure["status"], headers=headers)
        if token not in self.valid_tokens:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return JSONResponse({"ok": False, "error": "unknown_method"})
        result: dict[str, Any] = await handler(params)
        return JSONResponse(result)

    async def _api_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://demo.slack.invalid/",
            "team": "Demo workspace",
            "user": "taskbot",
            "team_id": self.team_id,
            "user_id": DEMO_BOT_USER_ID,
            "bot_id": "B0TASKBOT1",
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
            if message.channel != channel or message.ts is None or message.via not in ("chat.postMessage", "chat.update"):
                continue
            entry = dict(latest.get(message.ts, {"type": "message", "ts": message.ts}))
            entry.update({k: message.payload[k] for k in ("text", "blocks", "thread_ts", "metadata") if k in message.payload})
            if message.payload.get("reply_broadcast"):
                entry["subtype"] = "thread_broadcast"
            latest[message.ts] = entry
        return sorted(latest.values(), key=lambda m: m["ts"], reverse=True)

    async def _api_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        oldest = float(params.get("oldest") or 0)
        found = [
            m for m in self._history(channel)
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
        form = {
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
        body = urlencode(form).encode()
        return body, sign_request(signing_secret, body, timestamp)

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
    for key in ("blocks", "attachments", "metadata"):
        if isinstance(params.get(key), str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    return params
