"""The adaptive poll interval: pure functions, checked without a clock or a server."""

from __future__ import annotations

import itertools
import random

import pytest

from bot.followups.polling import (
    Cadence,
    PollPolicy,
    after_error,
    after_progress,
    backoff,
    estimate_eta,
    jittered,
)

POLICY = PollPolicy(base=10.0, ceiling=300.0, floor=2.5)


def test_policy_from_settings_values() -> None:
    policy = PollPolicy.from_intervals(10.0, 300.0)
    assert (policy.base, policy.ceiling, policy.floor) == (10.0, 300.0, 2.5)
    # A ceiling below the base is raised to it rather than inverting the order.
    assert PollPolicy.from_intervals(10.0, 5.0).ceiling == 10.0


@pytest.mark.parametrize(
    ("base", "ceiling", "floor"), [(10.0, 5.0, 1.0), (10.0, 300.0, 0.0), (10.0, 300.0, 11.0)]
)
def test_policy_rejects_inverted_bounds(base: float, ceiling: float, floor: float) -> None:
    with pytest.raises(ValueError):
        PollPolicy(base=base, ceiling=ceiling, floor=floor)


def test_first_poll_uses_the_base_interval() -> None:
    cadence = Cadence.start(POLICY)
    cadence, delay = after_progress(cadence, POLICY, now=0.0, processed=0, total=1000)
    assert delay == 10.0
    assert cadence.interval == 10.0


def test_quiet_task_backs_off_geometrically_up_to_the_ceiling() -> None:
    cadence = Cadence.start(POLICY)
    cadence, _ = after_progress(cadence, POLICY, now=0.0, processed=5, total=1000)
    delays = []
    now = 0.0
    for _ in range(20):
        now += cadence.interval
        cadence, delay = after_progress(cadence, POLICY, now=now, processed=5, total=1000)
        delays.append(delay)
    assert delays[0] == pytest.approx(15.0)
    assert delays[1] == pytest.approx(22.5)
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == 300.0
    assert delays[-1] == 300.0


def test_progress_after_quiet_resets_to_base() -> None:
    cadence = Cadence(interval=200.0, samples=((0.0, 5),))
    cadence, delay = after_progress(cadence, POLICY, now=200.0, processed=6, total=1_000_000)
    assert cadence.interval == 10.0
    assert delay == 10.0


def test_tightens_to_the_estimated_end() -> None:
    # 100 items per 10 s, 950 of 1000 done: the end is 5 s away, sooner than the 10 s interval.
    cadence = Cadence.start(POLICY)
    now = 0.0
    for processed in (650, 750, 850, 950):
        cadence, delay = after_progress(cadence, POLICY, now=now, processed=processed, total=1000)
        now += 10.0
    assert delay == pytest.approx(5.0)


def test_tightening_never_goes_below_the_floor() -> None:
    cadence = Cadence(interval=10.0, samples=((0.0, 0),))
    _, delay = after_progress(cadence, POLICY, now=10.0, processed=999, total=1000)
    assert delay == POLICY.floor


def test_far_end_keeps_the_base_interval() -> None:
    cadence = Cadence(interval=10.0, samples=((0.0, 0),))
    _, delay = after_progress(cadence, POLICY, now=10.0, processed=10, total=1000)
    assert delay == 10.0


def test_eta_estimate() -> None:
    assert estimate_eta(((0.0, 0), (10.0, 100)), 1000) == pytest.approx(90.0)
    assert estimate_eta(((0.0, 0),), 1000) is None
    assert estimate_eta(((0.0, 10), (10.0, 10)), 1000) is None
    assert estimate_eta(((0.0, 0), (10.0, 100)), 0) is None
    assert estimate_eta(((0.0, 0), (10.0, 2000)), 1000) == 0.0


def test_counts_going_backwards_forget_the_rate() -> None:
    cadence = Cadence(interval=10.0, samples=((0.0, 0), (10.0, 900)))
    cadence, delay = after_progress(cadence, POLICY, now=20.0, processed=10, total=1000)
    assert cadence.samples == ((20.0, 10),)
    assert delay == 10.0


def test_sample_window_is_bounded() -> None:
    cadence = Cadence.start(POLICY)
    for step in range(50):
        cadence, _ = after_progress(cadence, POLICY, now=float(step), processed=step, total=10_000)
    assert len(cadence.samples) <= 6


def test_errors_back_off_faster_and_honour_retry_after() -> None:
    cadence = Cadence.start(POLICY)
    cadence, delay = after_error(cadence, POLICY)
    assert delay == 20.0
    cadence, delay = after_error(cadence, POLICY, retry_after=120.0)
    assert cadence.interval == 40.0
    assert delay == 120.0
    # A Retry-After beyond the ceiling is capped: the watch must come back eventually.
    _, delay = after_error(cadence, POLICY, retry_after=10_000.0)
    assert delay == 300.0
    for _ in range(10):
        cadence, delay = after_error(cadence, POLICY)
    assert delay == 300.0


def test_backoff_caps() -> None:
    assert backoff(100.0, 2.0, 150.0) == 150.0
    assert backoff(10.0, 1.5, 150.0) == 15.0


def test_jitter_stays_within_ten_percent_and_varies() -> None:
    rng = random.Random(7)
    values = [jittered(10.0, rng) for _ in range(2000)]
    assert all(9.0 <= v <= 11.0 for v in values)
    assert min(values) < 9.2
    assert max(values) > 10.8
    assert jittered(10.0, rng, 0.0) == 10.0
