"""When to poll a watched task next: pure functions, no clock, no I/O.

The schedule follows the estimated end. Each poll folds the counts into a smoothed rate
(``bot.metastudio.progress``: time-decayed EWMA; on the first poll the average since ``begin_time``), and
the next poll comes after a fixed share (``approach``, 0.3 by default) of the estimated time
left, bounded by ``floor`` and ``ceiling``. So a three-hour import is asked every five
minutes in the middle and ever more often toward its end (300 s, 90, 27, 8 ... down to the
floor), and the alert arrives within about a floor of the real end. The share leaves room for
the rate to triple before the task can finish unseen; ``bench/bench_policy.py`` shows the
trade-off against 0.5 and 0.7 (fewer calls, a longer tail for tasks that end early). A poll re-plans from scratch, so a
change of rate moves the next poll at once.

Invariants:

* every delay is in ``[floor, ceiling]`` (``floor`` is a quarter of ``poll_seconds``, ``ceiling`` is
  ``max_poll_seconds``); the caller applies the policy's ±10% jitter (``PollPolicy.jittered``);
* a task whose counts do not move backs off (x1.5 per quiet poll). A task that never moved
  (queued, or no progress yet) backs off only to ``queued_ceiling``: a short task that leaves
  the queue must be seen running before it is over. One that moved before (a stall) backs off
  to ``ceiling``;
* the first change after quiet polls is re-measured within ``base``: the interval that
  contained the pause says nothing about the rate now;
* with no estimate (unknown total, no rate yet), a moving task is polled every ``base``;
* failed polls (throttling, 5xx, timeouts, connection errors) back off faster (x2) and honour
  ``Retry-After`` up to the ceiling; the watch is never dropped for them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

from bot.metastudio.progress import Progress, estimate_once, observe


@dataclass(frozen=True, slots=True)
class PollPolicy:
    base: float
    """The first interval, and the interval of a moving task with no estimate."""
    ceiling: float
    """Never wait longer than this between two polls of one task."""
    floor: float
    """Never poll one task more often than this, whatever the estimate says."""
    quiet_factor: float = 1.5
    """Back-off after a poll whose counts did not move."""
    error_factor: float = 2.0
    """Back-off after a failed poll."""
    jitter: float = 0.1
    """Share of each delay that ``jittered`` moves it by, either way."""
    approach: float = 0.3
    """Share of the estimated time left to wait before the next poll."""
    queued_factor: float = 6.0
    """A task that never moved backs off to this many base intervals (60 s with the default 10 s)."""
    queued_ceiling: float | None = None
    """Back-off limit of a task that never moved; None: ``queued_factor`` x base, within the ceiling."""

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.base <= self.ceiling:
            raise ValueError("poll intervals must satisfy 0 < floor <= base <= ceiling")
        if self.quiet_factor < 1 or self.error_factor < 1 or self.queued_factor < 1:
            raise ValueError("backoff factors must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if not 0 < self.approach <= 1:
            raise ValueError("approach must be in (0, 1]")
        if self.queued_ceiling is not None and not self.floor <= self.queued_ceiling <= self.ceiling:
            raise ValueError("queued_ceiling must lie between floor and ceiling")

    @classmethod
    def from_intervals(cls, poll_seconds: float, max_poll_seconds: float) -> PollPolicy:
        """The floor is a quarter of the base interval: 2.5 s with the default 10 s."""
        ceiling = max(poll_seconds, max_poll_seconds)
        return cls(base=poll_seconds, ceiling=ceiling, floor=poll_seconds / 4)

    @property
    def queued_limit(self) -> float:
        if self.queued_ceiling is not None:
            return self.queued_ceiling
        return min(self.ceiling, max(self.base, self.queued_factor * self.base))

    def bounded(self, delay: float) -> float:
        return min(self.ceiling, max(self.floor, delay))

    def jittered(self, delay: float, rng: random.Random) -> float:
        """``delay`` moved by up to ±``jitter`` of itself, so watches created together spread out."""
        if self.jitter <= 0:
            return delay
        return delay * rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True, slots=True)
class Cadence:
    """What the poller remembers about one task between polls (in memory only)."""

    interval: float
    progress: Progress = field(default_factory=Progress)
    quiet: int = 0
    """Polls in a row whose counts did not move."""

    @classmethod
    def start(cls, policy: PollPolicy) -> Cadence:
        return cls(interval=policy.base)

    @property
    def last_processed(self) -> int | None:
        return self.progress.processed


def backoff(interval: float, factor: float, ceiling: float) -> float:
    return min(ceiling, interval * factor)


def after_progress(
    cadence: Cadence,
    policy: PollPolicy,
    *,
    now: float,
    processed: int,
    total: int,
    begin: float | None = None,
) -> tuple[Cadence, float]:
    """The new cadence and the delay (before jitter) after a successful poll of a running task.

    ``begin`` is the task's ``begin_time`` in seconds (None when the API gave none). Without it
    the first estimate waits for two polls; with it the first poll of a running task already
    knows the average rate.
    """
    previous = cadence.progress
    progress, _ = observe(previous, now=now, processed=processed, stall_seconds=math.inf, begin=begin)
    restarted = previous.processed is not None and processed < previous.processed
    moved = previous.processed is None or restarted or processed != previous.processed
    if not moved:
        limit = policy.ceiling if (progress.changed_at is not None or processed > 0) else policy.queued_limit
        known = progress.rate if progress.last_rate is None else max(progress.rate or 0.0, progress.last_rate)
        if known and total > processed:
            # A stalled task may resume at any time and then needs this long to finish: back
            # off no further than the usual share of it, or a short remainder ends unseen.
            limit = min(limit, policy.bounded(policy.approach * (total - processed) / known))
        interval = backoff(cadence.interval, policy.quiet_factor, limit)
        return Cadence(interval=interval, progress=progress, quiet=cadence.quiet + 1), interval
    rate = progress.rate
    if rate is not None and progress.last_rate is not None:
        # The faster of the smoothed and the latest rate: underestimating the rate makes the
        # poll late, overestimating it only costs a poll.
        rate = max(rate, progress.last_rate)
    if previous.changed_at is None or restarted:
        # No change seen before this poll: the average since begin_time is the better basis.
        once = estimate_once(now=now, begin=begin, processed=processed, total=total)
        if once is not None:
            rate = once.rate if rate is None else max(rate, once.rate)
    delay = policy.base
    if rate is not None and rate > 0 and total > 0:
        delay = policy.bounded(policy.approach * max(0, total - processed) / rate)
    if cadence.quiet > 0 and not restarted:
        delay = min(delay, policy.base)
    return Cadence(interval=delay, progress=progress), delay


def after_error(
    cadence: Cadence, policy: PollPolicy, *, retry_after: float | None = None
) -> tuple[Cadence, float]:
    """Back off after a failed poll; a server's ``Retry-After`` is honoured up to the ceiling."""
    interval = backoff(cadence.interval, policy.error_factor, policy.ceiling)
    delay = interval
    if retry_after is not None and retry_after > delay:
        delay = min(policy.ceiling, retry_after)
    return replace(cadence, interval=interval), delay
