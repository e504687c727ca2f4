"""Following tasks from Slack: watch, unwatch, the watching list, subscribe and unsubscribe."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass

from bot import messages
from bot.config import Settings
from bot.followups import FollowUps
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError
from bot.services.languages import Languages
from bot.services.tasks import TaskViews
from bot.slack import alerts, blocks
from bot.slack.origin import Origin, Reply, private

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

    async def watch_reply(self, task_id: str, origin: Origin, *, message_ts: str | None = None) -> Reply:
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

    async def unwatch_reply(self, task_id: str, origin: Origin) -> Reply:
        stopped = await self.followups.unwatch(
            team_id=origin.team_id or "", task_id=task_id, channel_id=origin.channel_id or ""
        )
        key = "unwatch_done" if stopped else "unwatch_none"
        return private(messages.text(key, origin.locale, task_id=task_id))

    async def watching_reply(self, origin: Origin) -> Reply:
        watches, feed = await self.followups.watching(
            team_id=origin.team_id or "", channel_id=origin.channel_id or ""
        )
        listing = alerts.watching_list(watches, feed, locale=origin.locale)
        return private(listing.text, blocks=listing.blocks)

    async def subscribe_reply(
        self,
        resources: tuple[str, ...],
        origin: Origin,
        *,
        only_failed: bool = False,
        operator: str | None = None,
    ) -> Reply:
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

    async def unsubscribe_reply(self, origin: Origin) -> Reply:
        stopped = await self.followups.unsubscribe(
            team_id=origin.team_id or "", channel_id=origin.channel_id or ""
        )
        return private(messages.text("unsubscribe_done" if stopped else "unsubscribe_none", origin.locale))

    async def stop(self, origin: Origin, *, task_id: str | None) -> Reply:
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
