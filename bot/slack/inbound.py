"""The door for Slack's HTTP requests: cheap refusals before Bolt sees anything.

Bolt reads the whole body, decodes and parses it, and only then checks the signature; an
unsigned 6 MB form cost the event loop 0.8 s. Here the order is the cheap one (the "validate
at the edge" pattern, as in Slack's own verification guide):

1. a body over ``max_bytes`` is refused with 413 before it is read (``Content-Length``) or as
   soon as the stream passes the cap (chunked bodies);
2. the ``X-Slack-Request-Timestamp`` must be a plain, short number and the ``v0=`` signature
   must match the raw bytes (slack_sdk's ``SignatureVerifier``), else 401;
3. only signed bytes are decoded and parsed (400 when they are not UTF-8, not JSON, or not a
   JSON object), and the payload types taskbot listens to must have the shape its listeners
   read (400 otherwise).

Invariant: nothing a request carries reaches Bolt, a listener or a log line with a traceback
unless it passed all three; every refusal is a 4xx with a one-line JSON body.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["DEFAULT_MAX_BYTES", "Refused", "SlackRequestGate"]

# Slack's payloads are a few KB; a modal submission with every field filled stays far below
# this, and Slack itself caps a view at 250 KB of blocks (plus its state).
DEFAULT_MAX_BYTES = 1024 * 1024
# Seconds since the epoch: ten digits today; more than twelve is not a timestamp but a try at
# slack_sdk's float arithmetic (an int too large for a float raised OverflowError there).
_MAX_TIMESTAMP_DIGITS = 12


class Refused(Exception):
    """A request taskbot will not hand to Bolt; ``response`` says why, in one line."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.response: Response = JSONResponse({"ok": False, "error": error}, status_code=status)


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Envelope(_Loose):
    """What Bolt's own middleware reads from every payload, before any listener runs."""

    type: str | None = None
    team: dict[str, Any] | str | None = None
    user: dict[str, Any] | str | None = None
    enterprise: dict[str, Any] | str | None = None
    channel: dict[str, Any] | str | None = None
    container: dict[str, Any] | None = None
    event: dict[str, Any] | None = None
    authorizations: list[dict[str, Any]] | None = None
    actions: list[dict[str, Any]] | None = None
    view: dict[str, Any] | None = None
    message: dict[str, Any] | None = None


class _Ids(_Loose):
    id: str


class _Action(_Loose):
    action_id: str
    value: str | None = None


class _State(_Loose):
    values: dict[str, dict[str, dict[str, Any]]] = {}


class _View(_Loose):
    callback_id: str
    state: _State | None = None
    private_metadata: str | None = None


class _Answerable(_Loose):
    """Where Bolt's ``respond`` and ``views_open`` go: interactions and slash commands carry both."""

    response_url: str | None = None
    trigger_id: str | None = None


class _Interactive(_Answerable):
    type: str
    team: _Ids | None = None
    user: _Ids
    container: dict[str, Any] | None = None
    channel: dict[str, Any] | None = None


class _BlockActions(_Interactive):
    # Bolt reads ``actions[0]`` to match a listener: an empty list would end in a 500.
    actions: list[_Action] = Field(min_length=1)


class _ViewSubmission(_Interactive):
    view: _View


class _Command(_Answerable):
    command: str
    text: str
    team_id: str
    user_id: str
    channel_id: str


class _Event(_Loose):
    type: str
    user: str | None = None
    tab: str | None = None


class _EventCallback(_Loose):
    type: str
    team_id: str
    event: _Event


class _UrlVerification(_Loose):
    type: str
    challenge: str


# Bolt reads these with ``body.get(key, {}).get(...)`` or ``body[key][0]``: present means an
# object (or a list), never null. Slack itself omits them rather than sending null.
_NEVER_NULL = ("event", "view", "actions", "authorizations", "container")

_SHAPES: dict[str, type[BaseModel]] = {
    "block_actions": _BlockActions,
    "view_submission": _ViewSubmission,
    "view_closed": _ViewSubmission,
    "event_callback": _EventCallback,
    "url_verification": _UrlVerification,
}


def _shape_for(body: dict[str, Any]) -> type[BaseModel] | None:
    if "command" in body:
        return _Command
    kind = body.get("type")
    return _SHAPES.get(kind) if isinstance(kind, str) else None


class SlackRequestGate:
    """Reads, verifies and parses one Slack request, or raises ``Refused``."""

    def __init__(self, signing_secret: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._verifier = SignatureVerifier(signing_secret) if signing_secret.strip() else None
        self.max_bytes = max_bytes

    async def read(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isascii() or not declared.isdigit():
                raise Refused(400, "invalid_content_length")
            if int(declared) > self.max_bytes:
                raise Refused(413, "body_too_large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise Refused(413, "body_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def verify(self, request: Request, body: bytes) -> str:
        """The body as text, once its signature is good."""
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        if (
            self._verifier is None
            or not signature
            or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS)
        ):
            raise Refused(401, "invalid_request")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "body_not_utf8") from None
        if not self._verifier.is_valid(text, timestamp, signature):
            raise Refused(401, "invalid_request")
        return text

    def parse(self, request: Request, text: str) -> AsyncBoltRequest:
        try:
            bolt_request = AsyncBoltRequest(
                body=text,
                query=dict(request.query_params),
                headers=dict(request.headers),
            )
        # Bolt's parser meets whatever JSON the signed bytes hold: a list or a number where an
        # object belongs fails in its context building (AttributeError, TypeError).
        except (ValueError, TypeError, AttributeError, RecursionError):
            raise Refused(400, "body_not_a_slack_payload") from None
        if not isinstance(bolt_request.body, dict):
            raise Refused(400, "body_not_a_slack_payload")
        body = bolt_request.body
        if any(key in body and body[key] is None for key in _NEVER_NULL):
            raise Refused(400, "payload_shape")
        try:
            _Envelope.model_validate(body)
            if (shape := _shape_for(bolt_request.body)) is not None:
                shape.model_validate(bolt_request.body)
        except (ValidationError, RecursionError):
            raise Refused(400, "payload_shape") from None
        return bolt_request

    async def admit(self, request: Request) -> AsyncBoltRequest:
        body = await self.read(request)
        return self.parse(request, self.verify(request, body))
