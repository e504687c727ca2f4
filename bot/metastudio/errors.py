"""Every way a MetaStudio call can fail, as one exception family.

The class says what happened; ``retryable`` says whether trying again may help. The fields are
what is known about it: ``detail`` (our own words for the log), ``status_code`` (the HTTP status),
``error_code`` and ``server_message`` (MetaStudio's ``error_code``/``error_msg``, only when its
body carried both), ``request_id`` (MetaStudio's ``X-Request-Id``), ``retry_after`` (seconds,
from ``Retry-After``), and per class ``task_id``, ``region`` or ``refusal``.

``str(exc)`` is for logs and never holds a credential. No text for people lives here: what a
Slack user is told is ``bot.slack.cloud_errors``'s job.
"""

from __future__ import annotations

from bot.metastudio.endpoints import Refusal

# Outside text a detail quotes (a server's message, httpx's) is cut to this many characters.
MAX_DETAIL = 200


class MetaStudioError(Exception):
    """Base class. ``request_id`` is MetaStudio's ``X-Request-Id`` when the server sent one."""

    retryable: bool = False

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


class InvalidTaskId(MetaStudioError):
    """Rejected before any request: the text cannot be a task id."""

    def __init__(self, detail: str = "", *, task_id: str = "") -> None:
        # As typed (repr of a non-string), unchecked: whoever shows it to a person makes it harmless.
        self.task_id = task_id
        super().__init__(detail)


class RequestFailed(MetaStudioError):
    """MSS.000000001: MetaStudio says the operation failed."""


class InternalError(MetaStudioError):
    """MSS.000000002: an internal error on MetaStudio's side."""

    retryable = True


class InvalidParameter(MetaStudioError):
    """MSS.000000003 or another 400: MetaStudio refused the parameters."""


class AuthenticationFailed(MetaStudioError):
    """401, MSS.000000004 or an APIGW signature/token code: the credentials are not accepted."""


class PermissionDenied(MetaStudioError):
    """403: the credentials are valid but may not read tasks."""


class TaskNotFound(MetaStudioError):
    """404 on a task read, or a 400 whose message says the task does not exist ("task not exist")."""


class Throttled(MetaStudioError):
    """429 or APIGW.0308, still throttled after our retries."""

    retryable = True


class ServerError(MetaStudioError):
    """5xx, still failing after our retries."""

    retryable = True


class ConnectionFailed(MetaStudioError):
    """Refused, reset or dropped connections, a body cut short, an answer that is not HTTP."""

    retryable = True


class TimedOut(MetaStudioError):
    """A connect or read timeout, or no complete answer within the call deadline."""

    retryable = True


class BadResponse(MetaStudioError):
    """The body was not the JSON the API promises."""

    retryable = True


class ProjectNotFound(MetaStudioError):
    """AK/SK without a project id, and IAM lists no single project named after the region."""

    def __init__(self, detail: str = "", *, region: str = "") -> None:
        self.region = region
        super().__init__(detail)


class EndpointNotAllowed(MetaStudioError):
    """The connection's endpoint is not one taskbot may send signed requests to: nothing was sent."""

    def __init__(self, detail: str = "", *, refusal: Refusal = Refusal.HOST) -> None:
        self.refusal = refusal
        super().__init__(detail)


class NotConfigured(MetaStudioError):
    """No usable credentials: nothing was sent."""


MSS_ERRORS: dict[str, type[MetaStudioError]] = {
    "MSS.000000001": RequestFailed,
    "MSS.000000002": InternalError,
    "MSS.000000003": InvalidParameter,
    "MSS.000000004": AuthenticationFailed,
}
