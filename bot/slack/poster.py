"""The narrow interface the alert outbox and live cards use to reach Slack, and its Slack side.

``Poster`` is what ``bot.followups`` needs: post a keyed message (one ``Post`` value), find a
keyed message an earlier attempt may have posted, update a card, tell a person something, and
complete or fail a Workflow Builder step (``functions.completeSuccess``/``completeError``).
``find`` takes its own thread rather than a ``Post``: it searches the card's thread whatever
thread the new post would go to, so an attempt made under another alert mode is found too.
Each failure is a typed exception that says what the caller may do next, so the exactly-once
protocol never inspects a Slack error code itself. ``SlackPoster`` implements it with ``chat.postMessage``
message metadata and ``conversations.replies``/``conversations.history`` look-ups.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.alerts import Message
from bot.slack.delivery import CANNOT_POST, slack_error
from bot.slack.ids import DELIVERY_EVENT

__all__ = [
    "CannotPost",
    "CardGone",
    "LookupFailed",
    "LookupImpossible",
    "Post",
    "PostFailed",
    "Poster",
    "SlackPoster",
    "StepGone",
    "UpdateFailed",
]

LOOKUP_PAGE_SIZE: Final = 200
LOOKUP_MAX_PAGES: Final = 10
# The metadata look-up cannot work at all with these: post rather than hold the alert forever.
LOOKUP_IMPOSSIBLE: Final = frozenset({"missing_scope", "not_allowed_token_type", "no_permission"})
# chat.update answers these for a card that can never be updated again.
CARD_GONE: Final = frozenset(
    {"message_not_found", "cant_update_message", "edit_window_closed", "msg_too_long", *CANNOT_POST}
)


class PosterError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class CannotPost(PosterError):
    """The bot cannot post in that channel any more; retrying cannot help."""


class PostFailed(PosterError):
    """The post failed and may or may not have landed; look before posting again."""


class LookupFailed(PosterError):
    """The look-up failed for now; posting blind could duplicate, so wait and retry."""


class LookupImpossible(PosterError):
    """The look-up can never work with this token (e.g. a missing scope)."""


class CardGone(PosterError):
    """The card can never be updated again."""


class UpdateFailed(PosterError):
    """This update failed; a later one may succeed."""


class StepGone(PosterError):
    """The step can no longer be completed: done already, its workflow ended, or unknown.

    ``done`` is Slack's ``function_execution_not_found``, which its reference gives for "the
    function has been completed and cannot be found": after an attempt that may have landed,
    that is most likely our own completion.
    """

    @property
    def done(self) -> bool:
        return self.error == "function_execution_not_found"


# functions.completeSuccess/completeError: the step is past completing (Slack's reference), or
# the call can never succeed as made (outputs that do not match the manifest): never retried.
STEP_GONE: Final = frozenset(
    {"function_execution_not_found", "execution_not_in_running_state", "parameter_validation_failed"}
)


@dataclass(frozen=True, slots=True)
class Post:
    """One keyed message for a channel, or for a card's thread (``thread_ts``).

    ``key`` goes into the message metadata, so a later attempt can find what an earlier one
    posted; ``broadcast`` also shows a thread reply in the channel.
    """

    team_id: str
    channel_id: str
    message: Message
    key: str
    thread_ts: str | None = None
    broadcast: bool = False


class Poster(Protocol):
    async def post(self, post: Post) -> str | None:
        """Post ``post.message`` tagged with ``post.key``; returns its ``ts``."""
        ...

    async def find(
        self, team_id: str, channel_id: str, key: str, *, thread_ts: str | None, oldest: float
    ) -> str | None:
        """The ``ts`` of a message tagged ``key`` posted after ``oldest`` (epoch seconds), or None."""
        ...

    async def update(self, team_id: str, channel_id: str, ts: str, message: Message) -> None: ...

    async def tell(self, team_id: str, user_id: str, text: str) -> None:
        """Send a person a direct message."""
        ...

    async def complete_step(self, team_id: str, execution_id: str, outputs: dict[str, Any]) -> None:
        """``functions.completeSuccess`` with the workspace's own bot token (the event's token
        expires 15 minutes after the event or at completion, and a wait lasts hours)."""
        ...

    async def fail_step(self, team_id: str, execution_id: str, error: str) -> None:
        """``functions.completeError``: the workflow stops and Slackbot shows ``error``."""
        ...


class SlackPoster:
    """``Poster`` over the Web API; ``client_for`` gives each workspace's delivery client."""

    def __init__(self, client_for: Callable[[str], Awaitable[AsyncWebClient]]) -> None:
        self._client_for = client_for

    async def post(self, post: Post) -> str | None:
        client = await self._client_for(post.team_id)
        try:
            response = await client.chat_postMessage(
                channel=post.channel_id,
                text=post.message.text,
                blocks=post.message.blocks,
                thread_ts=post.thread_ts,
                reply_broadcast=post.broadcast or None,
                metadata={"event_type": DELIVERY_EVENT, "event_payload": {"key": post.key}},
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            error = slack_error(exc)
            raise (CannotPost if error in CANNOT_POST else PostFailed)(error) from None
        except Exception as exc:
            raise PostFailed(type(exc).__name__) from exc
        return str(response.get("ts") or "") or None

    async def find(
        self, team_id: str, channel_id: str, key: str, *, thread_ts: str | None, oldest: float
    ) -> str | None:
        client = await self._client_for(team_id)
        since = f"{oldest:.6f}"
        try:
            if thread_ts:
                try:
                    found = await _search(
                        client.conversations_replies, key, channel=channel_id, ts=thread_ts, oldest=since
                    )
                except SlackApiError as exc:
                    if slack_error(exc) != "thread_not_found":
                        raise
                    found = None
                if found is not None:
                    return found
            return await _search(client.conversations_history, key, channel=channel_id, oldest=since)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in CANNOT_POST:
                raise CannotPost(error) from None
            raise (LookupImpossible if error in LOOKUP_IMPOSSIBLE else LookupFailed)(error) from None

    async def update(self, team_id: str, channel_id: str, ts: str, message: Message) -> None:
        client = await self._client_for(team_id)
        try:
            await client.chat_update(channel=channel_id, ts=ts, text=message.text, blocks=message.blocks)
        except SlackApiError as exc:
            error = slack_error(exc)
            raise (CardGone if error in CARD_GONE else UpdateFailed)(error) from None

    async def tell(self, team_id: str, user_id: str, text: str) -> None:
        client = await self._client_for(team_id)
        try:
            await client.chat_postMessage(channel=user_id, text=text)
        except SlackApiError as exc:
            raise PostFailed(slack_error(exc)) from None

    async def complete_step(self, team_id: str, execution_id: str, outputs: dict[str, Any]) -> None:
        client = await self._client_for(team_id)
        await _step_call(
            client.functions_completeSuccess(function_execution_id=execution_id, outputs=outputs)
        )

    async def fail_step(self, team_id: str, execution_id: str, error: str) -> None:
        client = await self._client_for(team_id)
        await _step_call(client.functions_completeError(function_execution_id=execution_id, error=error))


async def _step_call(call: Awaitable[Any]) -> None:
    try:
        await call
    except SlackApiError as exc:
        error = slack_error(exc)
        if error in STEP_GONE:
            raise StepGone(error) from None
        raise PostFailed(error) from None
    except Exception as exc:
        raise PostFailed(type(exc).__name__) from exc


async def _search(method: Callable[..., Awaitable[Any]], key: str, **params: Any) -> str | None:
    cursor: str | None = None
    for _ in range(LOOKUP_MAX_PAGES):
        response = await method(include_all_metadata=True, limit=LOOKUP_PAGE_SIZE, cursor=cursor, **params)
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == DELIVERY_EVENT and payload.get("key") == key:
                return str(message.get("ts"))
        cursor = ((response.get("response_metadata") or {}).get("next_cursor")) or None
        if not cursor:
            return None
    return None
