"""Getting a reply to the person or channel that asked: post, respond, and when not to retry.

``CANNOT_POST`` is the one set of Slack errors meaning the bot cannot post in a channel any
more; the command path falls back to the request's ``response_url`` on them, and the alert
outbox closes that channel's follow-up. Failures here are logged and counted, never raised:
a reply that cannot be delivered must not take background work down with it.
"""

from __future__ import annotations

import logging
from typing import Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import messages
from bot.metrics import SLACK_API_ERRORS
from bot.slack.clients import SlackClients
from bot.slack.origin import Answer, Origin, private

__all__ = ["CANNOT_POST", "Responder", "slack_error"]

log = logging.getLogger("taskbot.slack")

CANNOT_POST: Final = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action"})


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code of a failed call, e.g. ``not_in_channel``."""
    return str(exc.response.get("error", "unknown"))


class Responder:
    """Answers requests: public replies in the channel, private ones through ``response_url``."""

    def __init__(self, clients: SlackClients) -> None:
        self._clients = clients

    async def deliver(self, reply: Answer, origin: Origin, client: AsyncWebClient) -> None:
        """Public replies go in the channel; where the bot may not post, through response_url."""
        if not reply.public or not origin.channel_id:
            await self.respond(origin, reply)
            return
        try:
            await client.chat_postMessage(channel=origin.channel_id, text=reply.text, blocks=reply.blocks)
            return
        except SlackApiError as exc:
            error = slack_error(exc)
            SLACK_API_ERRORS.labels("chat.postMessage", error).inc()
            if error not in CANNOT_POST:
                log.warning("chat.postMessage failed: %s", error, extra={"team": origin.team_id})
                await self.respond(origin, private(messages.text("error_slack", origin.locale), ok=False))
                return
        await self.respond(origin, reply, in_channel=True)

    async def internal_error(self, origin: Origin) -> None:
        """What someone is told when the work for their request failed (``bot.aio.Background``)."""
        await self.respond(origin, private(messages.text("error_internal"), ok=False))

    async def respond(self, origin: Origin, reply: Answer, *, in_channel: bool = False) -> None:
        if not origin.response_url:
            return
        try:
            response = await AsyncWebhookClient(origin.response_url, session=self._clients.session).send(
                text=reply.text,
                blocks=reply.blocks or None,
                response_type=None
                if reply.replace_original
                else ("in_channel" if in_channel else "ephemeral"),
                replace_original=True if reply.replace_original else None,
            )
        except Exception as exc:  # network errors must not escape background work
            SLACK_API_ERRORS.labels("response_url", type(exc).__name__).inc()
            log.warning("response_url post failed: %s", type(exc).__name__, extra={"team": origin.team_id})
            return
        if response.status_code != 200:
            SLACK_API_ERRORS.labels("response_url", str(response.status_code)).inc()
            log.warning("response_url post answered %s", response.status_code, extra={"team": origin.team_id})
