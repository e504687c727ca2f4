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

Nothing in the counts predicts an ``end_time`` set early (a task that fails halfway), so the
estimate alone would see it at the next planned poll, minutes later. The workspace's list call
is the change detector (``bot.followups.changes``): a task its last sweep showed may wait up to
``ceiling``, because a row showing it ended is polled at once (``listed_due``); any other task
waits at most ``unlisted_ceiling`` (27 s, 30 with jitter). ``bench/bench_policy.py`` measures both against
today's schedule by tasks running at once and page size.

Invariants:

* every delay is in ``[floor, ceiling]`` (``floor`` is a quarter of ``poll_seconds``, ``ceiling`` is
  ``max_poll_seconds``), and in ``[floor, unlisted_ceiling]`` for a task no sweep shows; the
  caller applies the policy's ±10% jitter (``PollPolicy.jittered``);
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
from typing import Final

from bot.aio.backoff import backoff_delay
from bot.metastudio.progress import MIN_INTERVAL, Progress, Reading, estimate_once, observe

UNLISTED_CEILING: Final = 27.0
"""The longest wait between two polls of a watch no list call covers, before jitter: with the ±10%
jitter no gap exceeds 30 s, which bounds the alert delay of a task that ends early."""
LIST_SECONDS: Final = 25.0
"""How often a workspace's list sweep runs, before jitter: under the unlisted ceiling, so a listed
watch never learns of an early end later than an unlisted one would."""
LIST_POLL_FACTOR: Final = 2.5
"""With a base poll interval under 10 s the sweep comes this many base intervals apart instead,
so a faster poll setting speeds the change detector up with it."""


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
    unlisted_ceiling: float | None = None
    """Never wait longer than this between two polls of a task that no list call covers (see
    ``listed_due``); None: ``ceiling``, whether listed or not."""
    list_seconds: float = LIST_SECONDS
    """One list call (a sweep) per workspace this often serves every watch in it."""
    list_min_watches: int = 2
    """Sweep only while the workspace has at least this many running watches."""
    list_max_pages: int = 5
    """Pages one sweep fetches at most."""
    list_min_unseen: int = 2
    """A sweep fetches one more page only while this many running watches were not on the pages so far:
    a page that can cover one watch costs what polling it does."""

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
        if self.unlisted_ceiling is not None and not self.floor <= self.unlisted_ceiling <= self.ceiling:
            raise ValueError("unlisted_ceiling must lie between floor and ceiling")
        if (
            self.list_seconds <= 0
            or min(self.list_min_watches, self.list_max_pages, self.list_min_unseen) < 1
        ):
            raise ValueError("list_seconds must be > 0 and the list counts >= 1")

    @classmethod
    def from_intervals(cls, poll_seconds: float, max_poll_seconds: float) -> PollPolicy:
        """The floor is a quarter of the base interval: 2.5 s with the default 10 s. A task no list
        call covers is polled at least every ``UNLISTED_CEILING`` seconds (or every base interval,
        if that is longer). The list sweep runs every ``LIST_SECONDS``, or every
        ``LIST_POLL_FACTOR`` base intervals if that is sooner."""
        ceiling = max(poll_seconds, max_poll_seconds)
        unlisted = min(ceiling, max(poll_seconds, UNLISTED_CEILING))
        return cls(
            base=poll_seconds,
            ceiling=ceiling,
            floor=poll_seconds / 4,
            unlisted_ceiling=unlisted,
            list_seconds=min(LIST_SECONDS, LIST_POLL_FACTOR * poll_seconds),
        )

    @property
    def queued_limit(self) -> float:
        if self.queued_ceiling is not None:
            return self.queued_ceiling
        return min(self.ceiling, max(self.base, self.queued_factor * self.base))

    def ceiling_for(self, listed: bool) -> float:
        """The longest wait between two polls of a task the workspace's list call covers, or not."""
        if listed or self.unlisted_ceiling is None:
            return self.ceiling
        return self.unlisted_ceiling

    def bounded(self, delay: float, ceiling: float | None = None) -> float:
        return min(self.ceiling if ceiling is None else ceiling, max(self.floor, delay))

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


def after_progress(
    cadence: Cadence,
    policy: PollPolicy,
    *,
    now: float,
    processed: int,
    total: int,
    begin: float | None = None,
    listed: bool = False,
) -> tuple[Cadence, float]:
    """The new cadence and the delay (before jitter) after a successful poll of a running task.

    ``begin`` is the task's ``begin_time`` in seconds (None when the API gave none). Without it
    the first estimate waits for two polls; with it the first poll of a running task already
    knows the average rate. ``listed``: the workspace's list call showed the task at its last
    look, so an early end is seen there and the poll may wait up to ``ceiling``; otherwise up
    to ``unlisted_ceiling``.
    """
    ceiling = policy.ceiling_for(listed)
    previous = cadence.progress
    progress, _ = observe(previous, Reading(now, processed, begin), stall_seconds=math.inf)
    restarted = previous.processed is not None and processed < previous.processed
    moved = previous.processed is None or restarted or processed != previous.processed
    if not moved:
        limit = (
            ceiling
            if (progress.changed_at is not None or processed > 0)
            else min(ceiling, policy.queued_limit)
        )
        known = progress.rate if progress.last_rate is None else max(progress.rate or 0.0, progress.last_rate)
        if known and total > processed:
            # A stalled task may resume at any time and then needs this long to finish: back
            # off no further than the usual share of it, or a short remainder ends unseen.
            limit = min(limit, policy.bounded(policy.approach * (total - processed) / known, ceiling))
        interval = backoff_delay(retries=1, first=cadence.interval, factor=policy.quiet_factor, ceiling=limit)
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
        delay = policy.bounded(policy.approach * max(0, total - processed) / rate, ceiling)
    if cadence.quiet > 0 and not restarted:
        delay = min(delay, policy.base)
    return Cadence(interval=delay, progress=progress), delay


def after_error(
    cadence: Cadence, policy: PollPolicy, *, retry_after: float | None = None
) -> tuple[Cadence, float]:
    """Back off after a failed poll; a server's ``Retry-After`` is honoured up to the ceiling."""
    interval = backoff_delay(
        retries=1, first=cadence.interval, factor=policy.error_factor, ceiling=policy.ceiling
    )
    delay = interval
    if retry_after is not None and retry_after > delay:
        delay = min(policy.ceiling, retry_after)
    return replace(cadence, interval=interval), delay


def listed_due(
    cadence: Cadence,
    *,
    now: float,
    next_poll_at: float,
    processed: int,
    total: int,
    finished: bool,
) -> bool:
    """Whether a list call's row of a watched task calls for polling it now, not at ``next_poll_at``.

    The row is as fresh as a poll, so it is due when it shows the task ended, its counts going
    back (a restart), a task that was quiet moving again (re-measure it), or the task running
    ahead of its estimate: at the faster of the known rate and the rate since the last poll,
    the work left ends before the planned poll. A task never polled yet is left alone: its
    first poll is due anyway.
    """
    if finished:
        return True
    seen = cadence.progress
    if seen.processed is None or seen.seen_at is None or processed == seen.processed:
        return False
    if processed < seen.processed or cadence.quiet > 0:
        return True
    rates = [r for r in (seen.rate, seen.last_rate) if r]
    elapsed = now - seen.seen_at
    if elapsed > MIN_INTERVAL:
        rates.append((processed - seen.processed) / elapsed)
    rate = max(rates, default=0.0)
    if rate <= 0 or total <= 0:
        return False
    return now + max(0, total - processed) / rate < next_poll_at


def sweep_wanted(policy: PollPolicy, running_watches: int) -> bool:
    """Whether a workspace with this many running watches is worth one list call per ``list_seconds``."""
    return running_watches >= policy.list_min_watches


def more_pages(policy: PollPolicy, *, pages: int, page_full: bool, unseen: int) -> bool:
    """Whether a sweep that fetched ``pages`` pages (the last one full) fetches the next one.

    ``unseen``: running watches of the workspace not on the pages so far. Newest first, so
    the older watches are further down; a page is worth a call only if it can cover two.
    """
    return page_full and unseen >= policy.list_min_unseen and pages < policy.list_max_pages
