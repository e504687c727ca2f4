"""Our SDK-HMAC-SHA256 signer against the official Huawei Cloud SDK's, byte for byte.

The SDK is synchronous and only used here, as the reference implementation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.devtools.simulator import (
    DEMO_ACCESS_KEY,
    DEMO_PROJECT_ID,
    DEMO_SECRET_KEY,
    DEMO_SECURITY_TOKEN,
    DEMO_TEMP_ACCESS_KEY,
    DEMO_TEMP_SECRET_KEY,
    SEED_TASK_ID,
    Simulator,
)
from bot.metastudio import signer
from bot.metastudio.auth import USER_AGENT, AkSkAuthenticator, RequestParts
from bot.metastudio.client import MetaStudioClient
from bot.servers import serve_asgi
from tests.support.credentials import aksk
from tests.support.wire import SentRequest, relay

AK = "HPUAEXAMPLEAK0000001"
SK = "exampleSecretKey/With+Odd=Chars0000000001"
DATE = "20250410T092247Z"
MOMENT = datetime(2025, 4, 10, 9, 22, 47, tzinfo=UTC)
HOST = "metastudio.cn-north-4.myhuaweicloud.com"
PROJECT = "0b1f5e2d9c8a4b7e8f6a5d4c3b2a1f0e"
TASK_PATH = f"/v2/{PROJECT}/ies/task/fd1c56acbb2c4b1aa24ba37df99f3129"


Signed = tuple[str, str]  # the Authorization header, and the URI (path and query) sent


def authorizations(
    method: str, path: str, params: list[tuple[str, str]], headers: dict[str, str], body: bytes = b""
) -> tuple[Signed, Signed]:
    """The same request signed by us and by the Huawei Cloud SDK: (ours, the SDK's)."""
    signed = signer.sign(
        access_key=AK,
        secret_key=SK,
        method=method,
        path=path,
        params=params,
        headers=dict(headers),
        body=body,
    )
    query = signer.canonical_query(params)
    ours = signed["Authorization"], path + ("?" + query if query else "")
    request = SdkRequest(
        method=method,
        schema="https",
        host=headers.get("Host", HOST),
        resource_path=path,
        query_params=list(params),
        header_params=dict(headers),
        body=body or None,
    )
    Signer(BasicCredentials(AK, SK)).sign(request)
    return ours, (request.header_params["Authorization"], request.uri)


def base_headers() -> dict[str, str]:
    return {"Host": HOST, "X-Sdk-Date": DATE, "X-Project-Id": PROJECT, "Content-Type": "application/json"}


CASES: list[tuple[str, str, list[tuple[str, str]], bytes]] = [
    ("GET", TASK_PATH, [], b""),
    ("GET", f"/v2/{PROJECT}/ies/task", [("offset", "0"), ("limit", "10")], b""),
    (
        "GET",
        f"/v2/{PROJECT}/ies/task",
        [
            ("resource", "knowledge-intent-question-create,b"),
            ("resource", "a"),
            ("limit", "10"),
            ("offset", "0"),
        ],
        b"",
    ),
    (
        "GET",
        f"/v2/{PROJECT}/ies/task",
        [("resource", "导入 问答对"), ("business_id", "a~b*c d+e/f&g=h")],
        b"",
    ),
    ("GET", f"/v2/{PROJECT}/ies/task", [("empty", ""), ("a", "1"), ("A", "2"), ("a", "0")], b""),
    ("GET", f"/v2/{PROJECT}/ies/task/a b~c*d%2Fe", [], b""),
    ("GET", f"/v2/{PROJECT}/ies/task/导入", [("q", "x")], b""),
    ("GET", f"/v2/{PROJECT}/ies/task/", [], b""),
    ("POST", "/v3/auth/tokens", [], json.dumps({"auth": {"identity": {"methods": ["password"]}}}).encode()),
    ("PUT", f"/v2/{PROJECT}/ies/task/x", [("a", "b")], '{"name": "导入问答对"}'.encode()),
]


@pytest.mark.parametrize(("method", "path", "params", "body"), CASES)
def test_identical_to_sdk(method: str, path: str, params: list[tuple[str, str]], body: bytes) -> None:
    ours, theirs = authorizations(method, path, params, base_headers(), body)
    assert ours == theirs
    assert ours[0].startswith(
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
    )


def test_known_signature_does_not_drift() -> None:
    # A fixed value pins the algorithm even if both implementations changed together.
    (authorization, uri), (theirs, _) = authorizations("GET", TASK_PATH, [], base_headers())
    assert uri == TASK_PATH
    assert authorization == (
        f"SDK-HMAC-SHA256 Access={AK}, SignedHeaders=content-type;host;x-project-id;x-sdk-date, "
        "Signature=9c5f3c4d27137ec11c8253fe36590d41debe22ab42ff9e728511492ff905e517"
    )
    assert authorization == theirs


def test_headers_with_underscore_are_not_signed_like_the_sdk() -> None:
    headers = {**base_headers(), "X_Custom": "v", "X-Padded": "  spaced  "}
    ours, theirs = authorizations("GET", TASK_PATH, [], headers)
    assert ours == theirs
    assert "x_custom" not in ours[0]
    assert "x-padded" in ours[0]


async def test_security_token_signed_like_the_sdk_credentials() -> None:
    """``BasicCredentials(...).with_security_token(...).sign_request`` is what the SDK does for STS keys."""
    request = SdkRequest(
        method="GET",
        schema="https",
        host=HOST,
        resource_path=TASK_PATH,
        query_params=[],
        # The SDK's client puts its own User-Agent into header_params before signing; ours differs in value only.
        header_params={"X-Sdk-Date": DATE, "Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    BasicCredentials(AK, SK, PROJECT).with_security_token("sts-token-value").sign_request(request)

    auth = AkSkAuthenticator(
        access_key=AK,
        secret_key=SK,
        project_id=PROJECT,
        security_token="sts-token-value",
        clock=MOMENT.timestamp,
    )
    headers = await auth.headers(RequestParts(method="GET", host=HOST, path=TASK_PATH))
    assert headers["X-Security-Token"] == "sts-token-value"
    assert headers["X-Sdk-Date"] == DATE
    assert headers["Authorization"] == request.header_params["Authorization"]
    assert "x-security-token" in headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")


async def test_authenticator_signs_exactly_the_sdk_headers() -> None:
    auth = AkSkAuthenticator(access_key=AK, secret_key=SK, project_id=PROJECT, clock=MOMENT.timestamp)
    params = (("offset", "0"), ("limit", "10"))
    headers = await auth.headers(RequestParts(method="GET", host=HOST, path=TASK_PATH, params=params))
    request = SdkRequest(
        method="GET",
        schema="https",
        host=HOST,
        resource_path=TASK_PATH,
        query_params=list(params),
        # The SDK's client puts its own User-Agent into header_params before signing; ours differs in value only.
        header_params={"X-Sdk-Date": DATE, "Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    BasicCredentials(AK, SK, PROJECT).sign_request(request)
    assert headers["Authorization"] == request.header_params["Authorization"]
    assert set(headers) == {
        "Host",
        "Content-Type",
        "User-Agent",
        "X-Project-Id",
        "X-Sdk-Date",
        "Authorization",
    }


def test_parse_authorization_round_trip() -> None:
    (authorization, _), _ = authorizations("GET", TASK_PATH, [], base_headers())
    parsed = signer.parse_authorization(authorization)
    assert parsed is not None
    assert parsed.access_key == AK
    assert parsed.signed_headers == ["content-type", "host", "x-project-id", "x-sdk-date"]
    assert signer.parse_authorization("Bearer abc") is None
    assert signer.parse_date(DATE) == MOMENT
    assert signer.format_date(MOMENT) == DATE


# Anything the SDK itself can encode: no lone surrogates (they are not valid UTF-8 at all).
chars = st.characters(codec="utf-8")
segment = st.text(alphabet=chars, max_size=12).filter(lambda s: "/" not in s)
param_text = st.text(alphabet=chars, max_size=12)
header_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    segments=st.lists(segment, min_size=1, max_size=4),
    params=st.lists(st.tuples(param_text, param_text), max_size=5),
    body=st.binary(max_size=64),
    extra=st.dictionaries(
        st.sampled_from(["X-Extra", "X-Trace", "X_Ignored", "Accept"]), header_value, max_size=3
    ),
)
def test_property_identical_to_sdk(
    method: str, segments: list[str], params: list[tuple[str, str]], body: bytes, extra: dict[str, str]
) -> None:
    path = "/" + "/".join(segments)
    headers = {**base_headers(), **extra}
    ours, theirs = authorizations(method, path, params, headers, body)
    assert ours == theirs


# --- the request our client really puts on the wire ------------------------------------------------


@pytest.fixture
async def sim_url() -> AsyncIterator[str]:
    async with serve_asgi(Simulator().app) as url:
        yield url


def sdk_view_of(request: SentRequest, ak: str, sk: str) -> tuple[str, str]:
    """What the SDK signer computes for the captured request, given only the headers it signed."""
    authorization = request.headers["Authorization"]
    parsed = signer.parse_authorization(authorization)
    assert parsed is not None
    raw_path, _, raw_query = request.target.partition("?")
    headers = {name: request.headers[name] for name in parsed.signed_headers}
    sdk_request = SdkRequest(
        method=request.method,
        schema="http",
        host=request.headers["Host"],
        resource_path=raw_path,
        query_params=parse_qsl(raw_query, keep_blank_values=True),
        header_params=headers,
        body=request.body or None,
    )
    Signer(BasicCredentials(ak, sk)).sign(sdk_request)
    return sdk_request.header_params["Authorization"], sdk_request.uri


@pytest.mark.parametrize("temporary", [False, True])
async def test_wire_request_matches_sdk_signature(sim_url: str, temporary: bool) -> None:
    ak, sk = (DEMO_TEMP_ACCESS_KEY, DEMO_TEMP_SECRET_KEY) if temporary else (DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
    credentials = aksk(ak, sk, token=DEMO_SECURITY_TOKEN if temporary else None)
    async with (
        relay(sim_url) as wire,
        MetaStudioClient(endpoint=wire.url, credentials=credentials) as client,
    ):
        shown = await client.get_task(SEED_TASK_ID)
        listed = await client.list_tasks(resources=["knowledge-intent-question-create", "导入 a~b*"], limit=5)
    captured = wire.requests()
    assert shown.value.task_id == SEED_TASK_ID
    # The simulator verified both signatures, or these would be AuthenticationFailed.
    assert listed.value.limit == 5
    assert {t.resource for t in listed.value.data} <= {"knowledge-intent-question-create"}
    assert len(captured) == 2

    expected_signed = ["content-type", "host", "user-agent", "x-project-id", "x-sdk-date"]
    if temporary:
        expected_signed = sorted([*expected_signed, "x-security-token"])
    for request in captured:
        parsed = signer.parse_authorization(request.headers["Authorization"])
        assert parsed is not None and parsed.signed_headers == expected_signed
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["X-Project-Id"] == DEMO_PROJECT_ID
        assert request.headers["Host"] == httpx.URL(wire.url).netloc.decode()
        if temporary:
            assert request.headers["X-Security-Token"] == DEMO_SECURITY_TOKEN
        authorization, uri = sdk_view_of(request, ak, sk)
        assert authorization == request.headers["Authorization"]
        # The SDK would put exactly these bytes on the wire too.
        assert uri == request.target

    list_query = captured[1].target.partition("?")[2]
    assert (
        list_query == "limit=5&resource=knowledge-intent-question-create&resource=%E5%AF%BC%E5%85%A5%20a~b%2A"
    )
