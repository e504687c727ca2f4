"""The Simulator: MetaStudio's task endpoints, IAM's token endpoint and the gateway in front of them."""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

import bot.devtools.simulator.demo as demo
from bot.devtools.simulator.auth import AccessKey, AuthRejected, Gateway, GatewayRequest
from bot.devtools.simulator.tasks import (
    MSS_MESSAGES,
    Fault,
    SimTask,
    demo_tasks,
    ordered,
    read_task_file,
    tasks_from_json,
)

JSON_TYPE = "application/json"
TASK_ID_RE = re.compile(r"^[0-9a-fA-F]{32}$")
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

THROTTLE_MESSAGE = (
    "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second"
)
FORBIDDEN_MESSAGE = "The IAM user is not authorized to access the API."
UNKNOWN_API_MESSAGE = "The API does not exist or has not been published in the environment"
# What an HTML error page from a misbehaving proxy looks like; deliberately not JSON.
MALFORMED_BODY = (
    b"<html><head><title>MetaStudio</title></head>"
    b"<body><h1>Service temporarily unavailable</h1><p>upstream returned garbage</p></body></html>"
)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _new_request_id() -> str:
    return uuid.uuid4().hex


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime(ISO_FORMAT)


def _decode(raw: bytes) -> str:
    # Signers hash text as UTF-8, so the header bytes are read back the same way.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _headers(scope: Scope) -> dict[str, str]:
    return {_decode(name).lower(): _decode(value) for name, value in scope["headers"]}


class _BadParameter(Exception):
    pass


def _int_param(
    params: Mapping[str, list[str]], name: str, default: int | None, low: int, high: int
) -> int | None:
    values = [v for v in params.get(name, []) if v != ""]
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise _BadParameter(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise _BadParameter(f"{name} must be between {low} and {high}")
    return value


class Simulator:
    """An in-process MetaStudio stand-in; serve :attr:`app` with ``bot.servers.serve_asgi``.

    Times come from ``clock`` (epoch seconds), read on every request, so tests move a fake clock
    and benchmarks use real time. The demo set (``tasks=None``) is laid out relative to the
    moment the Simulator is created.

    ``requests`` counts every request that reached a handler, authenticated or not, keyed
    ``("show", task_id)``, ``("list", "")``, ``("token", "")`` or ``("unknown", path)``.
    """

    def __init__(
        self,
        tasks: Iterable[SimTask] | None = None,
        *,
        project_id: str = demo.DEMO_PROJECT_ID,
        region: str = demo.DEMO_REGION,
        clock: Callable[[], float] = time.time,
        token_ttl_seconds: float = 86400,
        max_clock_skew_seconds: float = 900,
    ) -> None:
        self.project_id = project_id
        self.region = region
        # False: answer every list call from the first match, as a server that does not know the
        # (undocumented) offset parameter would; clients must notice the repeated page.
        self.honour_offset = True
        # Set: answer at most this many rows per list call whatever ``limit`` asks (echoing this
        # as the limit), as a server whose pages are smaller than clients ask would.
        self.page_cap: int | None = None
        self.clock = clock
        self.token_ttl_seconds = token_ttl_seconds
        self.created_at = clock()
        self.requests: collections.Counter[tuple[str, str]] = collections.Counter()
        self._tasks: dict[str, SimTask] = {}
        self._faults: dict[str, Fault] = {}
        self._fault_hits: collections.Counter[str] = collections.Counter()
        self._listed: list[SimTask] | None = None
        self._iam_users: dict[tuple[str, str], str] = {
            (demo.DEMO_IAM_DOMAIN, demo.DEMO_IAM_USER): demo.DEMO_IAM_PASSWORD
        }
        self.gateway = Gateway(
            access_keys={
                demo.DEMO_ACCESS_KEY: AccessKey(demo.DEMO_SECRET_KEY, project_id),
                demo.DEMO_TEMP_ACCESS_KEY: AccessKey(
                    demo.DEMO_TEMP_SECRET_KEY, project_id, demo.DEMO_SECURITY_TOKEN
                ),
            },
            clock=clock,
            max_clock_skew_seconds=max_clock_skew_seconds,
        )
        for task in demo_tasks(self.created_at) if tasks is None else tasks:
            self.add_task(task)
        self.app = Starlette(
            routes=[
                Route("/v2/{project_id}/ies/task/{task_id}", self._show, methods=["GET"]),
                Route("/v2/{project_id}/ies/task", self._list, methods=["GET"]),
                Route("/v3/auth/tokens", self._issue_token, methods=["POST"]),
                Route("/v3/projects", self._list_projects, methods=["GET"]),
                Route("/{path:path}", self._unknown_route, methods=ALL_METHODS),
            ],
            exception_handlers={Exception: self._crash},
        )

    @classmethod
    def from_json_file(cls, path: str | Path, **kwargs: Any) -> Simulator:
        """A Simulator holding only the tasks of a JSON task file (format: package docstring)."""
        items = read_task_file(path)
        simulator = cls([], **kwargs)
        for task in tasks_from_json(items, now=simulator.created_at):
            simulator.add_task(task)
        return simulator

    # --- state ----------------------------------------------------------------------------------

    def add_task(self, task: SimTask) -> None:
        """Add or replace a task; its ``fault`` becomes the task's current fault."""
        self._tasks[task.task_id] = task
        self.set_fault(task.task_id, task.fault)

    def remove_task(self, task_id: str) -> None:
        """The task is deleted: from now on the show call answers "not found" for it."""
        self._tasks.pop(task_id, None)
        self._listed = None

    def set_fault(self, task_id: str, fault: Fault | None) -> None:
        """Make the show call for ``task_id`` misbehave (None: behave). Restarts the ``times`` count.

        The id need not be a known task. A task with a fault is left out of the list call.
        """
        if fault is None:
            self._faults.pop(task_id, None)
        else:
            self._faults[task_id] = fault
        self._fault_hits.pop(task_id, None)
        self._listed = None

    def current_fault(self, task_id: str) -> Fault | None:
        return self._faults.get(task_id)

    def task(self, task_id: str) -> SimTask:
        return self._tasks[task_id]

    @property
    def task_ids(self) -> list[str]:
        return list(self._tasks)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def snapshot(self, task_id: str) -> dict[str, Any]:
        """The body the show call would return now, ignoring faults. KeyError for an unknown id."""
        return self._tasks[task_id].body_at(self.now_ms())

    def _listed_tasks(self) -> list[SimTask]:
        if self._listed is None:
            self._listed = ordered(t for t in self._tasks.values() if t.task_id not in self._faults)
        return self._listed

    # --- responses ------------------------------------------------------------------------------

    @staticmethod
    def _respond(
        status: int,
        body: bytes,
        request_id: str,
        *,
        media_type: str = JSON_TYPE,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        all_headers = {"X-Request-Id": request_id, **(headers or {})}
        return Response(body, status_code=status, headers=all_headers, media_type=media_type)

    def _error(
        self,
        status: int,
        error_code: str,
        error_msg: str,
        request_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        body = {"error_code": error_code, "error_msg": error_msg, "request_id": request_id}
        return self._respond(status, _dumps(body), request_id, headers=headers)

    def _iam_error(self, status: int, message: str, title: str, request_id: str) -> Response:
        body = {"error": {"code": status, "message": message, "title": title}}
        return self._respond(status, _dumps(body), request_id)

    async def _crash(self, request: Request, exc: Exception) -> Response:
        return self._error(500, "MSS.000000002", MSS_MESSAGES["MSS.000000002"], _new_request_id())

    async def _unknown_route(self, request: Request) -> Response:
        self.requests[("unknown", request.url.path)] += 1
        return self._error(404, "APIGW.0101", UNKNOWN_API_MESSAGE, _new_request_id())

    # --- gateway --------------------------------------------------------------------------------

    async def _authenticate(self, request: Request) -> str:
        """The project the request's signature (or token) is good for; raises AuthRejected."""
        scope = request.scope
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        return self.gateway.authenticate(
            GatewayRequest(
                method=scope["method"],
                raw_path=_decode(raw_path),
                query_string=_decode(scope.get("query_string", b"")),
                headers=_headers(scope),
                body=await request.body(),
            )
        )

    async def _authorize(self, request: Request, project_id: str, request_id: str) -> Response | None:
        """None when the caller may read ``project_id``; otherwise the gateway's refusal."""
        try:
            principal = await self._authenticate(request)
        except AuthRejected as exc:
            return self._error(exc.status, exc.error_code, exc.error_msg, request_id)
        header_project = _headers(request.scope).get("x-project-id")
        if header_project is not None and header_project != project_id:
            reason = "X-Project-Id does not match the project in the URL"
            return self._error(403, "APIGW.0302", f"{FORBIDDEN_MESSAGE} {reason}", request_id)
        if project_id != principal:
            reason = "The credentials do not grant access to the project in the URL"
            return self._error(403, "APIGW.0302", f"{FORBIDDEN_MESSAGE} {reason}", request_id)
        return None

    async def _apply_fault(self, task_id: str, request_id: str) -> Response | None:
        """The fault's response, or None to answer normally (after a delay, for ``slow``)."""
        fault = self._faults.get(task_id)
        if fault is None:
            return None
        if fault.times is not None:
            if self._fault_hits[task_id] >= fault.times:
                return None
            self._fault_hits[task_id] += 1
        match fault.kind:
            case "slow":
                await asyncio.sleep(fault.seconds)
                return None
            case "throttle":
                retry_after = {"Retry-After": f"{fault.seconds:g}"}
                return self._error(429, "APIGW.0308", THROTTLE_MESSAGE, request_id, headers=retry_after)
            case "server_error":
                return self._error(500, "MSS.000000002", MSS_MESSAGES["MSS.000000002"], request_id)
            case "malformed":
                return self._respond(200, MALFORMED_BODY, request_id, media_type="text/html")
            case "mss_error":
                code = fault.code or "MSS.000000001"
                return self._error(400, code, MSS_MESSAGES[code], request_id)
            case "forbidden":
                return self._error(403, "APIGW.0302", FORBIDDEN_MESSAGE, request_id)
        raise AssertionError(f"unhandled fault kind {fault.kind!r}")

    # --- MetaStudio -----------------------------------------------------------------------------

    async def _show(self, request: Request) -> Response:
        request_id = _new_request_id()
        project_id: str = request.path_params["project_id"]
        task_id: str = request.path_params["task_id"]
        self.requests[("show", task_id)] += 1
        refusal = await self._authorize(request, project_id, request_id)
        if refusal is not None:
            return refusal
        faulty = await self._apply_fault(task_id, request_id)
        if faulty is not None:
            return faulty
        task = self._tasks.get(task_id)
        if task is None and not TASK_ID_RE.fullmatch(task_id):
            return self._error(400, "MSS.000000003", f"{MSS_MESSAGES['MSS.000000003']}: id", request_id)
        if task is None:
            message = f"{MSS_MESSAGES['MSS.000000001']}: task not found"
            return self._error(404, "MSS.000000001", message, request_id)
        return self._respond(200, _dumps(task.body_at(self.now_ms())), request_id)

    async def _list(self, request: Request) -> Response:
        request_id = _new_request_id()
        project_id: str = request.path_params["project_id"]
        self.requests[("list", "")] += 1
        refusal = await self._authorize(request, project_id, request_id)
        if refusal is not None:
            return refusal
        params: dict[str, list[str]] = {}
        for key, value in parse_qsl(_decode(request.scope.get("query_string", b"")), keep_blank_values=True):
            params.setdefault(key, []).append(value)
        try:
            offset = _int_param(params, "offset", 0, 0, 1_000_000) or 0
            limit = _int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
            begin = _int_param(params, "begin_time", None, 0, 2**63 - 1)
            end = _int_param(params, "end_time", None, 0, 2**63 - 1)
        except _BadParameter as exc:
            return self._error(400, "MSS.000000003", f"{MSS_MESSAGES['MSS.000000003']}: {exc}", request_id)
        # Repeated ``resource``, as the SDK sends it; a comma inside a value is part of the name.
        resources = {value for value in params.get("resource", []) if value}
        business_ids = {value for value in params.get("business_id", []) if value}
        matching = [
            task
            for task in self._listed_tasks()
            if (not resources or task.resource in resources)
            and (not business_ids or task.business_id in business_ids)
            and (begin is None or task.begin_time_ms >= begin)
            and (end is None or task.begin_time_ms <= end)
        ]
        now_ms = self.now_ms()
        start = offset if self.honour_offset else 0
        if self.page_cap is not None:
            limit = min(limit, self.page_cap)
        page = {
            "offset": offset,
            "limit": limit,
            "count": len(matching),
            "data": [task.body_at(now_ms) for task in matching[start : start + limit]],
        }
        return self._respond(200, _dumps(page), request_id)

    # --- IAM ------------------------------------------------------------------------------------

    async def _list_projects(self, request: Request) -> Response:
        """``GET /v3/projects?name=<region>``, AK/SK-signed: how the SDK finds a missing project id."""
        request_id = _new_request_id()
        self.requests[("projects", "")] += 1
        try:
            principal = await self._authenticate(request)
        except AuthRejected as exc:
            return self._error(exc.status, exc.error_code, exc.error_msg, request_id)
        name = request.query_params.get("name")
        projects = [
            {"id": principal, "name": self.region, "domain_id": demo.DEMO_IAM_DOMAIN_ID, "enabled": True}
        ]
        matching = [p for p in projects if name is None or p["name"] == name]
        body = {"projects": matching, "links": {"self": str(request.url)}}
        return self._respond(200, _dumps(body), request_id)

    async def _issue_token(self, request: Request) -> Response:
        request_id = _new_request_id()
        self.requests[("token", "")] += 1
        try:
            payload = json.loads(await request.body())
            identity = payload["auth"]["identity"]
            methods = identity["methods"]
            user = identity["password"]["user"]
            name, password, domain = user["name"], user["password"], user["domain"]["name"]
            scoped_project = payload["auth"]["scope"]["project"]["id"]
        except (ValueError, KeyError, TypeError):
            return self._iam_error(400, "The request body is invalid.", "Bad Request", request_id)
        well_typed = all(isinstance(f, str) for f in (name, password, domain, scoped_project))
        if not (well_typed and isinstance(methods, list) and "password" in methods):
            return self._iam_error(400, "The request body is invalid.", "Bad Request", request_id)
        expected = self._iam_users.get((domain, name))
        if expected is None or not _same(expected, password):
            return self._iam_error(401, "The username or password is wrong.", "Unauthorized", request_id)
        if scoped_project != self.project_id:
            message = "The project does not exist or is not accessible."
            return self._iam_error(401, message, "Unauthorized", request_id)
        token, issued = self.gateway.issue_token(scoped_project, self.token_ttl_seconds)
        domain_ref = {"id": demo.DEMO_IAM_DOMAIN_ID, "name": domain}
        body: dict[str, Any] = {
            "token": {
                "expires_at": _iso(issued.expires_at),
                "issued_at": _iso(issued.issued_at),
                "methods": ["password"],
                "project": {"id": scoped_project, "name": demo.DEMO_REGION, "domain": domain_ref},
                "user": {"id": demo.DEMO_IAM_USER_ID, "name": name, "domain": domain_ref},
                "roles": [{"id": "0", "name": "op_gated_metastudio"}],
            }
        }
        if request.query_params.get("nocatalog") != "true":
            body["token"]["catalog"] = []
        return self._respond(201, _dumps(body), request_id, headers={"X-Subject-Token": token})


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
