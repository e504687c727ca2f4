"""The MetaStudio simulator over real sockets: the official Huawei SDK as the oracle, then our own
signer for the gateway's checks, a fake clock for progression, the list call, faults and IAM tokens."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions as sdk_exceptions
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkmetastudio.v1 import (
    MetaStudioClient,
    SearchTaskRequest,
    ShowTaskRequest,
)

from bot.devtools import simulator as sim
from bot.devtools.simulator import (
    MSS_MESSAGES,
    SEED_TASK_BODY,
    Fault,
    SimTask,
    Simulator,
    TaskFileError,
    bulk_tasks,
)
from bot.devtools.simulator.auth import AccessKey, AuthRejected, Gateway, GatewayRequest
from bot.metastudio import signer
from bot.metastudio.models import Task, TaskPage
from bot.servers import serve_asgi
from tests.support.clock import FakeClock

START = 1_800_000_000.0  # a fixed "now" for the fake clock
HEX32 = re.compile(r"^[0-9a-f]{32}$")
TASK_PATH = f"/v2/{sim.DEMO_PROJECT_ID}/ies/task"


def sign_get(
    path: str,
    headers: dict[str, str],
    *,
    params: Iterable[tuple[str, str]] = (),
    ak: str = sim.DEMO_ACCESS_KEY,
    sk: str = sim.DEMO_SECRET_KEY,
    now: datetime | None = None,
) -> dict[str, str]:
    """``headers`` signed for a GET of ``path``: they gain ``X-Sdk-Date`` and ``Authorization``."""
    return signer.sign(
        access_key=ak, secret_key=sk, method="GET", path=path, params=list(params), headers=headers, now=now
    )


@dataclass
class Api:
    """An httpx client on a served Simulator that signs with the Simulator's own clock."""

    sim: Simulator
    http: httpx.AsyncClient

    async def signed_get(
        self,
        path: str,
        params: Iterable[tuple[str, str]] = (),
        *,
        ak: str = sim.DEMO_ACCESS_KEY,
        sk: str = sim.DEMO_SECRET_KEY,
        headers: dict[str, str] | None = None,
        sent_params: Iterable[tuple[str, str]] | None = None,
        signed_at: datetime | None = None,
    ) -> httpx.Response:
        params = list(params)
        signed = {
            "Host": self.http.base_url.netloc.decode(),
            "X-Project-Id": sim.DEMO_PROJECT_ID,
            **(headers or {}),
        }
        now = signed_at or datetime.fromtimestamp(self.sim.clock(), UTC)
        sign_get(path, signed, params=params, ak=ak, sk=sk, now=now)
        query = signer.canonical_query(params if sent_params is None else list(sent_params))
        return await self.http.get(path + (f"?{query}" if query else ""), headers=signed)

    async def show(self, task_id: str, **kwargs: Any) -> httpx.Response:
        return await self.signed_get(f"{TASK_PATH}/{task_id}", **kwargs)

    async def search(self, params: Iterable[tuple[str, str]] = (), **kwargs: Any) -> httpx.Response:
        return await self.signed_get(TASK_PATH, params, **kwargs)

    async def login(self, **overrides: Any) -> httpx.Response:
        body = password_auth_body(**overrides)
        return await self.http.post("/v3/auth/tokens", json=body)


def password_auth_body(
    name: str = sim.DEMO_IAM_USER,
    password: str = sim.DEMO_IAM_PASSWORD,
    domain: str = sim.DEMO_IAM_DOMAIN,
    project_id: str = sim.DEMO_PROJECT_ID,
) -> dict[str, Any]:
    user = {"name": name, "password": password, "domain": {"name": domain}}
    return {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": {"id": project_id}},
        }
    }


async def served(simulator: Simulator) -> AsyncIterator[Api]:
    async with serve_asgi(simulator.app) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield Api(simulator, http)


@pytest.fixture
async def demo() -> AsyncIterator[Api]:
    """The demo set on the real clock."""
    async for api in served(Simulator()):
        yield api


@pytest.fixture
async def clocked() -> AsyncIterator[tuple[Api, FakeClock]]:
    """The demo set on a fake clock."""
    clock = FakeClock(START)
    async for api in served(Simulator(clock=clock)):
        yield api, clock


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code
    assert HEX32.match(response.headers["X-Request-Id"])
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


# --- The oracle: Huawei's own SDK --------------------------------------------------------------


def sdk_client(
    url: str, *, sk: str = sim.DEMO_SECRET_KEY, ak: str = sim.DEMO_ACCESS_KEY, token: str | None = None
) -> Any:
    config = HttpConfig.get_default_config()
    config.ignore_ssl_verification = True
    credentials = BasicCredentials(ak, sk, sim.DEMO_PROJECT_ID)
    if token is not None:
        credentials = credentials.with_security_token(token)
    return (
        MetaStudioClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoints([url])
        .build()
    )


async def test_sdk_show_task_returns_the_seed_example(demo: Api) -> None:
    client = sdk_client(str(demo.http.base_url))
    response = await asyncio.to_thread(client.show_task, ShowTaskRequest(id=sim.SEED_TASK_ID))
    assert response.status_code == 200
    assert json.loads(response.raw_content) == dict(SEED_TASK_BODY)
    # The SDK types times and codes as str, so it turns the example's numbers into text.
    assert response.task_id == sim.SEED_TASK_ID
    assert response.task_name == "Imported Q&A pairs."
    assert response.resource == "knowledge-intent-question-create"
    assert (response.begin_time, response.end_time) == ("1744276967708", "1744276967708")
    assert (response.task_type, response.task_status) == ("0", "0")
    assert (response.total_count, response.success_count, response.failure_count) == (3, 2, 1)
    assert response.operator == "adminUserAccount"
    assert response.user_id == "246748d3d76b4779aea38c201a284810"
    assert demo.sim.requests[("show", sim.SEED_TASK_ID)] == 1


async def test_sdk_search_task_filters_by_resource(demo: Api) -> None:
    client = sdk_client(str(demo.http.base_url))
    wanted = ["knowledge-base-document-import", "knowledge-intent-question-export"]
    response = await asyncio.to_thread(client.search_task, SearchTaskRequest(resource=list(wanted)))
    assert response.status_code == 200
    assert response.count == len(response.data) == 5
    assert {task.resource for task in response.data} == set(wanted)
    begins = [int(task.begin_time) for task in response.data]
    assert begins == sorted(begins, reverse=True)

    everything = await asyncio.to_thread(client.search_task, SearchTaskRequest())
    assert everything.count == 11 and len(everything.data) == 10
    assert demo.sim.requests[("list", "")] == 2


async def test_sdk_with_temporary_credentials(demo: Api) -> None:
    client = sdk_client(
        str(demo.http.base_url),
        ak=sim.DEMO_TEMP_ACCESS_KEY,
        sk=sim.DEMO_TEMP_SECRET_KEY,
        token=sim.DEMO_SECURITY_TOKEN,
    )
    response = await asyncio.to_thread(client.show_task, ShowTaskRequest(id=sim.RUNNING_TASK_ID))
    assert response.task_id == sim.RUNNING_TASK_ID


async def test_sdk_with_a_wrong_secret_key_gets_401(demo: Api) -> None:
    client = sdk_client(str(demo.http.base_url), sk="not-the-secret-key")
    with pytest.raises(sdk_exceptions.ClientRequestException) as caught:
        await asyncio.to_thread(client.show_task, ShowTaskRequest(id=sim.SEED_TASK_ID))
    assert caught.value.status_code == 401
    assert caught.value.error_code == "APIGW.0301"
    assert caught.value.error_msg.startswith("Incorrect IAM authentication information: ")
    assert HEX32.match(caught.value.request_id)
    assert "not-the-secret-key" not in caught.value.error_msg
    assert demo.sim.requests[("show", sim.SEED_TASK_ID)] == 1  # counted although refused


# --- Gateway: signatures, tokens, projects -------------------------------------------------------


async def test_a_signed_request_with_a_query_succeeds(demo: Api) -> None:
    response = await demo.search([("resource", "knowledge-intent-question-create"), ("limit", "3")])
    assert response.status_code == 200, response.text
    page = TaskPage.model_validate(response.json())
    assert page.limit == 3 and len(page.data) == 3 and page.count == 6


async def test_missing_authentication_is_401(demo: Api) -> None:
    response = await demo.http.get(f"{TASK_PATH}/{sim.SEED_TASK_ID}")
    body = assert_error(response, 401, "APIGW.0301")
    assert (
        body["error_msg"]
        == "Incorrect IAM authentication information: no X-Auth-Token or Authorization header"
    )


BAD_SIGNATURES: list[tuple[str, dict[str, Any], str]] = [
    ("wrong-sk", {"sk": "wrong-secret"}, "verify aksk signature fail"),
    ("unknown-ak", {"ak": "UNKNOWNACCESSKEY0000"}, "the access key does not exist"),
    (
        "6-hours-old-date",
        {"signed_at": datetime.now(UTC) - timedelta(hours=6)},
        "X-Sdk-Date is too far from the server time",
    ),
    ("future-date", {"signed_at": datetime.now(UTC) + timedelta(hours=1)}, "X-Sdk-Date is too far"),
    (
        "tampered-query",
        {"params": [("limit", "5")], "sent_params": [("limit", "50")]},
        "verify aksk signature fail",
    ),
    (
        "added-query-param",
        {"params": [("resource", "a")], "sent_params": [("resource", "a"), ("offset", "1")]},
        "verify aksk signature fail",
    ),
    (
        "temp-ak-without-token",
        {"ak": sim.DEMO_TEMP_ACCESS_KEY, "sk": sim.DEMO_TEMP_SECRET_KEY},
        "temporary access keys need an X-Security-Token header",
    ),
    (
        "temp-ak-wrong-token",
        {
            "ak": sim.DEMO_TEMP_ACCESS_KEY,
            "sk": sim.DEMO_TEMP_SECRET_KEY,
            "headers": {"X-Security-Token": "forged"},
        },
        "the security token is invalid or expired",
    ),
    (
        "permanent-ak-with-token",
        {"headers": {"X-Security-Token": sim.DEMO_SECURITY_TOKEN}},
        "a security token was sent with a permanent access key",
    ),
]


async def test_bad_signatures_are_401(demo: Api) -> None:
    # One server for every case: starting and stopping uvicorn costs more than the requests.
    for case, kwargs, reason in BAD_SIGNATURES:
        response = await demo.search(**kwargs)
        body = assert_error(response, 401, "APIGW.0301")
        assert body["error_msg"].startswith(f"Incorrect IAM authentication information: {reason}"), case
        for secret in (sim.DEMO_SECRET_KEY, sim.DEMO_TEMP_SECRET_KEY, "wrong-secret", "forged"):
            assert secret not in response.text, case
    assert demo.sim.requests[("list", "")] == len(BAD_SIGNATURES)


async def test_temporary_key_with_its_signed_security_token_is_accepted(demo: Api) -> None:
    response = await demo.show(
        sim.SEED_TASK_ID,
        ak=sim.DEMO_TEMP_ACCESS_KEY,
        sk=sim.DEMO_TEMP_SECRET_KEY,
        headers={"X-Security-Token": sim.DEMO_SECURITY_TOKEN},
    )
    assert response.status_code == 200
    assert response.json() == dict(SEED_TASK_BODY)


async def test_unsigned_security_token_or_host_is_401(demo: Api) -> None:
    path = f"{TASK_PATH}/{sim.SEED_TASK_ID}"
    host = demo.http.base_url.netloc.decode()

    # Signed as they are (plus the date): nothing the server wants is added.
    signed = sign_get(path, {"Host": host}, ak=sim.DEMO_TEMP_ACCESS_KEY, sk=sim.DEMO_TEMP_SECRET_KEY)
    response = await demo.http.get(path, headers={**signed, "X-Security-Token": sim.DEMO_SECURITY_TOKEN})
    assert "X-Security-Token is not signed" in assert_error(response, 401, "APIGW.0301")["error_msg"]

    only_date = sign_get(path, {"X-Project-Id": sim.DEMO_PROJECT_ID})
    response = await demo.http.get(path, headers=only_date)
    assert "the Host header is not signed" in assert_error(response, 401, "APIGW.0301")["error_msg"]


async def test_malformed_authorization_and_date_are_401(demo: Api) -> None:
    path = f"{TASK_PATH}/{sim.SEED_TASK_ID}"
    response = await demo.http.get(path, headers={"Authorization": "Bearer abc"})
    assert "not a well-formed SDK-HMAC-SHA256" in assert_error(response, 401, "APIGW.0301")["error_msg"]
    auth = f"SDK-HMAC-SHA256 Access={sim.DEMO_ACCESS_KEY}, SignedHeaders=host, Signature=00"
    response = await demo.http.get(path, headers={"Authorization": auth})
    assert "X-Sdk-Date is missing" in assert_error(response, 401, "APIGW.0301")["error_msg"]
    response = await demo.http.get(path, headers={"Authorization": auth, "X-Sdk-Date": "yesterday"})
    assert "YYYYMMDDTHHMMSSZ" in assert_error(response, 401, "APIGW.0301")["error_msg"]


async def test_project_mismatches_are_403(demo: Api) -> None:
    other = "ffffffffffffffffffffffffffffffff"
    response = await demo.show(sim.SEED_TASK_ID, headers={"X-Project-Id": other})
    assert "X-Project-Id" in assert_error(response, 403, "APIGW.0302")["error_msg"]
    response = await demo.signed_get(
        f"/v2/{other}/ies/task/{sim.SEED_TASK_ID}", headers={"X-Project-Id": other}
    )
    assert "project in the URL" in assert_error(response, 403, "APIGW.0302")["error_msg"]


async def test_unknown_routes_unknown_and_invalid_ids(demo: Api) -> None:
    for response in (
        await demo.http.get("/v1/nothing/here"),
        await demo.http.post(f"{TASK_PATH}/{sim.SEED_TASK_ID}"),
    ):
        body = assert_error(response, 404, "APIGW.0101")
        assert body["error_msg"].startswith("The API does not exist")

    body = assert_error(await demo.show("0" * 32), 404, "MSS.000000001")
    assert "not found" in body["error_msg"]
    assert_error(await demo.show("not-a-task-id"), 400, "MSS.000000003")
    demo.sim.add_task(SimTask("legacy-id", "added later", "r", 1, 0, 1_700_000_000_000))
    assert (await demo.show("legacy-id")).json()["task_status"] in (2, "2")


async def test_request_ids_are_unique_per_response(demo: Api) -> None:
    responses = [await demo.show(sim.SEED_TASK_ID) for _ in range(3)]
    responses.append(await demo.login())
    ids = {response.headers["X-Request-Id"] for response in responses}
    assert len(ids) == 4 and all(HEX32.match(i) for i in ids)


# --- The gateway on its own: a GatewayRequest value, no HTTP -------------------------------------


def _gateway(clock: FakeClock) -> Gateway:
    keys = {sim.DEMO_ACCESS_KEY: AccessKey(sim.DEMO_SECRET_KEY, sim.DEMO_PROJECT_ID)}
    return Gateway(access_keys=keys, clock=clock, max_clock_skew_seconds=900)


def _signed_at(epoch: float) -> GatewayRequest:
    path = f"{TASK_PATH}/{sim.SEED_TASK_ID}"
    headers = sign_get(path, {"Host": "127.0.0.1:8080"}, now=datetime.fromtimestamp(epoch, UTC))
    lower = {name.lower(): value for name, value in headers.items()}
    return GatewayRequest(method="GET", raw_path=path, query_string="", headers=lower, body=b"")


@pytest.mark.parametrize("skew", [-900, 900])
def test_gateway_accepts_a_signature_exactly_at_the_allowed_skew(skew: int) -> None:
    assert _gateway(FakeClock(START)).authenticate(_signed_at(START + skew)) == sim.DEMO_PROJECT_ID


@pytest.mark.parametrize("skew", [-901, 901])
def test_gateway_refuses_a_signature_one_second_past_the_skew(skew: int) -> None:
    with pytest.raises(AuthRejected, match="X-Sdk-Date is too far from the server time"):
        _gateway(FakeClock(START)).authenticate(_signed_at(START + skew))


def test_gateway_token_is_good_until_its_expiry_and_not_at_it() -> None:
    clock = FakeClock(START)
    gateway = _gateway(clock)
    token, issued = gateway.issue_token(sim.DEMO_PROJECT_ID, ttl_seconds=100)
    request = GatewayRequest(
        method="GET", raw_path="/", query_string="", headers={"x-auth-token": token}, body=b""
    )
    clock.advance(99.5)
    assert gateway.authenticate(request) == sim.DEMO_PROJECT_ID
    clock.now = issued.expires_at
    with pytest.raises(AuthRejected) as refused:
        gateway.authenticate(request)
    assert (refused.value.error_code, refused.value.error_msg) == ("APIGW.0307", "The token must be updated.")


# --- IAM tokens ----------------------------------------------------------------------------------


async def test_token_issue_use_and_expiry(clocked: tuple[Api, FakeClock]) -> None:
    api, clock = clocked
    response = await api.login()
    assert response.status_code == 201, response.text
    token = response.headers["X-Subject-Token"]
    body = response.json()["token"]
    assert body["methods"] == ["password"]
    assert body["project"]["id"] == sim.DEMO_PROJECT_ID
    assert body["issued_at"] == "2027-01-15T08:00:00.000000Z"
    assert body["expires_at"] == "2027-01-16T08:00:00.000000Z"  # the default 24 h
    assert token not in response.text
    assert api.sim.requests[("token", "")] == 1

    detail = await api.http.get(f"{TASK_PATH}/{sim.RUNNING_TASK_ID}", headers={"X-Auth-Token": token})
    assert detail.status_code == 200 and detail.json()["task_id"] == sim.RUNNING_TASK_ID
    listing = await api.http.get(TASK_PATH, headers={"X-Auth-Token": token})
    assert listing.status_code == 200 and listing.json()["count"] == 11

    clock.advance(86400)
    expired = await api.http.get(f"{TASK_PATH}/{sim.RUNNING_TASK_ID}", headers={"X-Auth-Token": token})
    assert assert_error(expired, 401, "APIGW.0307")["error_msg"] == "The token must be updated."

    forged = await api.http.get(f"{TASK_PATH}/{sim.RUNNING_TASK_ID}", headers={"X-Auth-Token": "MIIforged"})
    assert_error(forged, 401, "APIGW.0301")


async def test_wrong_iam_credentials_are_401(demo: Api) -> None:
    for overrides in ({"password": "wrong"}, {"name": "someone-else"}, {"domain": "other-domain"}):
        response = await demo.login(**overrides)
        assert response.status_code == 401, overrides
        assert response.json() == {
            "error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}
        }
        assert "X-Subject-Token" not in response.headers


async def test_token_for_another_project_or_bad_body(demo: Api) -> None:
    response = await demo.login(project_id="ffffffffffffffffffffffffffffffff")
    assert response.status_code == 401 and response.json()["error"]["title"] == "Unauthorized"
    for bad in (b"not json", b"{}", json.dumps({"auth": {"identity": {"methods": "password"}}}).encode()):
        response = await demo.http.post("/v3/auth/tokens", content=bad)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == 400
    no_password_method = password_auth_body()
    no_password_method["auth"]["identity"]["methods"] = ["token"]
    response = await demo.http.post("/v3/auth/tokens", json=no_password_method)
    assert response.status_code == 400


# --- Progression on a fake clock -----------------------------------------------------------------


async def test_counts_rise_with_the_clock_and_stop_at_total() -> None:
    clock = FakeClock(START)
    task = SimTask(
        task_id="a" * 32,
        task_name="进度测试",
        resource="knowledge-intent-question-create",
        total_count=1000,
        duration_seconds=100,
        begin_time_ms=int(START * 1000),
        failure_rate=0.1,
        encoding="number",
    )
    simulator = Simulator([task], clock=clock)
    seen: list[dict[str, Any]] = []
    async for api in served(simulator):
        for _ in range(5):
            response = await api.show(task.task_id)
            assert response.status_code == 200
            seen.append(response.json())
            clock.advance(30)
    processed = [body["success_count"] + body["failure_count"] for body in seen]
    assert processed == [0, 300, 600, 900, 1000]
    assert [body["failure_count"] for body in seen] == [0, 30, 60, 90, 100]
    assert [body["task_status"] for body in seen] == [1, 1, 1, 1, 2]
    assert [body["end_time"] for body in seen[:4]] == [None] * 4
    assert seen[4]["end_time"] == seen[4]["begin_time"] + 100_000
    assert Task.model_validate(seen[4]).is_finished()
    assert not Task.model_validate(seen[2]).is_finished()
    assert list(seen[0]) == [
        "resource", "task_name", "begin_time", "end_time", "task_type", "operator", "total_count",
        "success_count", "failure_count", "task_status", "task_id", "user_id",
    ]  # fmt: skip


async def test_string_encoded_task(clocked: tuple[Api, FakeClock]) -> None:
    api, clock = clocked
    running = (await api.show(sim.RUNNING_TASK_ID)).json()
    assert running["task_status"] == "1" and running["end_time"] is None
    assert isinstance(running["begin_time"], str) and running["begin_time"].isdigit()
    assert running["task_type"] == "0"
    assert isinstance(running["success_count"], int)
    # Mid-way: half of 50,000, with a few failures.
    assert running["success_count"] + running["failure_count"] == 25_000
    assert 0 < running["failure_count"] < 1000
    clock.advance(2 * 3600)
    done = (await api.show(sim.RUNNING_TASK_ID)).json()
    assert done["task_status"] == "2"
    assert int(done["end_time"]) > int(done["begin_time"])
    assert done["success_count"] + done["failure_count"] == 50_000


async def test_finishing_task_finishes_about_20_seconds_after_start(clocked: tuple[Api, FakeClock]) -> None:
    api, clock = clocked
    before = (await api.show(sim.FINISHING_TASK_ID)).json()
    assert before["task_status"] == 1 and before["end_time"] is None
    assert 0 < before["success_count"] + before["failure_count"] < 1200
    clock.advance(19)
    assert api.sim.snapshot(sim.FINISHING_TASK_ID)["task_status"] == 1
    clock.advance(1.5)
    after = (await api.show(sim.FINISHING_TASK_ID)).json()
    assert after["task_status"] == 2
    assert after["success_count"] + after["failure_count"] == 1200
    assert after["end_time"] == int(START * 1000) + 20_000


def test_a_task_that_has_not_begun_reads_as_running_with_no_progress() -> None:
    clock = FakeClock(START)
    later = SimTask("b" * 32, "later", "r", 10, 5, int((START + 60) * 1000), encoding="string")
    simulator = Simulator([later], clock=clock)
    body = simulator.snapshot(later.task_id)
    assert (body["task_status"], body["success_count"], body["end_time"]) == ("1", 0, None)
    with pytest.raises(KeyError):
        simulator.snapshot("c" * 32)


# --- The list call -------------------------------------------------------------------------------


async def test_list_pages_newest_first(clocked: tuple[Api, FakeClock]) -> None:
    api, _ = clocked
    first = (await api.search()).json()
    assert (first["offset"], first["limit"], first["count"]) == (0, 10, 11)
    assert len(first["data"]) == 10
    second = (await api.search([("offset", "10"), ("limit", "10")])).json()
    assert [t["task_id"] for t in second["data"]] == [sim.SEED_TASK_ID]  # the oldest
    ids = [t["task_id"] for t in first["data"] + second["data"]]
    assert len(set(ids)) == 11
    begins = [int(t["begin_time"]) for t in first["data"] + second["data"]]
    assert begins == sorted(begins, reverse=True)
    fault_ids = {sim.SLOW_TASK_ID, sim.THROTTLED_TASK_ID, sim.FLAKY_TASK_ID, sim.BROKEN_TASK_ID, sim.MALFORMED_TASK_ID,
                 sim.FORBIDDEN_TASK_ID, *sim.MSS_TASK_IDS.values()}  # fmt: skip
    assert not fault_ids & set(ids)
    assert api.sim.requests[("list", "")] == 2


async def test_list_filters(clocked: tuple[Api, FakeClock]) -> None:
    api, _ = clocked
    comma = (
        await api.search([("resource", "knowledge-intent-question-export,knowledge-base-document-import")])
    ).json()
    repeated = (
        await api.search(
            [("resource", "knowledge-intent-question-export"), ("resource", "knowledge-base-document-import")]
        )
    ).json()
    # SDK mode: ``resource`` is repeated; a comma is part of one (unknown) resource name.
    assert repeated["count"] == 5
    assert comma["count"] == 0

    by_business = (await api.search([("business_id", sim.DEMO_BUSINESS_IDS[0])])).json()
    assert by_business["count"] == 6
    assert sim.SEED_TASK_ID in {t["task_id"] for t in by_business["data"]}

    now_ms = int(START * 1000)
    window = [("begin_time", str(now_ms - 3 * 3600 * 1000)), ("end_time", str(now_ms))]
    recent = (await api.search(window)).json()
    assert {t["task_id"] for t in recent["data"]} == {
        sim.RUNNING_TASK_ID,
        sim.FINISHING_TASK_ID,
        "3c9a1e5b7d2f4086a1c3e5b7d9f1a2c4",
        "d4e5f6a7b8c94d0e8f1a2b3c4d5e6f70",
        "8f2b6d0e4a1c4e9b7d3f5a8c0e2b4d6f",
    }
    nothing = (await api.search([("resource", "no-such-resource")])).json()
    assert nothing == {"offset": 0, "limit": 10, "count": 0, "data": []}


async def test_invalid_list_parameters_are_400(demo: Api) -> None:
    for params in ([("limit", "0")], [("limit", "101")], [("limit", "ten")], [("offset", "-1")],
                   [("begin_time", "today")], [("end_time", "1.5")]):  # fmt: skip
        body = assert_error(await demo.search(params), 400, "MSS.000000003")
        assert body["error_msg"].startswith(MSS_MESSAGES["MSS.000000003"]), params
        assert params[0][0] in body["error_msg"]


async def test_list_limit_100_is_allowed() -> None:
    simulator = Simulator(bulk_tasks(150, now=time.time()))
    async for api in served(simulator):
        page = (await api.search([("limit", "100"), ("offset", "120")])).json()
    assert page["count"] == 150 and len(page["data"]) == 30


# --- Faults --------------------------------------------------------------------------------------


async def test_throttled_task_answers_429_twice_then_ok(demo: Api) -> None:
    unauthenticated = await demo.http.get(f"{TASK_PATH}/{sim.THROTTLED_TASK_ID}")
    assert unauthenticated.status_code == 401  # faults apply after authentication
    for _ in range(2):
        response = await demo.show(sim.THROTTLED_TASK_ID)
        body = assert_error(response, 429, "APIGW.0308")
        assert response.headers["Retry-After"] == "1"
        assert body["error_msg"] == (
            "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second"
        )
    assert (await demo.show(sim.THROTTLED_TASK_ID)).status_code == 200
    assert demo.sim.requests[("show", sim.THROTTLED_TASK_ID)] == 4


async def test_server_errors(demo: Api) -> None:
    body = assert_error(await demo.show(sim.FLAKY_TASK_ID), 500, "MSS.000000002")
    assert body["error_msg"] == "内部错误"
    assert (await demo.show(sim.FLAKY_TASK_ID)).json()["task_id"] == sim.FLAKY_TASK_ID
    for _ in range(3):
        assert_error(await demo.show(sim.BROKEN_TASK_ID), 500, "MSS.000000002")


async def test_malformed_body(demo: Api) -> None:
    response = await demo.show(sim.MALFORMED_TASK_ID)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


async def test_mss_errors_are_400_with_the_docs_meaning_and_forbidden_is_403(demo: Api) -> None:
    for code, task_id in sim.MSS_TASK_IDS.items():
        body = assert_error(await demo.show(task_id), 400, code)
        assert body["error_msg"] == MSS_MESSAGES[code]
    assert MSS_MESSAGES["MSS.000000003"] == "非法参数"
    assert_error(await demo.show(sim.FORBIDDEN_TASK_ID), 403, "APIGW.0302")


async def test_slow_fault_does_not_block_other_requests(demo: Api) -> None:
    assert demo.sim.task(sim.SLOW_TASK_ID).fault == Fault("slow", seconds=2)
    demo.sim.set_fault(sim.SLOW_TASK_ID, Fault("slow", seconds=0.3))
    started = time.monotonic()
    slow = asyncio.create_task(demo.show(sim.SLOW_TASK_ID))
    await asyncio.sleep(0.05)
    quick = await demo.show(sim.SEED_TASK_ID)
    quick_done = time.monotonic() - started
    slow_response = await slow
    slow_done = time.monotonic() - started
    assert quick.status_code == 200 and slow_response.status_code == 200
    assert quick_done < 0.25 <= slow_done
    assert slow_response.json()["task_id"] == sim.SLOW_TASK_ID


async def test_set_fault_on_any_task_and_clear_it(demo: Api) -> None:
    demo.sim.set_fault(sim.SEED_TASK_ID, Fault("throttle", seconds=0.5, times=1))
    listed = {t["task_id"] for t in (await demo.search([("limit", "100")])).json()["data"]}
    assert sim.SEED_TASK_ID not in listed
    response = await demo.show(sim.SEED_TASK_ID)
    assert response.status_code == 429 and response.headers["Retry-After"] == "0.5"
    assert (await demo.show(sim.SEED_TASK_ID)).status_code == 200

    demo.sim.set_fault(sim.BROKEN_TASK_ID, None)
    assert demo.sim.current_fault(sim.BROKEN_TASK_ID) is None
    assert (await demo.show(sim.BROKEN_TASK_ID)).status_code == 200
    listed = {t["task_id"] for t in (await demo.search([("limit", "100")])).json()["data"]}
    assert sim.BROKEN_TASK_ID in listed
    assert sim.SEED_TASK_ID not in listed  # still faulty, though its one 429 is spent


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mss_error needs code"):
        Fault("mss_error", code="MSS.999")
    with pytest.raises(ValueError, match="negative"):
        Fault("slow", seconds=-1)


# --- JSON task files and the demo set ------------------------------------------------------------


def test_demo_set_matches_the_published_ids() -> None:
    simulator = Simulator(clock=FakeClock(START))
    expected_faults = {
        sim.SLOW_TASK_ID: Fault("slow", seconds=2),
        sim.THROTTLED_TASK_ID: Fault("throttle", seconds=1, times=2),
        sim.FLAKY_TASK_ID: Fault("server_error", times=1),
        sim.BROKEN_TASK_ID: Fault("server_error"),
        sim.MALFORMED_TASK_ID: Fault("malformed"),
        sim.FORBIDDEN_TASK_ID: Fault("forbidden"),
        **{task_id: Fault("mss_error", code=code) for code, task_id in sim.MSS_TASK_IDS.items()},
    }
    for task_id, fault in expected_faults.items():
        assert simulator.task(task_id).fault == fault
    assert simulator.snapshot(sim.SEED_TASK_ID) == dict(SEED_TASK_BODY)
    assert all(HEX32.match(task_id) for task_id in simulator.task_ids)
    ordinary = [t for t in simulator.task_ids if t not in expected_faults]
    assert len(ordinary) == 11
    assert {simulator.task(t).resource for t in ordinary} == {
        "knowledge-intent-question-create",
        "knowledge-intent-question-export",
        "knowledge-base-document-import",
    }
    encodings = {simulator.task(t).wire_encoding for t in ordinary if t != sim.SEED_TASK_ID}
    assert encodings == {"number", "string"}


async def test_json_file_loading(tmp_path: Path) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(
        json.dumps(
            [
                {
                    "task_id": "1" * 32,
                    "task_name": "相对时间",
                    "resource": "knowledge-base-document-import",
                    "total_count": 10,
                    "duration_seconds": 10,
                    "started_seconds_ago": 5,
                    "encoding": "string",
                    "business_id": "kb-1",
                },
                {
                    "task_id": "2" * 32,
                    "task_name": "absolute",
                    "resource": "knowledge-intent-question-export",
                    "total_count": 4,
                    "duration_seconds": 1,
                    "begin_time_ms": 1_700_000_000_000,
                    "task_type": 1,
                    "fault": {"kind": "mss_error", "code": "MSS.000000003", "times": 1},
                },
                {"static_body": {**SEED_TASK_BODY, "task_id": "3" * 32}},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    clock = FakeClock(START)
    simulator = Simulator.from_json_file(path, clock=clock)
    assert simulator.task_ids == ["1" * 32, "2" * 32, "3" * 32]
    relative = simulator.snapshot("1" * 32)
    assert relative["begin_time"] == str(int((START - 5) * 1000))
    assert relative["success_count"] == 5 and relative["task_status"] == "1"
    assert simulator.snapshot("2" * 32)["end_time"] == 1_700_000_001_000
    assert simulator.snapshot("3" * 32)["task_id"] == "3" * 32
    async for api in served(simulator):
        assert_error(await api.show("2" * 32), 400, "MSS.000000003")
        assert (await api.show("2" * 32)).json()["task_type"] in (1, "1")
        listed = (await api.search([("business_id", "kb-1")])).json()
        assert [t["task_id"] for t in listed["data"]] == ["1" * 32]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"task_id": "x"}, "JSON list"),
        ([{"task_id": "1" * 32, "colour": "red"}], "unknown task keys"),
        ([{"task_id": "1" * 32, "task_name": "n", "resource": "r", "total_count": 1, "duration_seconds": 1}],
         "exactly one of begin_time_ms and started_seconds_ago"),
        ([{"task_id": "1" * 32, "task_name": "n", "resource": "r", "total_count": 1, "duration_seconds": 1,
           "begin_time_ms": 1, "failure_rate": 2}], "failure_rate"),
        ([{"static_body": SEED_TASK_BODY, "task_name": "x"}], "static task"),
        ([{"task_id": "1" * 32, "begin_time_ms": 1}], "missing task key"),
        ([{"static_body": SEED_TASK_BODY, "fault": {"kind": "nope"}}], "unknown fault kind"),
    ],
    ids=["not-a-list", "unknown-key", "no-begin", "bad-rate", "static-extra", "missing", "bad-fault"],
)  # fmt: skip
def test_invalid_task_files(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(TaskFileError, match=message):
        Simulator.from_json_file(path)


def test_bulk_tasks_are_valid_and_finish_within_the_window() -> None:
    clock = FakeClock(START)
    tasks = bulk_tasks(500, now=START, finish_within_seconds=60)
    assert tasks == bulk_tasks(500, now=START, finish_within_seconds=60)  # deterministic
    simulator = Simulator(tasks, clock=clock)
    assert len({t.task_id for t in tasks}) == 500 and all(HEX32.match(t.task_id) for t in tasks)
    assert all(t.end_time_ms > START * 1000 for t in tasks)
    clock.advance(60)
    assert all(simulator.snapshot(t.task_id)["task_status"] in (2, "2") for t in tasks)


def failing_halfway(*, duration_seconds: float, ends_early_at_seconds: float) -> SimTask:
    """A task of 1000 items begun at 1_000_000 ms that ends ``ends_early_at_seconds`` after it began."""
    return SimTask(
        task_id="e" * 32,
        task_name="fails halfway",
        resource="r",
        total_count=1000,
        duration_seconds=duration_seconds,
        begin_time_ms=1_000_000,
        ends_early_at_seconds=ends_early_at_seconds,
    )


def test_a_task_that_ends_early_sets_end_time_and_freezes_its_counts() -> None:
    task = failing_halfway(duration_seconds=100.0, ends_early_at_seconds=40.0)
    running = Task.model_validate(task.body_at(1_000_000 + 30_000))
    assert (running.processed_count, running.end_time) == (300, None)
    assert not running.is_finished()
    for later in (40_000, 90_000):
        ended = Task.model_validate(task.body_at(1_000_000 + later))
        assert ended.processed_count == 400  # frozen where it stopped
        assert ended.end_time == 1_000_000 + 40_000
        assert ended.is_finished()
    with pytest.raises(ValueError, match="early end must come before"):
        failing_halfway(duration_seconds=10.0, ends_early_at_seconds=10.0)


def test_the_task_file_takes_an_early_end() -> None:
    (task,) = sim.tasks_from_json(
        [
            {
                "task_id": "e" * 32,
                "task_name": "fails halfway",
                "resource": "r",
                "total_count": 10,
                "duration_seconds": 60,
                "started_seconds_ago": 5,
                "ends_early_at_seconds": 30,
            }
        ],
        now=time.time(),
    )
    assert task.ends_early_at_seconds == 30.0
