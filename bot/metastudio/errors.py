"""Every way a MetaStudio call can fail, as one exception family.

Each exception carries ``user_message``: one sentence that tells a Slack user what went wrong
and what to do. ``str(exc)`` is for logs; neither ever holds a credential.
"""

from __future__ import annotations

from bot import messages
from bot.metastudio.endpoints import Refusal

# MetaStudio's own error message is quoted to the user at most this long.
MAX_QUOTED = 160


class MetaStudioError(Exception):
    """Base class. ``request_id`` is MetaStudio's ``X-Request-Id`` when the server sent one."""

    retryable: bool = False
    message_key: str = "error_unexpected"

    def __init__(
        self,
        detail: str = "",
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        server_message: str | None = None,
    ) -> None:
        self.detail = detail
        # MetaStudio's own error_msg, only when its body carried an error code and message.
        self.server_message = server_message
        self.status_code = status_code
        self.error_code = error_code
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self._log_text())

    def _log_text(self) -> str:
        parts = [type(self).__name__]
        if self.status_code is not None:
            parts.append(f"http={self.status_code}")
        if self.error_code:
            parts.append(f"code={self.error_code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        if self.detail:
            parts.append(self.detail)
        return " ".join(parts)

    @property
    def user_message(self) -> str:
        return self.message_in(messages.DEFAULT_LOCALE)

    def message_in(self, locale: str) -> str:
        """The one sentence for a Slack user, in ``locale``: what it means for them, then
        MetaStudio's code, message and request id as it said them."""
        sentence = messages.text(self.message_key, locale)
        if not self.server_message or not self.error_code:
            return sentence
        key = "error_metastudio_said_request" if self.request_id else "error_metastudio_said"
        said = messages.text(
            key,
            locale,
            code=_quote(self.error_code, 40),
            message=_quote(self.server_message, MAX_QUOTED),
            request_id=_quote(self.request_id or "", 80),
        )
        return f"{sentence} {said}"


def _quote(text: str, limit: int) -> str:
    """Server text made inert for Slack mrkdwn: printable, white space folded, escaped, capped."""
    return _inert(" ".join("".join(ch if ch.isprintable() else " " for ch in text).split()), limit)


def _inert(shown: str, limit: int) -> str:
    """Printable text, at most ``limit`` characters, with no code-span breakers and mrkdwn escaped."""
    shown = shown.replace("`", "'")
    if len(shown) > limit:
        shown = shown[: limit - 1] + "…"
    return shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") or "?"


class InvalidTaskId(MetaStudioError):
    """Rejected before any request: the text cannot be a task id."""

    message_key = "error_invalid_task_id"
    _ECHO_LIMIT = 40

    def __init__(self, detail: str = "", *, task_id: str = "") -> None:
        self.task_id = task_id
        super().__init__(detail)

    def message_in(self, locale: str) -> str:
        # The catalog sentence quotes the id back, so it must be filled in (and made harmless).
        shown = _inert("".join(ch for ch in self.task_id if ch.isprintable()), self._ECHO_LIMIT)
        return messages.text(self.message_key, locale, task_id=shown)


class RequestFailed(MetaStudioError):
    """MSS.000000001: MetaStudio says the operation failed."""

    message_key = "error_mss_failed"


class InternalError(MetaStudioError):
    """MSS.000000002: an internal error on MetaStudio's side."""

    retryable = True
    message_key = "error_mss_internal"


class InvalidParameter(MetaStudioError):
    """MSS.000000003 or another 400: MetaStudio refused the parameters."""

    message_key = "error_mss_invalid_parameter"


class AuthenticationFailed(MetaStudioError):
    """401, MSS.000000004 or an APIGW signature/token code: the credentials are not accepted."""

    message_key = "error_auth"


class PermissionDenied(MetaStudioError):
    """403: the credentials are valid but may not read tasks."""

    message_key = "error_forbidden"


class TaskNotFound(MetaStudioError):
    message_key = "error_not_found"


class Throttled(MetaStudioError):
    """429 or APIGW.0308, still throttled after our retries."""

    retryable = True
    message_key = "error_throttled"


class ServerError(MetaStudioError):
    """5xx, still failing after our retries."""

    retryable = True
    message_key = "error_server"


class ConnectionFailed(MetaStudioError):
    retryable = True
    message_key = "error_connection"


class TimedOut(MetaStudioError):
    retryable = True
    message_key = "error_timeout"


class BadResponse(MetaStudioError):
    """The body was not the JSON the API promises."""

    retryable = True
    message_key = "error_bad_response"


class ProjectNotFound(MetaStudioError):
    """AK/SK without a project id, and IAM lists no single project named after the region."""

    message_key = "error_project_not_found"

    def __init__(self, detail: str = "", *, region: str = "") -> None:
        self.region = region
        super().__init__(detail)

    def message_in(self, locale: str) -> str:
        return messages.text(self.message_key, locale, region=self.region.replace("`", "'")[:40] or "?")


class EndpointNotAllowed(MetaStudioError):
    """The connection's endpoint is not one taskbot may send signed requests to: nothing was sent."""

    def __init__(self, detail: str = "", *, refusal: Refusal = Refusal.HOST) -> None:
        self.refusal = refusal
        super().__init__(detail)

    @property
    def message_key(self) -> str:  # type: ignore[override]
        return self.refusal.value


class NotConfigured(MetaStudioError):
    """No usable credentials: nothing was sent."""

    message_key = "error_not_configured"


MSS_ERRORS: dict[str, type[MetaStudioError]] = {
    "MSS.000000001": RequestFailed,
    "MSS.000000002": InternalError,
    "MSS.000000003": InvalidParameter,
    "MSS.000000004": AuthenticationFailed,
}
