"""taskbot's MetaStudio client against the official SDK (``huaweicloudsdkmetastudio``), the oracle.

Both talk to one capture server (a real loopback HTTP server) with the same parameters. What
the server saw must match: method, raw path, query as a multiset, and the set of signed headers.
The ``User-Agent`` value is allowed to differ (the SDK sends its own; taskbot names itself),
though both sign the header. Then every error-body shape the SDK's ``DefaultExceptionHandler`` knows is fed
to both, and the code, message and request id taskbot extracts must equal the SDK exception's.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ServiceResponseException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmetastudio.v1 import MetaStudioClient as SdkClient
from huaweicloudsdkmetastudio.v1 import SearchTaskRequest, ShowTaskRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.metastudio import signer
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError
from bot.metastudio.responses import sdk_error
from bot.servers import serve_asgi
from tests.support.credentials import aksk

AK = "CAPTUREAK0000000001"
SK = "capture-secret-key"
# Unusual characters: the project id path segment (ASCII: it is also the signed X-Project-Id header)
# and resources (free text, so non-ASCII too).
PROJECT = "proj~a b+c%2F"
TASK_ID = "fd1c56acbb2c4b1aa24ba37df99f3129"
RESOURCES = ["knowledge-intent-question-create", "导入 a~b*&=,c"]
BEGIN, END = 1744276967000, 1744363367000


@dataclass
class Seen:
    method: str
    raw_path: str
    query: collections.Counter[tuple[str, str]]
    signed: list[str]
    headers: dict[str, str]


@dataclass
class Capture:
    seen: list[Seen] = field(default_factory=list)
    error: tuple[int, dict[str, str], bytes] | None = None
    url: str = ""

    async def handle(self, request: Request) -> Response:
        scope = request.scope
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        parsed = signer.parse_authorization(headers.get("authorization", ""))
        self.seen.append(
            Seen(
                method=scope["method"],
                raw_path=scope["raw_path"].decode("ascii"),
                query=collections.Counter(
                    parse_qsl(scope["query_string"].decode("ascii"), keep_blank_values=True)
                ),
                signed=parsed.signed_headers if parsed else [],
                headers=headers,
            )
        )
        if self.error is not None:
            status, extra, body = self.error
            return Response(body, status_code=status, headers=extra)
        if scope["path"].endswith("/ies/task"):
            page = {"offset": 0, "limit": 10, "count": 0, "data": []}
            return Response(json.dumps(page), media_type="application/json")
        return Response(json.dumps({"task_id": TASK_ID, "task_name": "x"}), media_type="application/json")


@pytest.fixture
async def capture() -> AsyncIterator[Capture]:
    cap = Capture()
    app = Starlette(routes=[Route("/{path:path}", cap.handle, methods=["GET", "POST"])])
    async with serve_asgi(app) as url:
        cap.url = url
        yield cap


def sdk(url: str) -> Any:
    config = HttpConfig.get_default_config()
    config.retry_times = 0
    return (
        SdkClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(AK, SK, PROJECT))
        .with_endpoints([url])
        .build()
    )


def ours(url: str) -> MetaStudioClient:
    credentials = aksk(AK, SK, project_id=PROJECT)
    return MetaStudioClient(endpoint=url, credentials=credentials, max_retries=0)


async def test_show_and_search_put_the_same_request_on_the_wire(capture: Capture) -> None:
    client = sdk(capture.url)
    await asyncio.to_thread(client.show_task, ShowTaskRequest(id=TASK_ID))
    request = SearchTaskRequest(resource=list(RESOURCES), begin_time=str(BEGIN), end_time=str(END))
    await asyncio.to_thread(client.search_task, request)
    async with ours(capture.url) as mine:
        await mine.get_task(TASK_ID)
        await mine.list_tasks(resources=RESOURCES, begin_time=BEGIN, end_time=END)
    assert len(capture.seen) == 4
    for theirs, taskbot in ((capture.seen[0], capture.seen[2]), (capture.seen[1], capture.seen[3])):
        assert taskbot.method == theirs.method == "GET"
        assert taskbot.raw_path == theirs.raw_path
        assert taskbot.query == theirs.query
        assert taskbot.signed == theirs.signed
        # Allowed to differ (the SDK's names the SDK), though both sign it.
        assert "user-agent" in taskbot.signed
        assert taskbot.headers["user-agent"] != theirs.headers["user-agent"]
    listed = capture.seen[3]
    # Repeated, not comma-joined: a comma inside a resource name stays part of that name.
    assert sorted(v for k, v in listed.query.elements() if k == "resource") == sorted(RESOURCES)
    assert listed.query[("begin_time", str(BEGIN))] == listed.query[("end_time", str(END))] == 1
    assert not any(k in {"offset", "limit"} for k, _ in listed.query)


REQUEST_ID = "0123456789abcdef0123456789abcdef"
ERROR_SHAPES: list[tuple[str, int, dict[str, str], object]] = [
    ("snake", 400, {"X-Request-Id": REQUEST_ID}, {"error_code": "MSS.000000003", "error_msg": "非法参数"}),
    ("camel", 400, {"X-Request-Id": REQUEST_ID}, {"errorCode": "MSS.000000001", "errorMsg": "failed"}),
    ("code-message", 403, {"X-Request-Id": REQUEST_ID}, {"code": "APIGW.0302", "message": "not allowed"}),
    ("iam-nested", 401, {}, {"error": {"code": 401, "message": "The username or password is wrong."}}),
    (
        "nested-deeper",
        400,
        {"x-request-id": REQUEST_ID},
        {"outer": {"inner": {"error_code": "MSS.000000003", "error_msg": "deep"}}},
    ),
    (
        "encoded-authorization",
        403,
        {"X-Request-Id": REQUEST_ID},
        {"error_code": "IAM.0001", "error_msg": "denied", "encoded_authorization_message": "ZW5jb2RlZA=="},
    ),
    # Only half a pair: the SDK does not take it, so the status stands in as the code.
    (
        "half-pair",
        400,
        {"X-Request-Id": REQUEST_ID},
        {"error_code": "MSS.000000003", "request_id": "body-id"},
    ),
    ("no-fields", 404, {}, {"something": "else"}),
    ("not-json", 502, {"X-Request-Id": REQUEST_ID}, "<html>bad gateway</html>"),
    ("json-list", 400, {}, ["error_code", "error_msg"]),
    ("empty", 500, {}, ""),
]


@pytest.mark.parametrize(
    ("status", "headers", "body"), [s[1:] for s in ERROR_SHAPES], ids=[s[0] for s in ERROR_SHAPES]
)
async def test_error_bodies_read_as_the_sdk_reads_them(
    capture: Capture, status: int, headers: dict[str, str], body: object
) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode()
    capture.error = (status, headers, raw)
    with pytest.raises(ServiceResponseException) as theirs:
        await asyncio.to_thread(sdk(capture.url).show_task, ShowTaskRequest(id=TASK_ID))
    expected = theirs.value
    async with ours(capture.url) as mine:
        with pytest.raises(MetaStudioError) as caught:
            await mine.get_task(TASK_ID)
    got = caught.value
    assert got.status_code == expected.status_code == status
    assert got.error_code == str(expected.error_code)
    assert got.request_id == expected.request_id
    # The exception's detail is truncated and scrubbed for logs; the parser itself must agree fully.
    parsed = sdk_error(status, headers, raw.decode())
    assert (parsed.code, parsed.message, parsed.request_id) == (
        str(expected.error_code),
        str(expected.error_msg),
        expected.request_id,
    )
    assert parsed.encoded_authorization_message == expected.encoded_auth_msg
    assert (
        str(expected.error_msg).startswith(got.detail) if got.detail else not str(expected.error_msg).strip()
    )


CHARSETS: list[tuple[str, str, bytes]] = [
    ("gbk", "application/json;charset=GBK", "导入问答对 任务".encode("gbk")),
    ("gb18030-quoted", 'application/json; charset="gb18030"', "导入问答对 任务".encode("gb18030")),
    ("latin-1", "application/json; charset=ISO-8859-1", "café".encode("latin-1")),
    ("undecodable-utf-8", "application/json; charset=utf-8", b"bad \xff byte"),
    ("unknown-charset", "application/json; charset=x-no-such-charset", "导入".encode()),
]


@pytest.mark.parametrize(("content_type", "name"), [c[1:] for c in CHARSETS], ids=[c[0] for c in CHARSETS])
async def test_a_declared_charset_is_decoded_as_the_sdk_decodes_it(
    capture: Capture, content_type: str, name: bytes
) -> None:
    headers = {"Content-Type": content_type, "X-Request-Id": REQUEST_ID}
    capture.error = (200, headers, b'{"task_id": "' + TASK_ID.encode() + b'", "task_name": "' + name + b'"}')
    theirs = await asyncio.to_thread(sdk(capture.url).show_task, ShowTaskRequest(id=TASK_ID))
    async with ours(capture.url) as mine:
        fetched = await mine.get_task(TASK_ID)
    assert fetched.value.task_name == theirs.task_name

    capture.error = (400, headers, b'{"error_code": "MSS.000000001", "error_msg": "' + name + b'"}')
    with pytest.raises(ServiceResponseException) as expected:
        await asyncio.to_thread(sdk(capture.url).show_task, ShowTaskRequest(id=TASK_ID))
    async with ours(capture.url) as mine:
        with pytest.raises(MetaStudioError) as caught:
            await mine.get_task(TASK_ID)
    assert caught.value.server_message == expected.value.error_msg


async def test_a_body_without_task_id_is_readable_when_the_request_named_it(capture: Capture) -> None:
    # task_id is optional in the SDK's ShowTaskResponse.
    capture.error = (200, {"Content-Type": "application/json"}, json.dumps({"task_name": "n"}).encode())
    async with ours(capture.url) as mine:
        fetched = await mine.get_task(TASK_ID)
    assert fetched.value.task_id == TASK_ID


async def test_project_id_is_looked_up_once_through_iam(capture: Capture) -> None:
    bodies = {"projects": [{"id": "found-project", "name": "cn-north-4"}]}
    capture.error = (200, {"Content-Type": "application/json"}, json.dumps(bodies).encode())
    credentials = aksk(AK + "X", SK, project_id="")
    for _ in range(2):
        async with MetaStudioClient(
            endpoint=capture.url, iam_endpoint=capture.url, credentials=credentials, region="cn-north-4"
        ) as mine:
            assert await mine.project_id() == "found-project"
            await asyncio.gather(mine.project_id(), mine.project_id())
    lookups = [s for s in capture.seen if s.raw_path == "/v3/projects"]
    assert len(lookups) == 1, "looked up once and cached, like the SDK's per-AK cache"
    assert lookups[0].query == collections.Counter({("name", "cn-north-4"): 1})
    assert "x-project-id" not in lookups[0].signed


def test_sdk_error_tolerates_headers_given_as_httpx() -> None:
    parsed = sdk_error(418, httpx.Headers({"X-REQUEST-ID": "r"}), '{"code": "", "message": ""}')
    assert (parsed.code, parsed.message, parsed.request_id) == ("418", '{"code": "", "message": ""}', "r")
