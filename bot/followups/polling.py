"""When to poll a watched task next: pure functions, no clock, no I/O.

A watch starts at ``poll_seconds``. A task whose counts do not move is asked less and less
often (x1.5 per quiet poll, up to ``max_poll_seconds``): many tasks sit queued for minutes and
1,000 of them must not cost 1,000 calls every 10 s. A task that moves goes back to the base
interval, and when its recent rate of progress says it ends sooner than the next poll, the
next poll is moved to that estimated end (never below a floor), so the alert arrives about
when the task finishes rather than up to one interval later. Failed polls (throttling, 5xx,
timeouts, connection errors) back off faster (x2) and honour ``Retry-After``; the watch is
never dropped for them. Every delay gets ±10% jitter so watches created together spread out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

QUIET_FACTOR = 1.5
ERROR_FACTOR = 2.0
JITTER = 0.1
# How many recent (time, processed) samples the rate estimate looks at.
WINDOW = 6


@dataclass(frozen=True, slots=True)
class PollPolicy:
    base: float
    """The first interval, and the interval of a task that is making progress."""
    ceiling: float
    """Never wait longer than this between two polls of one task."""
    floor: float
    """Never poll one task more often than this, whatever the estimate says."""
    quiet_factor: float = QUIET_FACTOR
    error_factor: float = ERROR_FACTOR
    jitter: float = JITTER

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.base <= self.ceiling:
            raise ValueError("poll intervals must satisfy 0 < floor <= base <= ceiling")
        if self.quiet_factor < 1 or self.error_factor < 1:
            raise ValueError("backoff factors must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @classmethod
    def from_intervals(cls, poll_seconds: float, max_poll_seconds: float) -> PollPolicy:
        """The floor is a quarter of the base interval: 2.5 s with the default 10 s."""
        ceiling = max(poll_seconds, max_poll_seconds)
        return cls(base=poll_seconds, ceiling=ceiling, floor=poll_seconds / 4)


@dataclass(frozen=True, slots=True)
class Cadence:
    """What the poller remembers about one task between polls (in memory only)."""

    interval: float
    samples: tuple[tuple[float, int], ...] = ()
    """Recent ``(seconds, processed count)`` observations, oldest first."""

    @classmethod
    def start(cls, policy: PollPolicy) -> Cadence:
        return cls(interval=policy.base)

    @property
    def last_processed(self) -> int | None:
        return self.samples[-1][1] if self.samples else None


def backoff(interval: float, factor: float, ceiling: float) -> float:
    return min(ceiling, interval * factor)


def estimate_eta(samples: tuple[tuple[float, int], ...], total: int) -> float | None:
    """Seconds from the newest sample until ``processed`` reaches ``total`` at the recent rate.

    None when the rate is unknown or not positive, or the total is unknown. The rate is taken
    over the whole window, so one burst does not make the estimate jump.
    """
    if total <= 0 or len(samples) < 2:
        return None
    (t0, p0), (t1, p1) = samples[0], samples[-1]
    if t1 <= t0 or p1 <= p0:
        return None
    rate = (p1 - p0) / (t1 - t0)
    return max(0.0, (total - p1) / rate)


def after_progress(
    cadence: Cadence, policy: PollPolicy, *, now: float, processed: int, total: int
) -> tuple[Cadence, float]:
    """The new cadence and the delay (before jitter) after a successful poll of a running task."""
    moved = cadence.last_processed is None or processed != cadence.last_processed
    samples = (*cadence.samples, (now, processed))[-WINDOW:]
    if processed < (cadence.last_processed or 0):
        # Counts went backwards (a restarted task): the old rate means nothing now.
        samples = ((now, processed),)
    if not moved:
        interval = backoff(cadence.interval, policy.quiet_factor, policy.ceiling)
        return Cadence(interval=interval, samples=samples), interval
    interval = policy.base
    delay = interval
    eta = estimate_eta(samples, total)
    if eta is not None and eta < delay:
        delay = max(policy.floor, eta)
    return Cadence(interval=interval, samples=samples), delay


def after_error(
    cadence: Cadence, policy: PollPolicy, *, retry_after: float | None = None
) -> tuple[Cadence, float]:
    """Back off after a failed poll; a server's ``Retry-After`` is honoured up to the ceiling."""
    interval = backoff(cadence.interval, policy.error_factor, policy.ceiling)
    delay = interval
    if retry_after is not None and retry_after > delay:
        delay = min(policy.ceiling, retry_after)
    return replace(cadence, interval=interval), delay


def jittered(delay: float, rng: random.Random, fraction: float = JITTER) -> float:
    """``delay`` moved by up to ±``fraction`` of itself."""
    if fraction <= 0:
        return delay
    return delay * rng.uniform(1 - fraction, 1 + fraction)
