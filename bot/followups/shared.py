"""What several parts of the follow-ups take: their jobs on this replica (``Jobs``), the way a poll
reaches MetaStudio (``PollCalls``), how a recorded delivery starts (``Deliver``), the backlog gate and the
counters.

Each part takes these, and every other collaborator it uses, as keyword arguments of its own
(``FollowUps.__init__`` wires them); none takes what it does not use, and a part that takes a
group uses all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from bot.aio.fairness import FairSlots
from bot.aio.ratelimit import Priority, PriorityRateLimiter
from bot.db.deliveries import DeliveryRecord
from bot.followups.scheduler import Scheduler
from bot.metastudio.client import MetaStudioClient

__all__ = ["Backlog", "Deliver", "FollowUpStats", "Jobs", "PollCalls"]

Deliver = Callable[[DeliveryRecord], None]
"""Starts a delivery just recorded (``Outbox.start``), which the outbox then posts exactly once."""


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
class Jobs:
    """Where and when a part's work runs on this replica: its waits are jobs on ``scheduler``, it
    reads the time from ``clock``, and it runs a workspace's jobs only while ``owns(team_id)``
    (``bot.followups.shards``); the replica that owns the workspace runs them otherwise."""

    scheduler: Scheduler
    clock: Callable[[], float]
    owns: Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class PollCalls:
    """The way every poll (a watch's, a feed's, a digest's, a list sweep's) reaches MetaStudio.

    One value for the engine, so every poll waits on the same backlog, yields to the same Slack
    requests, draws from the same rate limiters, holds the same per-workspace slots and counts in
    the same ``stats``.
    """

    metastudio_for: Callable[[str], Awaitable[MetaStudioClient]]
    limiter_for: Callable[[str], PriorityRateLimiter]
    poll_slots: FairSlots
    """MetaStudio calls of polls, fair per workspace (``bot.aio.fairness``)."""
    backlog: Backlog
    yield_to_requests: Callable[[], Awaitable[None]]
    """Background work waits here so pending Slack acks go first."""
    stopping: Callable[[], bool]
    """Whether the follow-ups are stopping: a poll admitted then makes no call."""
    stats: FollowUpStats

    async def admit(self, team_id: str) -> bool:
        """Wait until the backlog is short, pending Slack requests went first and the workspace's
        limiter grants a ``POLL`` token; False when the follow-ups are stopping meanwhile."""
        await self.backlog.wait_until_short()
        await self.yield_to_requests()
        await self.limiter_for(team_id).acquire(Priority.POLL)
        return not self.stopping()
