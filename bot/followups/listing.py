"""The project list call (``SearchTask``) as the follow-ups make it: paged, bounded, fair.

Feeds, digests and the watches' change detector (``bot.followups.changes``) all read a
workspace's recent tasks through ``list_window``: the same page size, the same page cap, the
same per-workspace poll slots and rate limiter as watch polls, the same way of following a
server that pages by fewer rows than asked, and the same guard against a server that ignores
``offset`` (it would send page 1 forever).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from bot.followups.shared import PollCalls
from bot.metastudio.errors import MetaStudioError
from bot.metastudio.models import Task

__all__ = ["LIST_CLOCK_SLACK_MS", "LIST_MAX_PAGES", "LIST_PAGE_SIZE", "list_failed", "list_window"]

log = logging.getLogger("taskbot.followups")

LIST_PAGE_SIZE: Final = 100
"""Rows asked per page (``limit``; the server's default when not asked is 10, unconfirmed)."""
LIST_MAX_PAGES: Final = 5
# end_time a little past our clock, so a server clock slightly ahead still lists its newest tasks.
LIST_CLOCK_SLACK_MS: Final = 5 * 60 * 1000


async def list_window(
    calls: PollCalls,
    team_id: str,
    *,
    begin_ms: int | None = None,
    end_ms: int | None = None,
    resources: Sequence[str] = (),
    more_wanted: Callable[[list[Task]], bool] = lambda _page: True,
    max_pages: int = LIST_MAX_PAGES,
    on_call: Callable[[], None] | None = None,
) -> dict[str, Task] | None:
    """The workspace's tasks, newest first, by id; only those that began in ``begin_ms``..``end_ms``
    (epoch ms, ``begin_time``/``end_time``, SearchTask's own filters) when given.

    Pages on while a full page came back and ``more_wanted(page)`` says older pages may still
    matter, up to ``max_pages``. ``on_call`` is told of each call (None: it counts as a feed
    poll). None when the follow-ups are stopping.
    """
    client = await calls.metastudio_for(team_id)
    listed: dict[str, Task] = {}
    previous_ids: list[str] | None = None
    offset = 0
    for _ in range(max_pages):
        if not await calls.admit(team_id):
            return None
        if on_call is None:
            calls.stats.feed_polls += 1
        else:
            on_call()
        # The same per-workspace slots as watch polls: a hanging endpoint holds its own.
        async with calls.poll_slots.slot(team_id):
            fetched = await client.list_tasks(
                resources=tuple(resources),
                begin_time=begin_ms,
                end_time=end_ms,
                offset=offset,
                limit=LIST_PAGE_SIZE,
            )
        page = fetched.value
        ids = [task.task_id for task in page.data]
        # offset/limit are not in the SDK's request model: a server that ignores them sends the
        # same page again, and paging on would loop over it.
        if ids and ids == previous_ids:
            log.warning("list call: the server ignores offset, stopping at one page", extra={"team": team_id})
            break
        previous_ids = ids
        for task in page.data:
            listed[task.task_id] = task
        # A server that pages by fewer rows than asked (10 by default) is followed row for row.
        offset += len(ids)
        # ``count`` is every match when the server gives it; else a short page is the last.
        full = page.count > offset if page.count else len(ids) >= (page.limit or LIST_PAGE_SIZE)
        if not ids or not full or not more_wanted(page.data):
            break
    return listed


def list_failed(exc: MetaStudioError, message: str, *args: object, team_id: str, **extra: object) -> None:
    """Log a list call MetaStudio failed, as a warning: ``message``'s first ``%s`` is the error's
    type, then ``args``; the record names the workspace and the request id MetaStudio can trace."""
    log.warning(
        message, type(exc).__name__, *args, extra={"team": team_id, "request_id": exc.request_id, **extra}
    )
