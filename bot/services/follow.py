"""Following tasks from Slack: watch, unwatch, the watching list, subscribe, unsubscribe, digests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.config import Settings
from bot.db.digests import DigestRecord
from bot.followups import FollowUps
from bot.followups.digest_schedule import known_timezone
from bot.followups.digests import DigestRequest
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError
from bot.metrics import SLACK_API_ERRORS
from bot.services.languages import Languages
from bot.services.parsing import DigestOff, DigestSet, DigestShow
from bot.services.tasks import TaskViews
from bot.slack import alerts, blocks, digests
from bot.slack.delivery import slack_error
from bot.slack.origin import Answer, Origin, private

__all__ = ["FollowCommands"]


@dataclass(eq=False, repr=False)
class FollowCommands:
    """Watch, unwatch, subscribe and list what a channel follows, as replies."""

    settings: Settings
    followups: FollowUps
    tasks: TaskViews
    _: KW_ONLY
    metastudio_for: Callable[[str | None], Awaitable[MetaStudioClient]]
    languages: Languages

    async def watch_reply(self, task_id: str, origin: Origin, *, message_ts: str | None = None) -> Answer:
        try:
            task, _ = await self.tasks.fetch(task_id, origin)
        except MetaStudioError as exc:
            return self.tasks.error_reply(exc, origin, task_id=task_id)
        name = blocks.escape(blocks.clean(task.task_name or task_id))
        if task.is_finished(self.settings.finished_codes):
            return private(messages.text("watch_already_finished", origin.locale, name=name))
        result = await self.followups.watch(
            team_id=origin.team_id or "",
            task_id=task_id,
            channel_id=origin.channel_id or "",
            user_id=origin.user_id or "",
            message_ts=message_ts,
            # Fixed now: the live card and its alert keep it, across restarts too.
            locale=await self.languages.channel(origin),
        )
        key = "watch_started" if result.created else "watch_already"
        hours = f"{self.settings.watch_max_hours:g}"
        return private(messages.text(key, origin.locale, name=name, hours=hours))

    async def unwatch_reply(self, task_id: str, origin: Origin) -> Answer:
        stopped = await self.followups.unwatch(
            team_id=origin.team_id or "", task_id=task_id, channel_id=origin.channel_id or ""
        )
        key = "unwatch_done" if stopped else "unwatch_none"
        return private(messages.text(key, origin.locale, task_id=task_id))

    async def watching_reply(self, origin: Origin) -> Answer:
        watches, feed = await self.followups.watching(
            team_id=origin.team_id or "", channel_id=origin.channel_id or ""
        )
        digest = await self.followups.channel_digest(
            team_id=origin.team_id or "", channel_id=origin.channel_id or ""
        )
        line = None
        if digest is not None:
            when = digests.schedule_text(digest, origin.locale)
            line = messages.text("watching_digest", origin.locale, when=when, timezone=digest.timezone)
        listing = alerts.watching_list(watches, feed, digest=line, locale=origin.locale)
        return private(listing.text, blocks=listing.blocks)

    async def subscribe_reply(
        self,
        resources: tuple[str, ...],
        origin: Origin,
        *,
        only_failed: bool = False,
        operator: str | None = None,
    ) -> Answer:
        try:
            await self.metastudio_for(origin.team_id)
        except MetaStudioError as exc:
            return self.tasks.error_reply(exc, origin)
        _, created = await self.followups.subscribe(
            team_id=origin.team_id or "",
            channel_id=origin.channel_id or "",
            user_id=origin.user_id or "",
            resources=resources,
            only_failed=only_failed,
            operator=operator,
            locale=await self.languages.channel(origin),
        )
        scope = (
            ", ".join(f"`{blocks.escape(blocks.clean(r))}`" for r in resources)
            if resources
            else messages.text("subscribe_scope_all", origin.locale)
        )
        key = "subscribe_started" if created else "subscribe_updated"
        reply = messages.text(key, origin.locale, scope=scope)
        filters = alerts.feed_filters(only_failed, operator, locale=origin.locale)
        return private(f"{reply} {filters}" if filters else reply)

    async def unsubscribe_reply(self, origin: Origin) -> Answer:
        stopped = await self.followups.unsubscribe(
            team_id=origin.team_id or "", channel_id=origin.channel_id or ""
        )
        return private(messages.text("unsubscribe_done" if stopped else "unsubscribe_none", origin.locale))

    async def digest_reply(
        self, command: DigestShow | DigestOff | DigestSet, origin: Origin, client: AsyncWebClient
    ) -> Answer:
        """Show, set or turn off the channel's digest."""
        team_id, channel_id = origin.team_id or "", origin.channel_id or ""
        if isinstance(command, DigestOff):
            stopped = await self.followups.digest_off(team_id=team_id, channel_id=channel_id)
            return private(messages.text("digest_off_done" if stopped else "digest_none", origin.locale))
        if isinstance(command, DigestShow):
            digest = await self.followups.channel_digest(team_id=team_id, channel_id=channel_id)
            if digest is None:
                return private(messages.text("digest_none", origin.locale))
            return private(self._digest_sentence("digest_show", digest, origin.locale))
        try:
            await self.metastudio_for(origin.team_id)
        except MetaStudioError as exc:
            return self.tasks.error_reply(exc, origin)
        digest = await self.followups.set_digest(
            DigestRequest(
                team_id=team_id,
                channel_id=channel_id,
                user_id=origin.user_id or "",
                cadence=command.cadence,
                hour=command.hour,
                minute=command.minute,
                weekday=command.weekday,
                timezone=await self._timezone(client, origin.user_id or ""),
                quiet=command.quiet,
                locale=await self.languages.channel(origin),
            )
        )
        return private(self._digest_sentence("digest_set", digest, origin.locale))

    @staticmethod
    def _digest_sentence(key: str, digest: DigestRecord, locale: str) -> str:
        quiet = messages.text("digest_quiet", locale) if digest.quiet else ""
        when = digests.schedule_text(digest, locale)
        return messages.text(key, locale, when=when, timezone=digest.timezone, quiet=quiet)

    @staticmethod
    async def _timezone(client: AsyncWebClient, user_id: str) -> str:
        """The person's IANA timezone from ``users.info`` (Slack's own setting); UTC when unknown."""
        try:
            user = (await client.users_info(user=user_id)).get("user") or {}
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("users.info", slack_error(exc)).inc()
            return "UTC"
        return known_timezone(user.get("tz") if isinstance(user, dict) else None)

    async def stop(self, origin: Origin, *, task_id: str | None) -> Answer:
        """Stop on the watching list: end that watch (or the feed); returns the list redrawn."""
        if task_id is None:
            await self.followups.unsubscribe(team_id=origin.team_id or "", channel_id=origin.channel_id or "")
        else:
            await self.followups.unwatch(
                team_id=origin.team_id or "", task_id=task_id, channel_id=origin.channel_id or ""
            )
        listing = await self.watching_reply(origin)
        listing.replace_original = True
        return listing
