"""What a Slack user is told when a MetaStudio call fails or an endpoint is refused.

One sentence per error class, in the reader's language, then MetaStudio's own code, message and
request id as it said them (when its body carried a code and a message). Invariants:

- ``ERROR_KEYS`` is looked up along the class's MRO, so a subclass says what its parent says
  until it has an entry of its own; ``EndpointNotAllowed`` says what its ``refusal`` says
  (``REFUSAL_KEYS``), the same sentence the connection modal shows.
- Text from outside (MetaStudio's words, the task id someone typed) is made inert for mrkdwn
  before it is shown, by the same rule as every card value (``blocks.quoted``): one printable
  line, ``&<>`` escaped so nothing pings or links, no backtick to break a code span, capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bot import messages
from bot.metastudio import errors
from bot.metastudio.endpoints import Refusal
from bot.slack.blocks import quoted

__all__ = ["ERROR_KEYS", "MAX_QUOTED", "REFUSAL_KEYS", "error_key", "error_text", "refusal_text"]

# MetaStudio's own error message is quoted to the user at most this long.
MAX_QUOTED: Final = 160
_ECHO_LIMIT: Final = 40  # the task id an InvalidTaskId quotes back
_CODE_LIMIT: Final = 40
_REQUEST_ID_LIMIT: Final = 80
_REGION_LIMIT: Final = 40

ERROR_KEYS: Final[Mapping[type[errors.MetaStudioError], str]] = {
    errors.MetaStudioError: "error_unexpected",
    errors.InvalidTaskId: "error_invalid_task_id",
    errors.RequestFailed: "error_mss_failed",
    errors.InternalError: "error_mss_internal",
    errors.InvalidParameter: "error_mss_invalid_parameter",
    errors.AuthenticationFailed: "error_auth",
    errors.PermissionDenied: "error_forbidden",
    errors.TaskNotFound: "error_not_found",
    errors.Throttled: "error_throttled",
    errors.ServerError: "error_server",
    errors.ConnectionFailed: "error_connection",
    errors.TimedOut: "error_timeout",
    errors.BadResponse: "error_bad_response",
    errors.ProjectNotFound: "error_project_not_found",
    errors.NotConfigured: "error_not_configured",
}

REFUSAL_KEYS: Final[Mapping[Refusal, str]] = {
    Refusal.NOT_HTTPS: "connection_error_endpoint_not_https",
    Refusal.HOST: "connection_error_endpoint_host",
    Refusal.ADDRESS: "connection_error_endpoint_address",
    Refusal.UNRESOLVED: "connection_error_endpoint_unresolved",
}


def error_key(exc: errors.MetaStudioError) -> str:
    """The catalog key of ``exc``'s sentence."""
    if isinstance(exc, errors.EndpointNotAllowed):
        return REFUSAL_KEYS[exc.refusal]
    # MetaStudioError itself is in the table, so every subclass finds a key.
    return next(ERROR_KEYS[cls] for cls in type(exc).__mro__ if cls in ERROR_KEYS)


def error_text(exc: errors.MetaStudioError, locale: str = messages.DEFAULT_LOCALE) -> str:
    """The one sentence for a Slack user, in ``locale``: what it means for them, then MetaStudio's
    code, message and request id as it said them."""
    key = error_key(exc)
    if isinstance(exc, errors.InvalidTaskId):
        # The catalog sentence quotes the id back, so it must be filled in (and made harmless).
        return messages.text(key, locale, task_id=quoted(exc.task_id, _ECHO_LIMIT))
    if isinstance(exc, errors.ProjectNotFound):
        return messages.text(key, locale, region=quoted(exc.region, _REGION_LIMIT))
    sentence = messages.text(key, locale)
    if not exc.server_message or not exc.error_code:
        return sentence
    said = messages.text(
        "error_metastudio_said_request" if exc.request_id else "error_metastudio_said",
        locale,
        code=quoted(exc.error_code, _CODE_LIMIT),
        message=quoted(exc.server_message, MAX_QUOTED),
        request_id=quoted(exc.request_id or "", _REQUEST_ID_LIMIT),
    )
    return f"{sentence} {said}"


def refusal_text(refusal: Refusal, locale: str = messages.DEFAULT_LOCALE) -> str:
    """Why an admin's endpoint is refused, in ``locale``."""
    return messages.text(REFUSAL_KEYS[refusal], locale)
