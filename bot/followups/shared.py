"""What every part of the follow-ups shares: the clock, the timers, the gates and the counters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.followups.fairness import FairSlots
from bot.followups.timers import Backlog, Timers
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.ratelimit import PriorityRateLimiter

__all__ = ["FollowUpStats", "Shared"]


@dataclass
class FollowUpStats:
    """Counters for tests, benchmarks and ``/metrics``."""

    polls: int = 0
    feed_polls: int = 0
    card_updates: int = 0
    delivered: int = 0


@dataclass(frozen=True, slots=True)
class Shared:
    timers: Timers
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
    """MetaStudio calls of watch and feed polls, fair per workspace (``bot.followups.fairness``)."""
    owns: Callable[[str], bool] = lambda _team_id: True
    """Whether this replica polls the workspace now (``bot.followups.shards``)."""
