"""Hostile MetaStudio answers over real loopback sockets (issue 8 section 1).

A raw asyncio server plays MetaStudio: it can trickle a body, send a gzip bomb, an endless body
or any JSON. Each test fails without its fix: no call deadline, no decoded-size cap, validators
that let ``OverflowError``/``TypeError``/``RecursionError`` escape, no quoting of MetaStudio's own
words, no endpoint allow-list.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import logging
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import messages
from bot.config import Settings
from bot.devtools.demo import demo_stack
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.endpoints import EndpointPolicy, EndpointRefused, Refusal
from bot.metastudio.errors import BadResponse, EndpointNotAllowed, TaskNotFound, TimedOut
from bot.services.connections import new_client
from bot.slack import ids
from bot.slack.cloud_errors import error_text
from tests.support.credentials import aksk
from tests.support.forms import text_value, view_values

TASK_ID = "a" * 32
PROJECT = "0123456789abcdef0123456789abcdef"
# For tests about how a client is built or refused, not about what it signs.
ANY_CREDENTIALS = aksk("AK000001", "x" * 40, project_id=PROJECT)
Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(respond: Writer) -> AsyncIterator[str]:
    """An HTTP/1.1 server on loopback that reads the request head, then lets ``respond`` write."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await respond(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def head(length: int | None = None, *, encoding: str | None = None, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", "X-Request-Id: req-hostile"]
    if encoding:
        lines.append(f"Content-Encoding: {encoding}")
    lines.append(f"Content-Length: {length}" if length is not None else "Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def json_body(body: bytes, status: str = "200 OK") -> Writer:
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(head(len(body), status=status) + body)
        await writer.drain()

    return respond


def client(url: str, **kwargs: object) -> MetaStudioClient:
    credentials = aksk("HOSTILEAK0001", "s" * 40, project_id=PROJECT)
    options: dict[str, object] = {"max_retries": 0, "call_deadline": 5.0}
    options.update(kwargs)
    return MetaStudioClient(endpoint=url, credentials=credentials, **options)  # type: ignore[arg-type]


# --- 1. one deadline per call -----------------------------------------------------------------


async def trickle(writer: asyncio.StreamWriter) -> None:
    """A valid head announcing 500 bytes, then one byte a second: no single read ever times out."""
    writer.write(head(500))
    await writer.drain()
    for _ in range(500):
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(1.0)


@pytest.mark.parametrize("retries", [0, 3])
async def test_a_trickling_body_fails_with_the_timeout_sentence_within_the_deadline(retries: int) -> None:
    async with (
        raw_server(trickle) as url,
        client(url, call_deadline=2.0, read_timeout=5.0, max_retries=retries) as c,
    ):
        started = time.monotonic()
        with pytest.raises(TimedOut) as caught:
            await c.get_task(TASK_ID)
        elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 3.0, elapsed
    assert error_text(caught.value) == messages.text("error_timeout")


async def test_retries_and_their_waits_stay_inside_the_deadline() -> None:
    """A 503 with Retry-After: 1 would be retried three times (3 s+); the deadline is 1.5 s."""
    body = json.dumps({"error_code": "MSS.000000002", "error_msg": "busy"}).encode()

    async def busy(writer: asyncio.StreamWriter) -> None:
        writer.write(
            head(len(body), status="429 Too Many Requests").replace(
                b"\r\n\r\n", b"\r\nRetry-After: 1\r\n\r\n"
            )
        )
        writer.write(body)
        await writer.drain()

    async with raw_server(busy) as url, client(url, call_deadline=1.5, max_retries=3) as c:
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            await c.get_task(TASK_ID)
        elapsed = time.monotonic() - started
    assert elapsed < 1.6, elapsed
    assert caught.type.__name__ in {"Throttled", "TimedOut"}


def test_the_deadline_is_a_setting_passed_to_every_client() -> None:
    settings_ = Settings(call_deadline=4.0, max_body_bytes=2048)  # type: ignore[call-arg]
    built = new_client(
        settings_,
        endpoint="https://metastudio.cn-north-4.myhuaweicloud.com",
        iam_endpoint=None,
        credentials=ANY_CREDENTIALS,
    )
    assert (built._deadline, built._max_body) == (4.0, 2048)
    assert Settings().call_deadline == 15.0  # type: ignore[call-arg]


# --- 2. decoded size cap -----------------------------------------------------------------------

BOMB_MIB = 256
"""The bomb inflates to 256 MiB of zeros, from 260 KB on the wire: far past the 1 MiB cap and the
8 MiB memory bound, and one 64 KiB network chunk of it alone inflates to some 64 MiB."""


@functools.cache
def gzip_bomb(mebibytes: int = BOMB_MIB) -> bytes:
    """A valid gzip stream of ``mebibytes`` MiB of zeros, built in a fraction of a second.

    One MiB of zeros is deflated once and ended with a full flush, which leaves the stream
    byte-aligned and the compressor's window empty, so the same bytes inflate to another MiB
    wherever they are repeated. Deflating the whole bomb at each request would cost seconds of
    CPU inside the server, which never yields while its socket takes the output, so the client's
    call would wait on it (tens of seconds on a loaded machine) before reading a byte.
    """
    block = b"\0" * (1024 * 1024)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    one = squeeze.compress(block) + squeeze.flush(zlib.Z_FULL_FLUSH)
    last_block = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
    crc = 0
    for _ in range(mebibytes):
        crc = zlib.crc32(block, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"  # gzip, deflate, no name, no mtime
    trailer = struct.pack("<II", crc, mebibytes * len(block) % 2**32)
    return header + one * mebibytes + last_block + trailer


def test_the_gzip_bomb_is_valid_gzip() -> None:
    assert gzip.decompress(gzip_bomb(3)) == b"\0" * (3 * 1024 * 1024)


def gzip_bomb_stream() -> Writer:
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(head(encoding="gzip") + gzip_bomb())
        await writer.drain()

    return respond


async def endless(writer: asyncio.StreamWriter) -> None:
    writer.write(head())
    writer.write(b'{"task_id": "' + b"a" * 32 + b'", "task_name": "')
    chunk = b"x" * 65536
    while True:
        writer.write(chunk)
        await writer.drain()


@pytest.mark.parametrize("respond", [gzip_bomb_stream(), endless], ids=["gzip-bomb", "endless"])
async def test_hostile_bodies_stop_at_the_cap_and_memory_stays_flat(respond: Writer) -> None:
    gzip_bomb()  # built before the call's deadline and the memory tracing start
    tracemalloc.start()
    try:
        async with raw_server(respond) as url, client(url) as c:
            with pytest.raises(BadResponse) as caught:
                await c.get_task(TASK_ID)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error_text(caught.value) == messages.text("error_bad_response")
    assert "over 1048576 bytes" in caught.value.detail
    # The cap is 1 MiB; peak Python allocation stays within a few of it (the bomb is 256 MiB).
    assert peak < 8 * 1024 * 1024, peak


async def test_a_small_gzip_body_is_still_read() -> None:
    task = {"task_id": TASK_ID, "task_name": "ok", "total_count": 3, "success_count": 3}
    packed = gzip.compress(json.dumps(task).encode())

    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(head(len(packed), encoding="gzip") + packed)
        await writer.drain()

    async with raw_server(respond) as url, client(url) as c:
        fetched = await c.get_task(TASK_ID)
    assert fetched.value.task_name == "ok" and fetched.request_id == "req-hostile"


@pytest.mark.parametrize(
    ("encoding", "body", "said"),
    [
        ("gzip", b"\x1f\x8bnot really gzip at all", "gzip body does not inflate"),
        ("br", b"\x0b\x02\x80hello", "br"),
    ],
    ids=["corrupt-gzip", "unasked-encoding"],
)
async def test_a_body_that_cannot_be_decoded_is_a_bad_response(encoding: str, body: bytes, said: str) -> None:
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(head(len(body), encoding=encoding) + body)
        await writer.drain()

    async with raw_server(respond) as url, client(url) as c:
        with pytest.raises(BadResponse) as caught:
            await c.get_task(TASK_ID)
    assert f"body cannot be decoded ({said})" in caught.value.detail
    assert error_text(caught.value) == messages.text("error_bad_response")


# --- 3. strange values get the "could not read" sentence ---------------------------------------

STRANGE: dict[str, bytes] = {
    "count 1e400": b'{"total_count": 1e400}',
    "count -1e400": b'{"success_count": -1e400}',
    "object for a count": b'{"total_count": {"n": 1}}',
    "list for a count": b'{"failure_count": [1]}',
    "negative count": b'{"total_count": -3}',
    "fractional count": b'{"total_count": 2.5}',
    "huge int count": b'{"total_count": ' + b"9" * 300 + b"}",
    "count string 1e400": b'{"total_count": "1e400"}',
    "time 1e400": b'{"begin_time": 1e400}',
    "time string 1e400": b'{"end_time": "1e400"}',
    "time beyond year 9999": b'{"end_time": 1e20}',
    "negative time": b'{"begin_time": -5}',
    "object for a time": b'{"begin_time": {}}',
    "NaN": b'{"total_count": NaN}',
    "Infinity": b'{"begin_time": Infinity}',
    "object for a code": b'{"task_status": {"a": 1}}',
    "code 1e400": b'{"task_status": 1e400}',
    "nested 300 deep": b'{"task_name": "x", "extra": ' + b"[" * 300 + b"]" * 300 + b"}",
    "nested 5000 deep": b'{"extra": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "nested objects 400 deep": b'{"extra": ' + b'{"a":' * 400 + b"1" + b"}" * 400 + b"}",
}


@pytest.mark.parametrize("body", list(STRANGE.values()), ids=list(STRANGE))
async def test_strange_values_are_unreadable_answers(body: bytes) -> None:
    async with raw_server(json_body(body)) as url, client(url) as c:
        with pytest.raises(BadResponse) as caught:
            await c.get_task(TASK_ID)
    assert error_text(caught.value) == messages.text("error_bad_response")


async def test_a_body_naming_another_task_is_an_unreadable_answer() -> None:
    """Shown as the task asked for, it would put another task's name, counts and state on the card."""
    other = json.dumps({"task_id": "b" * 32, "task_name": "another task", "task_status": 2}).encode()
    async with raw_server(json_body(other)) as url, client(url) as c:
        with pytest.raises(BadResponse) as caught:
            await c.get_task(TASK_ID)
    assert error_text(caught.value) == messages.text("error_bad_response")
    assert "not the one asked for" in caught.value.detail
    # The same id, in other letter case, is the same task.
    same = json.dumps({"task_id": TASK_ID.upper(), "task_name": "this task"}).encode()
    async with raw_server(json_body(same)) as url, client(url) as c:
        assert (await c.get_task(TASK_ID)).value.task_name == "this task"


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "2026-01-01T00:00:00Z", "", " 7 "]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_fields = st.sampled_from(
    [
        "task_id",
        "task_name",
        "task_type",
        "task_status",
        "begin_time",
        "end_time",
        "total_count",
        "success_count",
        "failure_count",
        "resource",
    ]
)
_documents = st.dictionaries(_fields, _values, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=_documents)
def test_any_hostile_json_is_a_task_or_unreadable_never_a_crash(document: dict[str, object]) -> None:
    """Through the client's parse path (a real httpx.Response): a Task, or BadResponse. Nothing else."""
    from bot.metastudio.models import Task
    from bot.metastudio.responses import parse_model
    from bot.slack.cards import CardView, card_text, task_card

    try:
        text = json.dumps(document, allow_nan=True)
    except (ValueError, OverflowError):
        return
    response = httpx.Response(200, content=text.encode())
    try:
        task = parse_model(Task, response, defaults={"task_id": TASK_ID})
    except BadResponse:
        return
    # What the model accepted, the cards can show.
    card_text(task, frozenset())
    task_card(task, CardView(request_id=None, finished_codes=frozenset()), watch_button=True)
    assert task.total_count >= 0 and (task.begin is None or task.begin.year >= 1970)


async def test_through_slack_the_user_sees_could_not_read_and_no_traceback(
    tmp_path: Path, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = [
        STRANGE["count 1e400"],
        STRANGE["object for a count"],
        STRANGE["time string 1e400"],
        STRANGE["nested 5000 deep"],
    ]
    index = 0

    async def respond(writer: asyncio.StreamWriter) -> None:
        nonlocal index
        body = bodies[min(index, len(bodies) - 1)]
        index += 1
        writer.write(head(len(body)) + body)
        await writer.drain()

    caplog.set_level(logging.INFO)
    async with raw_server(respond) as url, demo_stack(tmp_path, endpoint=url, max_retries=0) as stack:
        for _ in bodies:
            await stack.command(http, TASK_ID)
        texts = [m.text for m in await stack.slack.wait_for_messages(len(bodies), timeout=15)]
    assert index == len(bodies)
    assert len(texts) == len(bodies)
    assert all(t == messages.text("error_bad_response") for t in texts), texts
    assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records if r.exc_info]
    assert messages.text("error_internal") not in texts


# --- 4. MetaStudio's own words ------------------------------------------------------------------


async def test_metastudio_error_code_message_and_request_id_are_quoted() -> None:
    body = json.dumps(
        {"error_code": "MSS.000000003", "error_msg": "task not exist <!channel> `x`" + "y" * 400}
    ).encode()
    async with raw_server(json_body(body, status="400 Bad Request")) as url, client(url) as c:
        with pytest.raises(TaskNotFound) as caught:
            await c.get_task(TASK_ID)
    sentence = error_text(caught.value)
    assert sentence.startswith(messages.text("error_not_found"))
    assert "`MSS.000000003`" in sentence and "task not exist" in sentence and "`req-hostile`" in sentence
    assert "<!channel>" not in sentence and "&lt;!channel&gt;" in sentence and "`x`" not in sentence
    assert len(sentence) < len(messages.text("error_not_found")) + 300


async def test_without_a_code_in_the_body_nothing_is_quoted() -> None:
    async with raw_server(json_body(b"<html>oops</html>", status="403 Forbidden")) as url, client(url) as c:
        with pytest.raises(Exception) as caught:
            await c.get_task(TASK_ID)
    assert error_text(caught.value) == messages.text("error_forbidden")  # type: ignore[arg-type]


async def test_zh_cn_says_it_too() -> None:
    zh = messages.text("error_metastudio_said_request", "zh-CN", code="C", message="m", request_id="r")
    assert "C" in zh and "m" in zh and "r" in zh


# --- 5. endpoints an admin may set --------------------------------------------------------------

DEFAULT = Settings().endpoint_policy  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("http://metastudio.cn-north-4.myhuaweicloud.com", Refusal.NOT_HTTPS),
        ("https://127.0.0.1:8443", Refusal.HOST),
        ("http://127.0.0.1:9000", Refusal.HOST),
        ("https://evil.example.com", Refusal.HOST),
        ("https://myhuaweicloud.com.evil.example", Refusal.HOST),
        ("https://[::1]", Refusal.HOST),
        ("https://169.254.169.254", Refusal.HOST),
        ("https://10.0.0.8", Refusal.HOST),
    ],
)
def test_by_default_only_https_huawei_hosts_pass(url: str, refusal: Refusal) -> None:
    with pytest.raises(EndpointRefused) as caught:
        DEFAULT.check_url(url)
    assert caught.value.refusal is refusal
    DEFAULT.check_url("https://metastudio.cn-north-4.myhuaweicloud.com")
    DEFAULT.check_url("https://iam.ap-southeast-1.myhuaweicloud.com")


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1.nip.invalid"])
async def test_names_resolving_inward_are_refused_after_dns(name: str) -> None:
    # "localhost" resolves to loopback; allowing its *name* is not allowing its *address*.
    policy = EndpointPolicy.parse([f"http://{name}"])
    with pytest.raises(EndpointRefused) as caught:
        await policy.check(f"http://{name}:1")
    assert caught.value.refusal in {Refusal.ADDRESS, Refusal.UNRESOLVED}
    if name == "localhost":
        assert caught.value.refusal is Refusal.ADDRESS
        await EndpointPolicy.parse(["http://localhost", "127.0.0.0/8", "::1"]).check("http://localhost:1")


async def test_an_admins_loopback_endpoint_gets_no_signed_request() -> None:
    hits = 0

    async def respond(writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        hits += 1
        await json_body(b"{}")(writer)

    async with raw_server(respond) as url:
        built = new_client(
            Settings(),
            endpoint=url,
            iam_endpoint=None,
            credentials=ANY_CREDENTIALS,
        )  # type: ignore[call-arg]
        async with built:
            with pytest.raises(EndpointNotAllowed) as caught:
                await built.get_task(TASK_ID)
        assert error_text(caught.value) == messages.text("connection_error_endpoint_host")
        assert hits == 0
        widened = Settings(allowed_endpoint_hosts="http://127.0.0.1")  # type: ignore[call-arg]
        async with new_client(
            widened, endpoint=url, iam_endpoint=None, credentials=ANY_CREDENTIALS
        ) as allowed:
            await allowed.get_task(TASK_ID)
        assert hits == 1


def test_the_modal_says_why_in_both_languages() -> None:
    from bot.slack import modals

    field = ids.ConnectionInput.ENDPOINT
    state = view_values({field: text_value("http://127.0.0.1:9000")})
    for locale in ("en", "zh-CN"):
        errors = modals.parse_connection(state, None, locale=locale, endpoints=DEFAULT)
        assert isinstance(errors, dict)
        assert errors[field] == messages.text("connection_error_endpoint_host", locale)


def test_a_bad_allow_list_entry_is_an_operator_error() -> None:
    with pytest.raises(ValueError, match=r"not a host pattern"):
        Settings(allowed_endpoint_hosts="https://exa mple.com/x?y")  # type: ignore[call-arg]
