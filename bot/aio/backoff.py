"""The one exponential backoff formula: ``min(ceiling, first * factor ** retries)``.

Callers name each parameter where they use it, and apply their own jitter: the MetaStudio client
draws "full jitter" (``uniform(0, delay)``, AWS Architecture Blog, "Exponential Backoff And
Jitter"), the follow-ups move a delay by ±10% (``PollPolicy.jittered``). A cadence that grows
step by step (the polls, the feeds) passes its current interval as ``first`` and ``retries=1``.
"""

from __future__ import annotations


def backoff_delay(*, retries: int, first: float, ceiling: float, factor: float = 2.0) -> float:
    """Seconds to wait after ``retries`` earlier retries (0: the first wait is ``first``)."""
    if retries < 0:
        raise ValueError("retries must be >= 0")
    try:
        grown = first * factor**retries
    except OverflowError:  # float ** raises past 1e308; the ceiling was passed long before
        return ceiling
    return min(ceiling, grown)
