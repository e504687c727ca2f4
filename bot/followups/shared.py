"""What every part of the follow-ups shares: settings, tables, poster, clock, scheduler, gates, counters.

``Part`` is the base of the watches, the feeds and the outbox: each is built from one ``Shared``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from bot.aio.fairness import FairSlots
from bot.aio.ratelimit import PriorityRateLimiter
from bot.config import Settings
from bot.db.followups import FollowUpStore
from bot.followups.polling import PollPolicy
from bot.followups.scheduler import Scheduler
from bot.metastudio.client import MetaStudioClient
from bot.slack.poster import Poster

__all__ = ["Backlog", "FollowUpStats", "Part", "Shared"]


@dataclass
class FollowUpStats:
    """Counters for tests, benchmarks and ``/metrics``."""

    polls: int = 0
    feed_polls: int = 0
    list_pages: int = 0
    """List calls of the watches' change detector (``bot.followups.changes``)."""
    card_updates: int = 0
    delivered: int = 0


class Backlog:
    """Closes and alerts started but not yet recorded; polls wait while there are too many.

    Polls are the elastic load: with thousands of watches and a raised rate they can keep the
    event loop busy without pause, and then every SQLite transaction crawls: each of its steps
    (hops to an aiosqlite thread and back) waits its turn behind the polls' callbacks. In the
    10,000-watch benchmark a close took 15 s and alerts fell minutes behind. Results must be
    recorded before more are fetched, so polls pause until the backlog is short again.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._short = asyncio.Event()
        self._short.set()

    @contextlib.contextmanager
    def item(self) -> Iterator[None]:
        self.count += 1
        if self.count > self.limit:
            self._short.clear()
        try:
            yield
        finally:
            self.count -= 1
            if self.count <= self.limit:
                self._short.set()

    async def wait_until_short(self) -> None:
        await self._short.wait()


@dataclass(frozen=True, slots=True)
class Shared:
    settings: Settings
    storage: FollowUpStore
    poster: Poster
    """Every Slack call of the follow-ups goes through it (``bot.slack.poster``)."""
    policy: PollPolicy
    scheduler: Scheduler
    """Every wait of the follow-ups is one of its jobs (``bot.followups.scheduler``)."""
    backlog: Backlog
    stats: FollowUpStats
    clock: Callable[[], float]
    jitter: Callable[[float], float]
    """±jitter applied to every delay, so watches created together spread out."""
    yield_to_requests: Callable[[], Awaitable[None]]
    """Background work waits here so pending Slack acks go first."""
    metastudio_for: Callable[[str], Awaitable[MetaStudioClient]]
    limiter_for: Callable[[str], PriorityRateLimiter]
    poll_slots: FairSlots
    """MetaStudio calls of watch and feed polls, fair per workspace (``bot.aio.fairness``)."""
    owns: Callable[[str], bool] = lambda _team_id: True
    """Whether this replica polls the workspace now (``bot.followups.shards``)."""


class Part:
    """One part of the engine (watches, feeds, outbox), with what the parts share at hand."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self.settings = shared.settings
        self.storage = shared.storage
        self.poster = shared.poster
        self.policy = shared.policy
