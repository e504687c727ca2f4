"""Running a parsed ``/task`` command or card button: guardrails, the answer, its delivery."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.aio.background import AckFirst
from bot.metrics import COMMANDS, SLACK_API_ERRORS
from bot.services.access import Access
from bot.services.follow import FollowCommands
from bot.services.languages import Languages
from bot.services.parsing import (
    Command,
    DigestOff,
    DigestSet,
    DigestShow,
    Help,
    Invalid,
    Recent,
    ShowTask,
    Subscribe,
    Unsubscribe,
    Unwatch,
    Watch,
    Watching,
)
from bot.services.tasks import TaskViews
from bot.slack.delivery import Responder, slack_error
from bot.slack.origin import Answer, Origin, private

__all__ = ["CommandRunner", "immediate_reply"]

log = logging.getLogger("taskbot.services")

# Commands that change something: people of other organisations may not run them (``Access``).
CHANGES = (Watch, Unwatch, Subscribe, Unsubscribe, DigestSet, DigestOff)


def immediate_reply(command: Command, *, locale: str = messages.DEFAULT_LOCALE) -> Answer | None:
    """A reply that needs no cloud call (help, parse errors): it can go in the ack itself.

    ``locale`` must come from the cache (``Languages.cached``): nothing may ask Slack before the
    ack, so the very first help of a user never seen before is in the fallback language.
    """
    if isinstance(command, Help):
        COMMANDS.labels("help", "ok").inc()
        return private(messages.text("usage", locale))
    if isinstance(command, Invalid):
        COMMANDS.labels("invalid", "rejected").inc()
        return private(f"{command.message}\n{messages.text('usage', locale)}", ok=False)
    return None


@dataclass(eq=False, repr=False, kw_only=True)
class CommandRunner:
    """Runs a parsed slash command or a card button for one person: checks, then the reply."""

    tasks: TaskViews
    follow: FollowCommands
    access: Access
    responder: Responder
    ack_first: AckFirst
    languages: Languages

    async def _reply_for(self, command: Command, origin: Origin, client: AsyncWebClient) -> Answer:
        if isinstance(command, ShowTask):
            return await self.tasks.task_reply(command.task_id, origin)
        if isinstance(command, Recent):
            return await self.tasks.recent_reply(command.resources, origin, page=command.page)
        if isinstance(command, Watch):
            return await self.follow.watch_reply(command.task_id, origin)
        if isinstance(command, Unwatch):
            return await self.follow.unwatch_reply(command.task_id, origin)
        if isinstance(command, Watching):
            return await self.follow.watching_reply(origin)
        if isinstance(command, Subscribe):
            return await self.follow.subscribe_reply(
                command.resources, origin, only_failed=command.only_failed, operator=command.operator
            )
        if isinstance(command, Unsubscribe):
            return await self.follow.unsubscribe_reply(origin)
        if isinstance(command, DigestShow | DigestOff | DigestSet):
            return await self.follow.digest_reply(command, origin, client)
        return immediate_reply(command, locale=origin.locale) or private(
            messages.text("usage", origin.locale)
        )

    async def run(self, command: Command, origin: Origin, client: AsyncWebClient) -> Answer:
        """Answer a command that needs the cloud or the database, then deliver the reply."""
        await self.ack_first.wait()
        started = time.perf_counter()
        origin = await self.languages.person(origin, client)
        name = type(command).__name__.lower()
        reply: Answer
        try:
            refusal = await self.access.refusal(origin, client, changes=isinstance(command, CHANGES))
            reply = private(refusal, ok=False) if refusal else await self._reply_for(command, origin, client)
            if reply.needs_connection and await self.access.is_admin(client, origin):
                reply = private(messages.text("not_connected_admin", origin.locale), ok=False)
            await self.responder.deliver(reply, origin, client)
        except Exception:
            # The last line of defence: the user gets a sentence, the log gets the details.
            log.exception("command failed", extra={"team": origin.team_id, "command": name})
            reply = private(messages.text("error_internal", origin.locale), ok=False)
            await self.responder.respond(origin, reply)
        outcome = "ok" if reply.ok else "error"
        COMMANDS.labels(name, outcome).inc()
        log.info(
            "command handled",
            extra={
                "team": origin.team_id,
                "command": name,
                "task_id": reply.task_id,
                "request_id": reply.request_id,
                "latency_ms": round((time.perf_counter() - started) * 1000, 1),
                "outcome": outcome,
            },
        )
        return reply

    async def _button(
        self,
        origin: Origin,
        client: AsyncWebClient,
        answer: Callable[[Origin], Awaitable[Answer]],
        *,
        changes: bool = False,
    ) -> tuple[Origin, Answer]:
        """A card button's reply, after the acks and in the person's language: ``answer``'s, or a refusal.

        A card stays in the channel after an admin limits /task; its buttons must obey the limit too.
        """
        await self.ack_first.wait()
        origin = await self.languages.person(origin, client)
        refusal = await self.access.refusal(origin, client, changes=changes)
        return origin, private(refusal, ok=False) if refusal else await answer(origin)

    async def refresh(
        self, task_id: str, origin: Origin, client: AsyncWebClient, *, message_ts: str | None
    ) -> Answer:
        """Redraw a card in place: chat.update for the bot's own message, else replace via response_url."""
        origin, reply = await self._button(origin, client, lambda o: self.tasks.task_reply(task_id, o))
        if not reply.ok:
            await self.responder.respond(origin, reply)
            return reply
        if message_ts and origin.channel_id:
            try:
                await client.chat_update(
                    channel=origin.channel_id, ts=message_ts, text=reply.text, blocks=reply.blocks
                )
                return reply
            except SlackApiError as exc:
                SLACK_API_ERRORS.labels("chat.update", slack_error(exc)).inc()
        reply.replace_original = True
        await self.responder.respond(origin, reply)
        return reply

    async def watch_button(
        self, task_id: str, origin: Origin, client: AsyncWebClient, *, message_ts: str | None
    ) -> None:
        """ "Notify this channel when done" on a card: the alert threads under that card."""
        origin, reply = await self._button(
            origin, client, lambda o: self.follow.watch_reply(task_id, o, message_ts=message_ts), changes=True
        )
        await self.responder.respond(origin, reply)

    async def stop_button(self, origin: Origin, client: AsyncWebClient, *, task_id: str | None) -> None:
        """Stop on the watching list: end that watch (or the feed) and redraw the list."""
        origin, reply = await self._button(
            origin, client, lambda o: self.follow.stop(o, task_id=task_id), changes=True
        )
        await self.responder.respond(origin, reply)
