"""The project list call (``SearchTask``) as the follow-ups make it: paged, bounded, fair.

Feeds and digests both read a workspace's recent tasks through ``list_window``: the same page
size, the same page cap, the same per-workspace poll slots and rate limiter as watch polls, and
the same guard against a server that ignores ``offset`` (it would send page 1 forever).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from bot.aio.ratelimit import Priority
from bot.followups.shared import Shared
from bot.metastudio.models import Task

__all__ = ["LIST_CLOCK_SLACK_MS", "LIST_MAX_PAGES", "LIST_PAGE_SIZE", "list_window"]

log = logging.getLogger("taskbot.followups")

LIST_PAGE_SIZE: Final = 100
LIST_MAX_PAGES: Final = 5
# end_time a little past our clock, so a server clock slightly ahead still lists its newest tasks.
LIST_CLOCK_SLACK_MS: Final = 5 * 60 * 1000


async def list_window(
    shared: Shared,
    team_id: str,
    *,
    begin_ms: int,
    end_ms: int,
    resources: Sequence[str] = (),
    more_wanted: Callable[[list[Task]], bool] = lambda _page: True,
) -> dict[str, Task] | None:
    """The workspace's tasks in the ``begin_time``/``end_time`` window, newest first, by id.

    Pages on while a full page came back and ``more_wanted(page)`` says older pages may still
    matter, up to ``LIST_MAX_PAGES``. None when the follow-ups are stopping.
    """
    client = await shared.metastudio_for(team_id)
    limiter = shared.limiter_for(team_id)
    listed: dict[str, Task] = {}
    previous_ids: list[str] | None = None
    for page in range(LIST_MAX_PAGES):
        await shared.backlog.wait_until_short()
        await shared.yield_to_requests()
        await limiter.acquire(Priority.POLL)
        if shared.scheduler.stopping:
            return None
        shared.stats.feed_polls += 1
        # The same per-workspace slots as watch polls: a hanging endpoint holds its own.
        async with shared.poll_slots.slot(team_id):
            fetched = await client.list_tasks(
                resources=tuple(resources),
                begin_time=begin_ms,
                end_time=end_ms,
                offset=page * LIST_PAGE_SIZE,
                limit=LIST_PAGE_SIZE,
            )
        items = fetched.value.data
        ids = [task.task_id for task in items]
        # offset/limit are not in the SDK's request model: a server that ignores them sends the
        # same page again, and paging on would loop over it.
        if ids and ids == previous_ids:
            log.warning("list call: the server ignores offset, stopping at one page", extra={"team": team_id})
            break
        previous_ids = ids
        for task in items:
            listed[task.task_id] = task
        if len(items) < LIST_PAGE_SIZE or not more_wanted(items):
            break
    return listed
