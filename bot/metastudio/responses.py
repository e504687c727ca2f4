"""What MetaStudio's and IAM's responses mean, read from their bytes and headers: the body under
a size cap, its text, strict JSON, a task or a page, the project of a region, an error body as the
official SDK reads it, and ``Retry-After``.

Everything here is a pure function of a response (``read_capped`` alone reads, from the streamed
``httpx.Response`` the client hands it); sending, retrying and classifying are the client's.
Invariants:

* A body never takes more than ``cap`` decoded bytes (plus one network chunk) in memory:
  ``read_capped`` inflates step by step, and ``ACCEPT_ENCODING`` advertises only what it decodes.
* JSON is strict (no NaN/Infinity, no number overflowing to infinity) and its nesting is bounded
  (``MAX_BODY_DEPTH``, ``MAX_ERROR_DEPTH``): a hostile body ends as ``BadResponse``, never as a
  crash (a ``RecursionError`` here or in pydantic).
* Bodies are text decoded as the official SDK decodes them (``requests``' ``Response.text``: the
  declared charset, see :func:`text`); error bodies are read as ``huaweicloudsdkcore``'s
  ``DefaultExceptionHandler`` reads them (see :func:`sdk_error`); server text meant for a log
  passes :func:`scrub` first.
* A task body names the task that was asked for (:func:`parse_task`), or it is unreadable.
"""

from __future__ import annotations

import email.utils
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bot.metastudio.errors import MAX_DETAIL, BadResponse, ProjectNotFound
from bot.metastudio.models import Task

M = TypeVar("M", bound=BaseModel)

# Nested error objects deeper than this are not searched (the SDK recurses without a bound).
MAX_ERROR_DEPTH = 16
# A page is {data: [task]}: three levels; extra fields get some room, never hundreds.
MAX_BODY_DEPTH = 32
# We decode these ourselves (bounded, see read_capped) and advertise nothing else.
ACCEPT_ENCODING = "gzip, deflate"


class WholeResponse(Protocol):
    """An HTTP response with its body read whole: what the parse and error paths read of one
    (an ``httpx.Response`` whose body has been read is one too)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...


class TooLarge(Exception):
    """The decoded body would go over the cap."""


class BadEncoding(Exception):
    """A ``Content-Encoding`` we did not advertise, or a body that does not inflate."""


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The decoded body of a streamed response, never holding more than ``cap`` + one chunk of
    wire bytes.

    httpx's own decoder (``aiter_bytes``) inflates a whole network chunk at once (64 KiB of gzip
    is up to ~64 MB of zeros), so the raw bytes (``aiter_raw``) are inflated here with ``zlib``'s
    ``max_length``: output per step is bounded by what is left under the cap (the pattern of
    ``urllib3``'s ``max_length`` decoding).
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in {"", "identity"}:
        inflater = None
    elif encoding in {"gzip", "x-gzip", "deflate"}:
        # 32 + MAX_WBITS: zlib detects a gzip or a zlib header itself.
        inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)
    else:
        raise BadEncoding(encoding[:40])
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        pending = chunk
        while pending:
            if inflater is None:
                data, pending = pending, b""
            else:
                try:
                    data = inflater.decompress(pending, cap - size + 1)
                except zlib.error:
                    raise BadEncoding(f"{encoding} body does not inflate") from None
                pending = inflater.unconsumed_tail
            size += len(data)
            if size > cap:
                raise TooLarge
            parts.append(data)
            if inflater is not None and inflater.eof:
                pending = b""
    return b"".join(parts)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def loads(content: bytes | str) -> object:
    """Strict JSON: no NaN/Infinity tokens, no number that overflows to infinity.

    Raises ``ValueError`` for anything else that is not JSON, nesting too deep included.
    """
    try:
        return json.loads(content, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _depth_over(document: object, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (iterative: no recursion to blow)."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_model(model: type[M], response: WholeResponse, defaults: dict[str, str] | None = None) -> M:
    try:
        document = loads(text(response))
    except ValueError:
        content_type = response.headers.get("Content-Type", "no content type")
        raise BadResponse(f"body is not JSON ({content_type[:60]})") from None
    if not isinstance(document, dict):
        raise BadResponse(f"body is a JSON {type(document).__name__}, not an object")
    if _depth_over(document, MAX_BODY_DEPTH):
        # A task is flat; deep nesting only ever makes later code (pydantic, json.dumps) recurse.
        raise BadResponse(f"body nested deeper than {MAX_BODY_DEPTH} levels")
    for key, value in (defaults or {}).items():
        if document.get(key) is None:
            document[key] = value
    try:
        return model.model_validate(document)
    except RecursionError:
        raise BadResponse(f"body does not match {model.__name__}: nested too deep") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise BadResponse(
            f"body does not match {model.__name__}: {exc.error_count()} problem(s), first at {where}: "
            f"{first['msg']}"
        ) from None


def parse_task(response: WholeResponse, task_id: str) -> Task:
    """The task asked for. A body without ``task_id`` is that task (the SDK's ``ShowTaskResponse``
    makes it optional); a body naming another task is not an answer to this request."""
    task = parse_model(Task, response, defaults={"task_id": task_id})
    if task.task_id.lower() != task_id.lower():
        raise BadResponse(f"body names task {task.task_id[:40]!r}, not the one asked for")
    return task


@dataclass(frozen=True, slots=True)
class SdkError:
    """What ``huaweicloudsdkcore``'s ``ServiceResponseException`` carries for an error response."""

    code: str
    message: str
    request_id: str | None
    encoded_authorization_message: str | None = None
    from_body: bool = False
    """Whether the code and message came from the body (not the status and raw text standing in)."""


def sdk_error(status: int, headers: Mapping[str, str], text: str) -> SdkError:
    """An error response read exactly as ``DefaultExceptionHandler.handle_exception`` reads it.

    ``request_id`` comes from the ``X-Request-Id`` header only (a body's ``request_id`` is not
    read by the SDK). In the body: ``encoded_authorization_message``, then the first complete pair
    of ``error_code``/``error_msg``, ``errorCode``/``errorMsg``, ``code``/``message``; failing those,
    every nested object is searched the same way (a later one overwrites an earlier one, as the
    SDK's loop does). No code: the HTTP status stands in; no message: the raw body text.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    request_id = lowered.get("x-request-id") or None
    found: dict[str, object] = {}
    try:
        document = loads(text)
    except ValueError:
        document = None
    if isinstance(document, dict):
        _sdk_error_fields(document, found, 0)
    code = found.get("code")
    message = found.get("message")
    encoded = found.get("encoded")
    return SdkError(
        code=_as_text(code) if code else str(status),
        message=_as_text(message) if message else text,
        request_id=request_id,
        encoded_authorization_message=_as_text(encoded) if encoded is not None else None,
        from_body=bool(code) and bool(message),
    )


def _sdk_error_fields(document: dict[str, object], found: dict[str, object], depth: int) -> None:
    if "encoded_authorization_message" in document:
        found["encoded"] = document["encoded_authorization_message"]
    for code_key, message_key in (
        ("error_code", "error_msg"),
        ("errorCode", "errorMsg"),
        ("code", "message"),
    ):
        if code_key in document and message_key in document:
            found["code"] = document[code_key]
            found["message"] = document[message_key]
            return
    if depth >= MAX_ERROR_DEPTH:
        return
    for value in document.values():
        if isinstance(value, dict):
            _sdk_error_fields(value, found, depth + 1)


def _as_text(value: object) -> str:
    # The SDK keeps whatever JSON type it found (IAM sends ``"code": 401``); we keep its str().
    return value if isinstance(value, str) else str(value)


def text(response: WholeResponse) -> str:
    """The body as text, as the SDK decodes it (``requests``' ``Response.text``): in the charset
    the Content-Type declares, undecodable bytes replaced, a charset Python does not know read as
    UTF-8. Without a declared charset, UTF-8: JSON's own encoding, and what requests assumes for
    ``application/json`` (for other types it guesses from the bytes; taskbot does not guess)."""
    content = response.content
    charset = _charset(response.headers.get("Content-Type", "")) or "utf-8"
    try:
        return content.decode(charset, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _charset(content_type: str) -> str | None:
    """The ``charset`` parameter, parsed as ``requests.utils._parse_content_type_header`` does
    (the last one wins)."""
    found = None
    for param in content_type.split(";")[1:]:
        key, equals, value = param.strip().partition("=")
        if equals and key.strip("\"' ").lower() == "charset":
            found = value.strip("\"' ")
    return found or None


def parse_projects(response: WholeResponse, region: str) -> str:
    """The one project of ``GET /v3/projects?name=<region>``; zero or several is an error (SDK rule)."""
    try:
        document = loads(text(response))
    except ValueError:
        raise BadResponse("IAM projects response is not JSON") from None
    projects = document.get("projects") if isinstance(document, dict) else None
    if not isinstance(projects, list):
        raise BadResponse("IAM projects response has no projects list")
    ids = [
        p.get("id") for p in projects if isinstance(p, dict) and isinstance(p.get("id"), str) and p.get("id")
    ]
    if len(ids) != 1:
        raise ProjectNotFound(f"{len(ids)} projects named {region!r}", region=region)
    return str(ids[0])


def retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date. None if absent or bad."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp() - now
    if seconds != seconds or seconds == float("inf"):
        return None
    return max(0.0, seconds)


def scrub(text: str, secrets: Sequence[str]) -> str:
    """Server text for a log line: truncated, and without any of our secrets should it echo one."""
    text = text.strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text[:MAX_DETAIL]
