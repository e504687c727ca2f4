"""Which language each reply uses: the person's (their Slack locale) or the channel's.

Invariants:
- A person's language is their Slack locale (``LocaleResolver``); if Slack cannot say, the
  workspace's channel language, then English.
- What the channel sees (cards, alerts, notices) uses the workspace's channel language; when the
  setting is "follow the person who asked" (the default), the asker's language.
- ``cached`` never does I/O, so it may run before an ack; everything else runs after one.
- The setting comes from App Home (``guardrails.channel_language``) with many workspaces, and
  from ``TASKBOT_CHANNEL_LANGUAGE`` with one.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Final

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.db.workspaces import WorkspaceStore
from bot.slack.locales import LocaleResolver
from bot.slack.origin import Origin

__all__ = ["PERSON_WAIT_SECONDS", "Languages"]

# How long a reply waits for a first users.info before using the fallback language. The look-up
# goes on and is cached, so only that one reply is in the fallback; a burst of new users (4
# look-ups at a time per workspace) never delays replies by more than this.
PERSON_WAIT_SECONDS: Final = 1.0


class Languages:
    def __init__(
        self, settings: Settings, resolver: LocaleResolver, workspaces: WorkspaceStore | None
    ) -> None:
        self._settings = settings
        self.resolver = resolver
        self._workspaces = workspaces

    def cached(self, team_id: str, user_id: str) -> str:
        """The person's language from the cache only (English for an unseen user): ack-safe."""
        return self.resolver.locale_for(team_id, user_id, fallback=self._settings.fixed_channel_language)

    def prefetch(self, client: AsyncWebClient, team_id: str, user_id: str) -> None:
        """After an ack: learn the person's locale now, so their next reply is in it."""
        if team_id and user_id:
            self.resolver.prefetch(client, team_id, user_id)

    async def channel_setting(self, team_id: str | None) -> str | None:
        """The workspace's channel language, or None for "follow the person who asked"."""
        if self._workspaces is None or not team_id:
            return self._settings.fixed_channel_language
        return (await self._workspaces.get_guardrails(team_id)).channel_language

    async def person(self, origin: Origin, client: AsyncWebClient) -> Origin:
        """``origin`` with the person's language filled in (asks ``users.info`` at most once)."""
        if not origin.team_id or not origin.user_id:
            return origin
        known = self.resolver.cached(origin.team_id, origin.user_id)
        if known:
            return replace(origin, locale=known)
        fallback = await self.channel_setting(origin.team_id)
        try:
            # resolve() shields the shared look-up: timing out here leaves it running for the cache.
            async with asyncio.timeout(PERSON_WAIT_SECONDS):
                locale = await self.resolver.resolve(
                    client, origin.team_id, origin.user_id, fallback=fallback
                )
        except TimeoutError:
            locale = self.resolver.locale_for(origin.team_id, origin.user_id, fallback=fallback)
        return replace(origin, locale=locale)

    async def channel(self, origin: Origin) -> str:
        """What the channel reads for a message started by ``origin`` (already through ``person``)."""
        return await self.channel_setting(origin.team_id) or origin.locale
