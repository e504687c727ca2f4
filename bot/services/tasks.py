"""Reading tasks for people: ``/task <id>`` cards, ``/task recent`` and the error sentences.

Every MetaStudio call of a command holds one of its workspace's command slots (``FairSlots``,
separate from the polls' so a command never queues behind polls): a workspace whose endpoint
hangs fills its own ``COMMAND_PER_TEAM`` slots, and other workspaces' commands go on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Final

from bot import messages
from bot.aio.fairness import FairSlots
from bot.aio.ratelimit import Priority, PriorityRateLimiter
from bot.config import Settings
from bot.db.workspaces import WorkspaceStore
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError, NotConfigured
from bot.metastudio.models import Task
from bot.services.languages import Languages
from bot.slack import blocks, cards
from bot.slack.cloud_errors import error_text
from bot.slack.origin import Answer, Origin

__all__ = ["TaskViews"]

log = logging.getLogger("taskbot.services")

# Above the MetaStudio client's 50 connections, which bound one workspace anyway; the per-team
# cap applies with several workspaces only.
COMMAND_TOTAL: Final = 128
COMMAND_PER_TEAM: Final = 16


@dataclass(eq=False, repr=False)
class TaskViews:
    """Reads tasks for a person (fair per workspace, rate-limited) and draws them as replies."""

    settings: Settings
    _: KW_ONLY
    metastudio_for: Callable[[str | None], Awaitable[MetaStudioClient]]
    limiter_for: Callable[[str], PriorityRateLimiter]
    workspaces: WorkspaceStore | None
    languages: Languages
    slots: FairSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = FairSlots(
            total=COMMAND_TOTAL,
            per_team=COMMAND_PER_TEAM if self.settings.multi_workspace else COMMAND_TOTAL,
        )

    async def fetch(self, task_id: str, origin: Origin) -> tuple[Task, str | None]:
        """Read one task for a person: commands go before polls in the project's rate limit."""
        client = await self.metastudio_for(origin.team_id)
        try:
            async with self.slots.slot(origin.team_id or ""):
                await self.limiter_for(origin.team_id or "").acquire(Priority.COMMAND)
                fetched = await client.get_task(task_id)
        except MetaStudioError as exc:
            await self._record_call(origin, exc)
            raise
        await self._record_call(origin, None)
        return fetched.value, fetched.request_id

    async def _record_call(self, origin: Origin, error: MetaStudioError | None) -> None:
        if self.workspaces is not None and origin.team_id and not isinstance(error, NotConfigured):
            await self.workspaces.record_call(
                origin.team_id, ok=error is None, error=error_text(error) if error is not None else None
            )

    async def task_reply(self, task_id: str, origin: Origin) -> Answer:
        try:
            task, request_id = await self.fetch(task_id, origin)
        except MetaStudioError as exc:
            return self.error_reply(exc, origin, task_id=task_id)
        codes = self.settings.finished_codes
        # The card goes in the channel: the channel's language, not necessarily the asker's.
        locale = await self.languages.channel(origin)
        return Answer(
            text=cards.card_text(task, codes, locale=locale),
            blocks=cards.task_card(
                task,
                cards.CardView(request_id=request_id, finished_codes=codes, locale=locale),
                watch_button=True,
            ),
            request_id=request_id,
            task_id=task_id,
        )

    async def recent_reply(self, resources: tuple[str, ...], origin: Origin, *, page: int = 1) -> Answer:
        paging_ignored = False
        try:
            client = await self.metastudio_for(origin.team_id)
            async with self.slots.slot(origin.team_id or ""):
                await self.limiter_for(origin.team_id or "").acquire(Priority.COMMAND)
                # Page 1 sends no offset/limit, as the SDK's SearchTaskRequest has neither.
                fetched = await client.list_tasks(resources=resources)
                if page > 1:
                    first = [t.task_id for t in fetched.value.data[: cards.MAX_RECENT]]
                    await self.limiter_for(origin.team_id or "").acquire(Priority.COMMAND)
                    # offset/limit are undocumented: a server that ignores them sends page 1 again,
                    # which only the comparison with page 1 can tell.
                    fetched = await client.list_tasks(
                        resources=resources, offset=(page - 1) * cards.MAX_RECENT, limit=cards.MAX_RECENT
                    )
                    again = [t.task_id for t in fetched.value.data[: cards.MAX_RECENT]]
                    paging_ignored = bool(again) and again == first
        except MetaStudioError as exc:
            await self._record_call(origin, exc)
            return self.error_reply(exc, origin)
        await self._record_call(origin, None)
        resource = ",".join(resources) or None
        locale = origin.locale
        header = (
            messages.text("recent_header_resource", locale, resource=blocks.escape(resource))
            if resource
            else messages.text("recent_header", locale)
        )
        listing = cards.recent_list(
            fetched.value,
            resource=resource,
            finished_codes=self.settings.finished_codes,
            request_id=fetched.request_id,
            page_number=page,
            resources=resources,
            paging_ignored=paging_ignored,
            locale=locale,
        )
        return Answer(text=header, blocks=listing, request_id=fetched.request_id, public=False)

    def error_sentence(self, exc: MetaStudioError, locale: str) -> str:
        """The one sentence a member reads when a MetaStudio call failed for them."""
        if isinstance(exc, NotConfigured) and self.settings.multi_workspace:
            return messages.text("not_connected_member", locale)
        return error_text(exc, locale)

    def error_reply(self, exc: MetaStudioError, origin: Origin, *, task_id: str | None = None) -> Answer:
        """The error only the asker sees, in their language."""
        log.info("MetaStudio call failed: %s", exc, extra={"task_id": task_id, "request_id": exc.request_id})
        needs_connection = isinstance(exc, NotConfigured) and self.settings.multi_workspace
        locale = origin.locale
        message = self.error_sentence(exc, locale)
        return Answer(
            text=message,
            blocks=cards.error_blocks(message, request_id=exc.request_id, locale=locale),
            ok=False,
            request_id=exc.request_id,
            task_id=task_id,
            public=False,
            needs_connection=needs_connection,
        )
