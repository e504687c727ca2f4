"""Requests to taskbot are cheap to refuse: size cap, signature on the raw bytes, 4xx for garbage.

All over real sockets: the Bolt app behind uvicorn (``stack``), or the same stack on its own
loop in a thread for Hypothesis (``tests.test_fuzz.BackgroundStack``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack
from bot.slack.inbound import DEFAULT_MAX_BYTES
from tests.test_fuzz import BackgroundStack


def _sign(secret: str, body: bytes, timestamp: str | None = None) -> dict[str, str]:
    """Slack's ``v0`` scheme over raw bytes, so non-UTF-8 bodies can be signed too."""
    ts = timestamp if timestamp is not None else str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


class _Errors(logging.Handler):
    """Every record at ERROR or with a traceback, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def errors() -> Iterator[_Errors]:
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


async def _raw_exchange(url: str, head: bytes, timeout: float) -> bytes:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    finally:
        writer.close()


async def test_a_declared_oversized_body_gets_413_before_it_is_sent(stack: LocalStack) -> None:
    # Only the headers go out: an answer can come only from a server that did not wait for the body.
    size = 6 * 1024 * 1024
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: bot\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    status_line = (await _raw_exchange(stack.bot_url, head, timeout=5)).split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"413"


async def test_a_chunked_body_over_the_cap_gets_413(stack: LocalStack, http: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(48):  # 6 MB in 128 KB chunks, no Content-Length
            sent += 1
            yield b"text=" + b"a" * (128 * 1024)

    body = b"placeholder"
    headers = _sign(stack.signing_secret, body)
    try:
        response = await http.post(f"{stack.bot_url}/slack/events", content=chunks(), headers=headers)
        assert response.status_code == 413
    except httpx.WriteError:
        pass  # the server answered and closed while the client was still sending: refused early too
    assert stack.slack.messages == [] and not stack.simulator.requests


async def test_a_body_just_under_the_cap_is_still_read(stack: LocalStack, http: httpx.AsyncClient) -> None:
    # A large, signed slash command (a modal's worth of text): verified and answered, not refused.
    body, headers = stack.slack.slash_command(stack.signing_secret, "help " + "x" * (DEFAULT_MAX_BYTES // 2))
    response = await http.post(f"{stack.bot_url}/slack/events", content=body, headers=headers)
    assert response.status_code == 200


GARBAGE_HEADERS: list[tuple[str, dict[str, str]]] = [
    ("non-numeric timestamp", {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"}),
    ("huge timestamp", {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=00"}),
    ("huge timestamp 5000", {"X-Slack-Request-Timestamp": "9" * 5000, "X-Slack-Signature": "v0=00"}),
    ("negative timestamp", {"X-Slack-Request-Timestamp": "-1e400", "X-Slack-Signature": "v0=00"}),
    ("float timestamp", {"X-Slack-Request-Timestamp": "1.7e9", "X-Slack-Signature": "v0=00"}),
    ("no signature", {"X-Slack-Request-Timestamp": "1700000000"}),
]


@pytest.mark.parametrize(("name", "headers"), GARBAGE_HEADERS, ids=[n for n, _ in GARBAGE_HEADERS])
async def test_garbage_timestamps_get_401(
    stack: LocalStack, http: httpx.AsyncClient, errors: _Errors, name: str, headers: dict[str, str]
) -> None:
    body, _ = stack.slack.slash_command(stack.signing_secret, "help")
    response = await http.post(
        f"{stack.bot_url}/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    assert response.status_code == 401
    assert errors.records == []


def _signed_garbage(secret: str) -> list[tuple[str, bytes, dict[str, str]]]:
    cases: list[tuple[str, bytes, dict[str, str]]] = []
    for name, body in [
        ("not utf-8", b"command=%2Ftask&text=\xff\xfe\xfa"),
        ("json that does not parse", b'{"type": "block_actions", '),
        ("payload not json", b"payload=%7Bnope"),
        ("payload a number", b"payload=1"),
        ("payload a list", b"payload=%5B1%2C2%5D"),
        ("payload a string", b"payload=%22block_actions%22"),
        ("payload null", b"payload=null"),
        ("json a list", b"[1, 2]"),
        ("deep json", b'{"a":' * 5000 + b"1" + b"}" * 5000),
        ("block_actions without actions", _payload({"type": "block_actions", "user": {"id": "U1"}})),
        (
            "block_actions with actions a string",
            _payload({"type": "block_actions", "user": {"id": "U1"}, "actions": "refresh"}),
        ),
        (
            "block_actions with no action",
            _payload({"type": "block_actions", "user": {"id": "U1"}, "team": {"id": "T1"}, "actions": []}),
        ),
        ("view_submission without view", _payload({"type": "view_submission", "user": {"id": "U1"}})),
        ("event_callback without event", _payload({"type": "event_callback", "team_id": "T1"})),
        ("command without text", urlencode({"command": "/task", "user_id": "U1"}).encode()),
        (
            "command without team",
            urlencode({"command": "/task", "text": "help", "user_id": "U1", "channel_id": "C1"}).encode(),
        ),
    ]:
        headers = _sign(secret, body)
        if body.startswith((b"{", b"[")):
            headers["Content-Type"] = "application/json"
        cases.append((name, body, headers))
    return cases


def _payload(value: Any) -> bytes:
    return urlencode({"payload": json.dumps(value)}).encode()


async def test_signed_garbage_gets_400_and_no_traceback(
    stack: LocalStack, http: httpx.AsyncClient, errors: _Errors
) -> None:
    for name, body, headers in _signed_garbage(stack.signing_secret):
        response = await http.post(f"{stack.bot_url}/slack/events", content=body, headers=headers)
        assert response.status_code == 400, (name, response.status_code, response.text)
        assert "Traceback" not in response.text
    assert errors.records == [], [r.getMessage() for r in errors.records]
    assert stack.slack.messages == [] and not stack.simulator.requests


async def test_unsigned_garbage_gets_401(stack: LocalStack, http: httpx.AsyncClient, errors: _Errors) -> None:
    for name, body, headers in _signed_garbage(stack.signing_secret):
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
        response = await http.post(f"{stack.bot_url}/slack/events", content=body, headers=headers)
        assert response.status_code in (400, 401), name
    assert errors.records == []


async def test_well_formed_requests_still_work(stack: LocalStack, http: httpx.AsyncClient) -> None:
    response = await stack.command(http, sim.SEED_TASK_ID)
    assert response.status_code == 200
    await stack.slack.wait_for_messages(1)


# -- Hypothesis: signed payloads of any shape through the real server ----------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
KNOWN_KEYS = [
    "type",
    "team",
    "user",
    "actions",
    "view",
    "container",
    "channel",
    "response_url",
    "trigger_id",
    "event",
    "team_id",
    "challenge",
    "message",
    "state",
]
PAYLOAD_TYPES = [
    "block_actions",
    "view_submission",
    "view_closed",
    "event_callback",
    "url_verification",
    "shortcut",
]
ACTION_IDS = ["task_refresh", "task_open", "task_watch", "task_unwatch", "feed_unsubscribe", "x"]


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = draw(
        st.dictionaries(st.sampled_from(KNOWN_KEYS), json_values, max_size=len(KNOWN_KEYS))
    )
    if draw(st.booleans()):
        body["type"] = draw(st.sampled_from(PAYLOAD_TYPES))
    if draw(st.booleans()):
        body["actions"] = [
            draw(
                st.fixed_dictionaries(
                    {"action_id": st.sampled_from(ACTION_IDS)}, optional={"value": json_values}
                )
            )
        ]
    if draw(st.booleans()):
        body["event"] = draw(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["app_home_opened", "tokens_revoked", "app_uninstalled"])},
                optional={"tokens": json_values, "user": json_values, "tab": json_values},
            )
        )
    return body


command_forms = st.dictionaries(
    st.sampled_from(["command", "text", "team_id", "user_id", "channel_id", "response_url", "trigger_id"]),
    st.text(max_size=40),
).map(lambda form: {**form, "command": form.get("command", "/task")})

bodies = st.one_of(
    st.binary(max_size=200).map(lambda raw: ("form", raw)),
    payloads().map(lambda p: ("form", _payload(p))),
    payloads().map(lambda p: ("json", json.dumps(p).encode())),
    json_values.map(lambda v: ("form", _payload(v))),
    command_forms.map(lambda form: ("form", urlencode(form).encode())),
)


@pytest.fixture(scope="module")
def background_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with BackgroundStack(tmp_path_factory.mktemp("inbound")) as local:
        yield local


@given(bodies)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_signed_payloads_of_any_shape_never_get_a_5xx(
    background_stack: LocalStack, errors: _Errors, body: tuple[str, bytes]
) -> None:
    kind, raw = body
    headers = _sign(background_stack.signing_secret, raw)
    if kind == "json":
        headers["Content-Type"] = "application/json"
    response = httpx.post(
        f"{background_stack.bot_url}/slack/events", content=raw, headers=headers, timeout=10
    )
    assert response.status_code < 500, (raw[:300], response.status_code, response.text[:300])
    assert "Traceback" not in response.text
    # Listeners hand work to the background; give it a moment to fail loudly if it would.
    time.sleep(0.01)
    assert errors.records == [], [r.getMessage() for r in errors.records]
