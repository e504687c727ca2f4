"""bot.aio.backoff: the one backoff formula every retry and growing cadence uses."""

from __future__ import annotations

import pytest

from bot.aio.backoff import backoff_delay


def test_backoff_delay_grows_by_factor_up_to_the_ceiling() -> None:
    # Socket Mode's reconnects: 1 s doubling to 60 s.
    assert [backoff_delay(retries=n, first=1.0, ceiling=60.0) for n in range(8)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
    ]
    # One step of a cadence: the current interval times the factor, capped.
    assert backoff_delay(retries=1, first=10.0, factor=1.5, ceiling=150.0) == 15.0
    assert backoff_delay(retries=1, first=100.0, ceiling=150.0) == 150.0
    # A delivery that failed for days neither overflows nor passes the ceiling.
    assert backoff_delay(retries=100_000, first=0.5, ceiling=8.0) == 8.0
    with pytest.raises(ValueError):
        backoff_delay(retries=-1, first=1.0, ceiling=2.0)
