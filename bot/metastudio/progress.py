"""Rate, ETA, trend and stalls of a task's progress: pure functions, no clock, no I/O, no text.

Times are seconds on one clock (the caller's ``time.time()``); ``begin`` is the task's
``begin_time`` converted to seconds, so it comes from the server's clock.

Invariants:

* No estimate without an honest basis. ``estimate_once`` and ``Progress.eta`` return None for a
  queued task (no ``begin_time``), a task with no progress yet, an unknown total, or a
  ``begin_time`` in our future (clock skew): never a made-up number.
* The smoothed rate of a watched task is a time-decayed EWMA (exponential smoothing for
  irregular samples, the Unix load-average form): each observed interval ``dt`` with rate
  ``r`` moves the estimate by ``alpha = 1 - exp(-dt / tau)`` toward ``r``. So a long interval
  weighs more than a short one, and the estimate forgets at the same speed whatever the poll
  cadence. An interval that contains a stall is not a rate sample (it would drag the rate
  down for minutes after the task moves again); the first interval after a stall starts the
  estimate afresh.
* Stalls: a task that has moved at least once and whose processed count then stays the same
  for ``stall_threshold`` seconds (the configured minutes, and never less than
  ``STALL_GAP_FACTOR`` times the usual gap between observed changes) is stalled. ``observe``
  reports ``STALLED`` once per stall and ``RESUMED`` once when it moves again; every other
  observation reports nothing, so a caller that posts on events posts one notice per stall.
* Bounded memory: the throughput history keeps the last ``HISTORY`` intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum

TAU_SECONDS = 300.0
"""The EWMA's time constant: the rate reflects roughly the last five minutes."""
STALL_GAP_FACTOR = 4.0
"""A stall is never declared before this many usual gaps between changes have passed."""
HISTORY = 12
"""Throughput samples kept for the sparkline."""
SKEW_TOLERANCE = 5.0
"""A ``begin_time`` up to this far in our future is clock jitter, beyond it clock skew."""
MIN_ELAPSED = 1.0
"""Less than this since ``begin_time`` is too little to derive a rate from."""
BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class Estimate:
    rate: float
    """Items per second."""
    remaining: float
    """Seconds until the counts reach the total at that rate."""


def _estimate(rate: float, processed: int, total: int) -> Estimate | None:
    if total <= 0 or rate <= 0 or not math.isfinite(rate):
        return None
    return Estimate(rate=rate, remaining=max(0, total - processed) / rate)


def estimate_once(*, now: float, begin: float | None, processed: int, total: int) -> Estimate | None:
    """Rate and ETA of a card seen once: the average rate since ``begin_time``."""
    if begin is None or processed <= 0 or total <= 0:
        return None
    if begin > now + SKEW_TOLERANCE:
        return None  # begin_time in our future: the clocks disagree, so any rate would be fiction
    elapsed = now - begin
    if elapsed < MIN_ELAPSED:
        return None
    return _estimate(processed / elapsed, processed, total)


# Shorter intervals are below any clock's honest resolution: a count divided by one gives an
# infinite rate (Hypothesis found 2.2e-311 s giving NaN through the EWMA).
MIN_INTERVAL = 1e-3


def ewma(previous: float | None, sample: float, dt: float, tau: float = TAU_SECONDS) -> float:
    """Time-decayed EWMA: ``previous`` moved toward ``sample`` by ``1 - exp(-dt / tau)``."""
    if previous is None:
        return sample
    alpha = 1.0 - math.exp(-max(0.0, dt) / tau)
    return previous + alpha * (sample - previous)


class Event(Enum):
    STALLED = "stalled"
    RESUMED = "resumed"


@dataclass(frozen=True, slots=True)
class Progress:
    """What one watched task's polls have shown so far. Start with ``Progress()``."""

    seen_at: float | None = None
    processed: int | None = None
    rate: float | None = None
    """Smoothed items per second (EWMA), None until two observations with a change."""
    last_rate: float | None = None
    """Items per second over the latest interval that ended in a change (unsmoothed)."""
    changed_at: float | None = None
    """When the processed count was last seen to change (None: never seen moving)."""
    usual_gap: float | None = None
    """EWMA of the seconds between observed changes."""
    stalled_since: float | None = None
    """Set while stalled: the last time the count changed before the stall."""
    history: tuple[float, ...] = ()
    """Observed throughput (items/s) per interval, oldest first, for the sparkline."""

    @property
    def stalled(self) -> bool:
        return self.stalled_since is not None

    def eta(self, total: int) -> Estimate | None:
        """ETA from the smoothed rate; None while stalled or with no rate yet."""
        if self.rate is None or self.processed is None or self.stalled:
            return None
        return _estimate(self.rate, self.processed, total)

    def quiet_for(self, now: float) -> float:
        """Seconds since the count last changed (0 when it never moved)."""
        return 0.0 if self.changed_at is None else max(0.0, now - self.changed_at)


def stall_threshold(stall_seconds: float, usual_gap: float | None, factor: float = STALL_GAP_FACTOR) -> float:
    """Quiet seconds before a task counts as stalled: the setting, or more for a bursty task."""
    return max(stall_seconds, factor * usual_gap) if usual_gap is not None else stall_seconds


@dataclass(frozen=True, slots=True)
class Reading:
    """One poll's look at a task: when, and how far its processed count had got."""

    now: float
    processed: int
    begin: float | None = None
    """The task's ``begin_time`` in seconds, if known: it dates the start of a task first seen
    queued, so its first rate does not include the wait in the queue."""


def observe(
    state: Progress, reading: Reading, *, stall_seconds: float, tau: float = TAU_SECONDS
) -> tuple[Progress, Event | None]:
    """Fold one poll's reading into ``state``; the event, if this poll started or ended a stall."""
    now, processed, begin = reading.now, reading.processed, reading.begin
    if state.seen_at is None or state.processed is None or processed < state.processed or now < state.seen_at:
        # First look, counts going backwards (a restarted task) or our clock going back:
        # nothing earlier is comparable, so start over from here (a stall it was in is over).
        return Progress(seen_at=now, processed=processed), Event.RESUMED if state.stalled else None
    dt = now - state.seen_at
    if processed == state.processed:
        moved_before = state.changed_at is not None
        quiet = state.quiet_for(now)
        if moved_before and not state.stalled and quiet >= stall_threshold(stall_seconds, state.usual_gap):
            assert state.changed_at is not None
            return replace(state, seen_at=now, stalled_since=state.changed_at), Event.STALLED
        history = (*state.history, 0.0)[-HISTORY:] if moved_before and dt > 0 else state.history
        return replace(state, seen_at=now, history=history), None
    # The count moved.
    event = Event.RESUMED if state.stalled else None
    delta = processed - state.processed
    rate = state.rate
    quiet_span = now - state.changed_at if state.changed_at is not None else None
    if state.changed_at is None:
        # The first change seen. Counts that were zero started somewhere inside this interval:
        # only begin_time says where, and without it there is no honest rate yet.
        start = state.seen_at
        if state.processed == 0:
            start = begin if begin is not None and state.seen_at <= begin < now else math.nan
        rate = delta / (now - start) if now - start > MIN_INTERVAL else None
    elif state.stalled or (
        quiet_span is not None
        and state.changed_at < state.seen_at  # the previous poll saw no change
        and (state.usual_gap is None or quiet_span > stall_threshold(0.0, state.usual_gap))
    ):
        # Back from a pause longer than the task's usual gaps: the time before says nothing
        # about the rate now, so the next interval measures it afresh.
        rate = None
    else:
        # Measured from the last change, not the last poll: a task that reports its counts in
        # batches shows quiet polls between changes, and those belong to the interval.
        assert quiet_span is not None
        if quiet_span > MIN_INTERVAL:
            rate = delta / quiet_span if rate is None else ewma(rate, delta / quiet_span, quiet_span, tau)
    last_rate = delta / quiet_span if quiet_span and rate is not None else rate
    usual_gap = state.usual_gap
    if state.changed_at is not None and not state.stalled:
        gap = now - state.changed_at
        usual_gap = ewma(usual_gap, gap, gap, tau)
    history = (*state.history, delta / dt)[-HISTORY:] if dt > MIN_INTERVAL else state.history
    new = Progress(
        seen_at=now,
        processed=processed,
        rate=rate,
        last_rate=last_rate,
        changed_at=now,
        usual_gap=usual_gap,
        stalled_since=None,
        history=history,
    )
    return new, event


def sparkline(values: Sequence[float], width: int = 8) -> str:
    """The last ``width`` values as block characters scaled to their own maximum ("▂▃▅▆▆▇").

    Empty for fewer than two values: one point is not a trend. A zero is the lowest bar, so a
    pause stays visible; all-zero history is a flat line of the lowest bar.
    """
    recent = [max(0.0, v) for v in values[-width:] if math.isfinite(v)]
    if len(recent) < 2:
        return ""
    top = max(recent)
    if top <= 0:
        return BARS[0] * len(recent)
    last = len(BARS) - 1
    return "".join(BARS[min(last, round(v / top * last))] for v in recent)
