"""The async MetaStudio client: show one import/export task, list tasks.

One ``httpx.AsyncClient`` per client (kept-alive connections, created on first use and closed by
``aclose``; ``transport`` builds it) carries every call, to MetaStudio and to IAM. Each call is
validated before anything is sent, authenticated (AK/SK signature, IAM token or a given token),
retried when the failure is transient, and ends as a value or one typed ``MetaStudioError``; what
an answer means (its body, an error's code and message) is read by ``responses``.

Retry policy, per call:

* 429 or ``APIGW.0308``: wait what ``Retry-After`` asks (seconds or an HTTP date) when it asks at
  most ``max_retry_after`` seconds, else give up at once with ``Throttled(retry_after=...)``;
  without the header, back off like for a 5xx.
* 5xx, refused, reset or dropped connections, bodies cut short, answers that are not HTTP, TLS
  failures, connect timeouts (waiting for a pooled connection included): capped exponential
  backoff with full jitter, at most ``max_retries`` times.
* Read timeouts are not retried: the server got the request and is slow, and a
  Slack user waiting for a card is better served by "try again" after ``read_timeout`` than by
  up to four times that.
* 401 with an IAM token we obtained: one new token, one more try (not counted as a retry).
* Anything else (4xx, unreadable bodies) fails at once.

Wire format follows ``huaweicloudsdkmetastudio``/``huaweicloudsdkcore`` 3.1.219, whose behaviour
runs in production (where it and the written docs differ, it wins):

* ``SearchTask`` sends ``resource`` repeated (``resource=a&resource=b``): the request model
  declares ``csv``, but ``Client._parse_query_params`` forces ``multi`` for every query list.
  ``offset``/``limit`` are not in the SDK's request model; they are sent only when a caller asks.
* AK/SK without a project id: the project is looked up once per (AK, region, IAM endpoint) with
  ``GET /v3/projects?name=<region>``, as ``BasicCredentials.process_auth_params`` does.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Self, TypeVar
from urllib.parse import quote

import httpx
from prometheus_client import Counter, Histogram

from bot.aio.backoff import backoff_delay
from bot.metastudio import responses, signer, transport
from bot.metastudio.auth import (
    TOKEN_PATH,
    USER_AGENT,
    AkSkAuthenticator,
    Authenticator,
    IamPasswordAuthenticator,
    IssuedToken,
    RequestParts,
    StaticTokenAuthenticator,
    parse_issued_token,
    password_token_request,
)
from bot.metastudio.credentials import (
    CloudCredentials,
    CredentialsIncomplete,
    IamPassword,
    IamToken,
    KeyPair,
    TemporaryAkSk,
)
from bot.metastudio.endpoints import EndpointPolicy, EndpointRefused, Refusal, parse_endpoint
from bot.metastudio.errors import (
    MSS_ERRORS,
    AuthenticationFailed,
    BadResponse,
    ConnectionFailed,
    EndpointNotAllowed,
    InvalidParameter,
    InvalidTaskId,
    MetaStudioError,
    PermissionDenied,
    ServerError,
    TaskNotFound,
    Throttled,
    TimedOut,
)
from bot.metastudio.models import Task, TaskPage, is_task_id
from bot.metrics import METASTUDIO_CALLS, METASTUDIO_LATENCY

T = TypeVar("T")

logger = logging.getLogger("taskbot.metastudio")

HEADER_REQUEST_ID = "X-Request-Id"
HEADER_RETRY_AFTER = "Retry-After"
THROTTLED_CODE = "APIGW.0308"
# API gateway codes meaning "who you are was not accepted" (signature, token, app auth).
AUTH_ERROR_CODES = frozenset({"APIGW.0301", "APIGW.0303", "APIGW.0305", "APIGW.0307"})

OP_SHOW = "show_task"
OP_SEARCH = "search_task"
OP_TOKEN = "iam_token"
OP_PROJECTS = "iam_projects"
PROJECTS_PATH = "/v3/projects"
DEFAULT_CALL_DEADLINE = 15.0
DEFAULT_MAX_BODY = 1_048_576
# An endpoint that passed the address check is trusted this long before it is resolved again.
ENDPOINT_CHECK_TTL = 60.0


# The metric children per label values, looked up once: ``labels()`` locks and validates per call.
@functools.cache
def _calls(operation: str, outcome: str) -> Counter:
    return METASTUDIO_CALLS.labels(operation, outcome)


@functools.cache
def _latency(operation: str) -> Histogram:
    return METASTUDIO_LATENCY.labels(operation)


# (access key, region, IAM endpoint) -> project id; the SDK keeps the same per-process cache.
_PROJECT_CACHE: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True, slots=True)
class Fetched(Generic[T]):
    value: T
    request_id: str | None
    """The response's ``X-Request-Id``: what Huawei support asks for."""
    elapsed: float
    """Seconds for the whole call, retries and waits included."""


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One logical call as an operation asks for it: ``_call`` signs, sends and retries it."""

    operation: str
    base: httpx.URL
    path: str
    """Percent-encoded, as it is signed."""
    params: tuple[tuple[str, str], ...]
    parse: Callable[[responses.WholeResponse], T]
    task_id: str | None = None
    # Every MetaStudio and IAM read is a signed GET without a body; only the IAM token is not.
    method: str = "GET"
    body: bytes = b""
    authenticated: bool = True


@dataclass(frozen=True, slots=True)
class _CappedResponse:
    """A whole response, its body read within the cap and decoded."""

    status_code: int
    headers: httpx.Headers
    """As received: ``Content-Encoding`` names the wire body, not ``content``."""
    content: bytes


@dataclass(frozen=True, slots=True)
class _Retry:
    error: MetaStudioError
    wait: float | None = None
    """What the server asked for (Retry-After); None means our own backoff."""


@dataclass(frozen=True, slots=True)
class _Reauthenticate:
    error: MetaStudioError


class MetaStudioClient:
    """Reads import/export tasks of one project. Use as ``async with`` or call ``aclose()``."""

    def __init__(
        self,
        *,
        endpoint: str,
        credentials: CloudCredentials,
        iam_endpoint: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        max_retries: int = 3,
        region: str | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_retry_after: float = 10.0,
        token_refresh_before: float = 3600.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        call_deadline: float = DEFAULT_CALL_DEADLINE,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        endpoint_policy: EndpointPolicy | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self._endpoint = parse_endpoint(endpoint.rstrip("/"))
        # Raw (still percent-encoded) paths: they go on the wire and into the signature as they are.
        base_path = self._endpoint.raw_path.decode("ascii").rstrip("/")
        self._base_path = base_path
        self._project_id = credentials.project_id
        self._region = region
        key_pair = credentials if isinstance(credentials, KeyPair) else None
        self._access_key = key_pair.access_key if key_pair is not None else ""
        self._project_lock = asyncio.Lock()
        # A profile's iam_endpoint wins over the environment's, as BasicCredentials.iam_endpoint does.
        own_iam = key_pair.iam_endpoint if key_pair is not None else None
        self._iam_endpoint = parse_endpoint((own_iam or iam_endpoint or endpoint).rstrip("/"))
        # Per step: waiting for a pooled connection and connecting, each read and write. The whole
        # call is bounded by the deadline (``_call``), so a trickle still ends.
        self._new_http = functools.partial(
            transport.new_client, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self._deadline = call_deadline
        self._max_body = max_body_bytes
        # None: the operator's own endpoint, not checked. Set for endpoints an admin typed.
        self._policy = endpoint_policy
        self._checked: dict[str, float] = {}
        self._retries = _Retries(
            max_retries, backoff_base, backoff_cap, max_retry_after, rng or random.Random()
        )
        self._clock = clock
        self._sleep = sleep
        # Before the HTTP client exists, so bad credentials leave nothing to close.
        self._auth = self._authenticator(credentials, token_refresh_before)
        # Created on first use: a client built and never used (a form's credentials that fail
        # validation) then leaves nothing to close, and reads the proxy environment when it sends.
        self._http: httpx.AsyncClient | None = None

    def _authenticator(self, credentials: CloudCredentials, refresh_before: float) -> Authenticator:
        """The authenticator the kind of credentials calls for; each model holds what its kind needs."""
        match credentials:
            case KeyPair():
                if not credentials.project_id and not self._region:
                    raise CredentialsIncomplete(
                        ["HUAWEICLOUD_SDK_PROJECT_ID is not set and no region to look it up in"]
                    )
                token = credentials.security_token if isinstance(credentials, TemporaryAkSk) else None
                return AkSkAuthenticator(
                    access_key=credentials.access_key,
                    secret_key=credentials.secret_key.get_secret_value(),
                    project_id=credentials.project_id,
                    security_token=token.get_secret_value() if token is not None else None,
                    clock=self._clock,
                )
            case IamToken():
                return StaticTokenAuthenticator(credentials.auth_token.get_secret_value())
            case IamPassword():
                return self._password_authenticator(credentials, refresh_before)

    def _password_authenticator(self, credentials: IamPassword, refresh_before: float) -> Authenticator:
        password = credentials.iam_password.get_secret_value()
        body = password_token_request(
            username=credentials.iam_username,
            password=password,
            domain=credentials.iam_domain,
            project_id=credentials.project_id,
        )

        async def fetch() -> IssuedToken:
            fetched = await self._call(
                _Call(
                    operation=OP_TOKEN,
                    method="POST",
                    base=self._iam_endpoint,
                    path=self._iam_path(TOKEN_PATH),
                    # Like the SDK: the service catalog is large and of no use here.
                    params=(("nocatalog", "true"),),
                    body=body,
                    authenticated=False,
                    parse=self._parse_token,
                )
            )
            return fetched.value

        return IamPasswordAuthenticator(
            fetch=fetch, secrets=(password,), clock=self._clock, refresh_before=refresh_before
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = self._new_http()
        return self._http

    # -- operations -------------------------------------------------------------------------------

    async def get_task(self, task_id: str) -> Fetched[Task]:
        """``GET /v2/{project_id}/ies/task/{id}``. Raises ``InvalidTaskId`` before sending anything."""
        if not isinstance(task_id, str) or not is_task_id(task_id):
            text = task_id if isinstance(task_id, str) else repr(task_id)
            raise InvalidTaskId(f"not a task id: {text[:64]!r}", task_id=text)
        project_path = await self._project_path()
        return await self._call(
            _Call(
                operation=OP_SHOW,
                base=self._endpoint,
                path=f"{project_path}/{quote(task_id, safe='')}",
                params=(),
                # task_id is optional in the SDK's ShowTaskResponse; the request names the task anyway.
                parse=lambda response: responses.parse_task(response, task_id),
                task_id=task_id,
            )
        )

    async def list_tasks(
        self,
        *,
        resources: Sequence[str] = (),
        business_id: str | None = None,
        begin_time: int | None = None,
        end_time: int | None = None,
        offset: int | None = None,
        limit: int | None = None,
    ) -> Fetched[TaskPage]:
        """``GET /v2/{project_id}/ies/task``: one page, newest first as MetaStudio orders it.

        ``begin_time``/``end_time`` are epoch milliseconds (``SearchTaskRequest`` types them as
        strings, "开始时间戳"/"结束时间戳"; tasks carry epoch-ms times). ``offset`` and ``limit`` are
        not in the SDK's request model: None (the default) leaves them out, as the SDK does.
        """
        if (offset is not None and offset < 0) or (limit is not None and limit < 1):
            raise ValueError("offset must be >= 0 and limit >= 1")
        params: list[tuple[str, str]] = []
        # Repeated, as the SDK sends it (Client._parse_query_params forces "multi" over "csv").
        params += [("resource", r.strip()) for r in resources if r and r.strip()]
        if business_id:
            params.append(("business_id", business_id))
        if begin_time is not None:
            params.append(("begin_time", str(int(begin_time))))
        if end_time is not None:
            params.append(("end_time", str(int(end_time))))
        if offset is not None:
            params.append(("offset", str(int(offset))))
        if limit is not None:
            params.append(("limit", str(int(limit))))
        project_path = await self._project_path()
        return await self._call(
            _Call(
                operation=OP_SEARCH,
                base=self._endpoint,
                path=project_path,
                params=tuple(params),
                parse=lambda response: responses.parse_model(TaskPage, response),
            )
        )

    async def project_id(self) -> str:
        """The project id, looked up in IAM on first use when the credentials had none."""
        if self._project_id:
            return self._project_id
        async with self._project_lock:
            if self._project_id:
                return self._project_id
            region = self._region or ""
            key = (self._access_key, region, str(self._iam_endpoint))
            found = _PROJECT_CACHE.get(key)
            if found is None:
                fetched = await self._call(
                    _Call(
                        operation=OP_PROJECTS,
                        base=self._iam_endpoint,
                        path=self._iam_path(PROJECTS_PATH),
                        params=(("name", region),),
                        parse=lambda response: responses.parse_projects(response, region),
                    )
                )
                found = fetched.value
                _PROJECT_CACHE[key] = found
            self._project_id = found
            if isinstance(self._auth, AkSkAuthenticator):
                self._auth.project_id = found
            return found

    def _iam_path(self, path: str) -> str:
        return self._iam_endpoint.raw_path.decode("ascii").rstrip("/") + path

    async def _project_path(self) -> str:
        project = await self.project_id()
        return f"{self._base_path}/v2/{quote(project, safe='')}/ies/task"

    # -- transport --------------------------------------------------------------------------------

    async def _call(self, call: _Call[T]) -> Fetched[T]:
        """One logical call: attempts, waits, metrics per attempt, one log line at the end."""
        started = time.monotonic()
        outcome = "ok"
        detail = ""
        request_id: str | None = None
        deadline = asyncio.timeout(self._deadline)
        try:
            try:
                async with deadline:
                    await self._check_endpoint(call.base)
                    value, request_id = await self._attempts(
                        call, give_up_at=time.monotonic() + self._deadline
                    )
            except TimeoutError:
                if not deadline.expired():
                    raise
                _calls(call.operation, TimedOut.__name__).inc()
                raise TimedOut(f"no complete answer within the {self._deadline:g} s call deadline") from None
            return Fetched(value=value, request_id=request_id, elapsed=time.monotonic() - started)
        except MetaStudioError as exc:
            outcome = type(exc).__name__
            request_id = exc.request_id
            # Safe to log: built from status, codes and scrubbed server text, never from our headers.
            detail = f": {exc}"
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "unexpected"
            raise
        finally:
            elapsed_ms = round((time.monotonic() - started) * 1000, 1)
            # A cancelled call is ours (a shutdown, a dropped request), not MetaStudio failing.
            logger.log(
                logging.INFO if outcome in ("ok", "cancelled") else logging.WARNING,
                "metastudio %s %s in %.0f ms%s",
                call.operation,
                outcome,
                elapsed_ms,
                detail,
                extra={
                    "task_id": call.task_id,
                    "request_id": request_id,
                    "latency_ms": elapsed_ms,
                    "outcome": outcome,
                    "operation": call.operation,
                },
            )

    async def _attempts(self, call: _Call[T], *, give_up_at: float) -> tuple[T, str | None]:
        # The wire query is the canonical one, byte for byte, so the server verifies what we signed.
        query = signer.canonical_query(call.params)
        raw_path = call.path + ("?" + query if query else "")
        host = call.base.netloc.decode("ascii")
        url = httpx.URL(f"{call.base.scheme}://{host}{raw_path}")
        if url.raw_path != raw_path.encode("ascii"):
            # httpx drops "." and ".." segments; what it would send is not what was signed.
            raise InvalidParameter(f"the path {call.path[:80]!r} cannot go on the wire as signed")
        parts = RequestParts(
            method=call.method, host=host, path=call.path, params=call.params, body=call.body
        )
        retries = 0
        reauthenticated = False
        while True:
            if call.authenticated:
                headers = await self._auth.headers(parts)
            else:
                headers = {"Host": host, "Content-Type": "application/json"}
            headers["User-Agent"] = USER_AGENT
            headers["Accept"] = "application/json"
            headers["Accept-Encoding"] = responses.ACCEPT_ENCODING
            request = httpx.Request(call.method, url, headers=headers, content=call.body or None)
            attempt_started = time.monotonic()
            result = await self._attempt(call.operation, request, call.parse)
            _latency(call.operation).observe(time.monotonic() - attempt_started)
            if isinstance(result, tuple):
                _calls(call.operation, "ok").inc()
                return result
            if isinstance(result, _Reauthenticate):
                if call.authenticated and not reauthenticated and await self._auth.recover(headers):
                    reauthenticated = True
                    _calls(call.operation, "retry").inc()
                    continue
                result = result.error
            if isinstance(result, _Retry):
                wait = self._retries.wait(result, retries)
                if wait is not None and time.monotonic() + wait >= give_up_at:
                    # The wait alone would outlast the call's deadline: answer now instead.
                    wait = None
                if wait is not None:
                    _calls(call.operation, "retry").inc()
                    retries += 1
                    await self._sleep(wait)
                    continue
                result = result.error
            _calls(call.operation, type(result).__name__).inc()
            raise result

    async def _attempt(
        self, operation: str, request: httpx.Request, parse: Callable[[responses.WholeResponse], T]
    ) -> tuple[T, str | None] | MetaStudioError | _Retry | _Reauthenticate:
        try:
            response = await self._read(request)
        except responses.TooLarge:
            return BadResponse(f"body over {self._max_body} bytes decoded")
        except responses.BadEncoding as exc:
            return BadResponse(f"body cannot be decoded ({exc})")
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the server, so sending again is safe.
            return _Retry(TimedOut(f"connect timeout ({type(exc).__name__})"))
        except httpx.TimeoutException as exc:
            # Read or write: the server may have the request and be slow; not sent again.
            return TimedOut(f"no answer in time ({type(exc).__name__})")
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            # Refused, reset or dropped connections, TLS refused, a body cut short, an answer
            # that is not HTTP, a proxy that would not carry the call.
            return _Retry(ConnectionFailed(transport.detail(exc)))
        except httpx.HTTPError as exc:
            return ConnectionFailed(transport.detail(exc))
        request_id = response.headers.get(HEADER_REQUEST_ID) or None
        status = response.status_code
        if 200 <= status < 300:
            try:
                return parse(response), request_id
            except BadResponse as exc:
                return BadResponse(exc.detail, status_code=status, request_id=request_id)
        return self._classify_error(operation, response, request_id, self._auth.secrets())

    async def _read(self, request: httpx.Request) -> _CappedResponse:
        """Send, then read at most ``max_body_bytes`` decoded bytes: a bomb stops at the cap."""
        response = await self._client().send(request, stream=True)
        try:
            content = await responses.read_capped(response, self._max_body)
        finally:
            # After a partial read httpcore closes the connection instead of pooling it.
            await response.aclose()
        return _CappedResponse(response.status_code, response.headers, content)

    async def _check_endpoint(self, base: httpx.URL) -> None:
        if self._policy is None:
            return
        key = str(base)
        if self._checked.get(key, 0.0) > time.monotonic():
            return
        try:
            await self._policy.check(key)
        except EndpointRefused as exc:
            if exc.refusal is Refusal.UNRESOLVED:
                return  # The connection fails the same way, and says so as a connection failure.
            raise EndpointNotAllowed(str(exc), refusal=exc.refusal) from None
        self._checked[key] = time.monotonic() + ENDPOINT_CHECK_TTL

    def _classify_error(
        self,
        operation: str,
        response: responses.WholeResponse,
        request_id: str | None,
        secrets: Sequence[str],
    ) -> MetaStudioError | _Retry | _Reauthenticate:
        status = response.status_code
        parsed = responses.sdk_error(status, response.headers, responses.text(response))
        code = parsed.code
        request_id = parsed.request_id
        message = responses.scrub(parsed.message, secrets)

        # Quoted to the user only when MetaStudio's body said it (not the status or raw body standing in).
        said = message if parsed.from_body else None

        def make(kind: type[MetaStudioError], detail: str = message, **more: float | None) -> MetaStudioError:
            return kind(
                detail,
                status_code=status,
                error_code=code,
                request_id=request_id,
                server_message=said,
                **more,
            )

        if status == 429 or code == THROTTLED_CODE:
            retry_after = responses.retry_after(response.headers.get(HEADER_RETRY_AFTER), self._clock())
            return _Retry(make(Throttled, retry_after=retry_after), wait=retry_after)
        if status >= 500:
            return _Retry(make(ServerError))
        if 300 <= status < 400:
            # Redirects are never followed: the signature and the token are for this host only.
            return make(BadResponse, f"unexpected redirect (HTTP {status})")
        if operation == OP_TOKEN:
            return make(AuthenticationFailed, message or "IAM refused the token request")
        if status == 401:
            return _Reauthenticate(make(AuthenticationFailed))
        if code in AUTH_ERROR_CODES:
            return make(AuthenticationFailed)
        if status == 403:
            return make(PermissionDenied)
        if status == 404 and operation == OP_SHOW:
            return make(TaskNotFound)
        if operation == OP_SHOW and status == 400 and "not exist" in message.lower():
            # MSS.000000003 "task not exist": for the user, no such task, whatever the code's name.
            return make(TaskNotFound)
        if status == 400:
            return make(MSS_ERRORS.get(code or "", InvalidParameter))
        return make(MetaStudioError, message or f"unexpected HTTP {status}")

    def _parse_token(self, response: responses.WholeResponse) -> IssuedToken:
        try:
            return parse_issued_token(response.headers, response.content, self._clock())
        except ValueError as exc:
            raise BadResponse(f"IAM token response: {exc}") from None


@dataclass(frozen=True, slots=True)
class _Retries:
    """Whether a failed attempt is tried again, and after how long."""

    limit: int
    base: float
    """The first backoff; each retry doubles it, up to ``cap``."""
    cap: float
    max_retry_after: float
    """A server asking for a longer wait than this gets its error answered at once."""
    rng: random.Random

    def wait(self, retry: _Retry, retries_done: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up with ``retry.error``."""
        if retry.wait is not None and retry.wait > self.max_retry_after:
            return None
        if retries_done >= self.limit:
            return None
        if retry.wait is not None:
            return retry.wait
        ceiling = backoff_delay(retries=retries_done, first=self.base, ceiling=self.cap)
        return self.rng.uniform(0, ceiling)  # full jitter
