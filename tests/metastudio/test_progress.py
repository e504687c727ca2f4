"""Rate, ETA, sparkline and stall detection: pure functions, checked without a clock or a server."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.metastudio.progress import (
    BARS,
    Event,
    Progress,
    Reading,
    estimate_once,
    ewma,
    observe,
    sparkline,
    stall_threshold,
)

STALL = 1800.0


def feed(points: list[tuple[float, int]], state: Progress | None = None) -> tuple[Progress, list[Event]]:
    state = state or Progress()
    events = []
    for now, processed in points:
        state, event = observe(state, Reading(now, processed), stall_seconds=STALL)
        if event is not None:
            events.append(event)
    return state, events


def test_estimate_once_from_begin_time() -> None:
    estimate = estimate_once(now=1100.0, begin=1000.0, processed=930, total=50_000)
    assert estimate is not None
    assert estimate.rate == pytest.approx(9.3)
    assert estimate.remaining == pytest.approx((50_000 - 930) / 9.3)


@pytest.mark.parametrize(
    ("begin", "processed", "total"),
    [
        (None, 100, 1000),  # queued: no begin_time
        (1000.0, 0, 1000),  # no progress yet
        (1000.0, 100, 0),  # unknown total
        (1200.0, 100, 1000),  # begin_time in our future: clock skew
        (1099.5, 100, 1000),  # too little elapsed to say
    ],
)
def test_no_estimate_without_an_honest_basis(begin: float | None, processed: int, total: int) -> None:
    assert estimate_once(now=1100.0, begin=begin, processed=processed, total=total) is None


def test_watched_rate_is_smoothed_and_gives_an_eta() -> None:
    state, _ = feed([(0.0, 0), (10.0, 100), (20.0, 200), (30.0, 400)])
    assert state.rate is not None
    # The EWMA lies between the old rate (10/s) and the newest sample (20/s).
    assert 10.0 < state.rate < 20.0
    eta = state.eta(1000)
    assert eta is not None and eta.remaining == pytest.approx(600 / state.rate)


def test_first_change_from_zero_needs_begin_time() -> None:
    state, _ = feed([(0.0, 0)])
    without, _ = observe(state, Reading(60.0, 100), stall_seconds=STALL)
    assert without.rate is None  # the start is somewhere in the last minute: no rate yet
    with_begin, _ = observe(state, Reading(60.0, 100, begin=50.0), stall_seconds=STALL)
    assert with_begin.rate == pytest.approx(10.0)


def test_ewma_weights_by_elapsed_time() -> None:
    assert ewma(None, 5.0, 10.0) == 5.0
    short = ewma(10.0, 20.0, 1.0, tau=300.0)
    long = ewma(10.0, 20.0, 600.0, tau=300.0)
    assert 10.0 < short < long < 20.0
    assert long == pytest.approx(10.0 + 10.0 * (1 - math.exp(-2.0)))


def test_stall_is_reported_once_and_its_end_once() -> None:
    points = [(0.0, 0), (60.0, 600), (120.0, 1200)]
    points += [(120.0 + 60.0 * k, 1200) for k in range(1, 60)]  # an hour without a change
    state, events = feed(points)
    assert events == [Event.STALLED]
    assert state.stalled
    assert state.eta(10_000) is None  # no ETA while stalled
    state, events = feed([(3840.0, 1300), (3900.0, 1400)], state)
    assert events == [Event.RESUMED]
    assert not state.stalled


def test_stall_not_before_the_setting() -> None:
    _, events = feed([(0.0, 0), (60.0, 600), (60.0 + STALL - 1, 600)])
    assert events == []


def test_bursty_task_needs_several_usual_gaps() -> None:
    # Counts change every 20 min: a 30-min quiet spell is normal for it, four gaps are not.
    points = [(1200.0 * k, 100 * k) for k in range(6)]
    state, _ = feed(points)
    assert state.usual_gap == pytest.approx(1200.0)
    assert stall_threshold(STALL, state.usual_gap) == pytest.approx(4800.0)
    _, events = feed([(6000.0 + 2400.0, 500)], state)
    assert events == []


def test_queued_task_is_never_stalled() -> None:
    _, events = feed([(60.0 * k, 0) for k in range(200)])
    assert events == []


def test_counts_going_backwards_start_over() -> None:
    state, _ = feed([(0.0, 0), (10.0, 500), (20.0, 900), (30.0, 10)])
    assert state.processed == 10 and state.rate is None and state.history == ()


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([5.0]) == ""
    assert sparkline([1.0, 2.0, 4.0, 8.0]) == "▂▃▅█"
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert len(sparkline([1.0] * 50, width=8)) == 8


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=40), st.integers(1, 20))
def test_sparkline_shape(values: list[float], width: int) -> None:
    line = sparkline(values, width)
    assert len(line) == (min(width, len(values)) if len(values[-width:]) >= 2 else 0)
    assert set(line) <= set(BARS)
    if line and max(values[-width:]) > 0:
        assert BARS[-1] in line  # scaled to its own maximum


@given(
    st.lists(st.tuples(st.floats(0.0, 3600.0), st.integers(-50, 500)), min_size=1, max_size=60),
)
@example([(1.0, 1), (2.2e-311, 1), (1.0, 1)])
def test_one_notice_per_stall(steps: list[tuple[float, int]]) -> None:
    state, now, processed = Progress(), 0.0, 0
    events: list[Event] = []
    for dt, dp in steps:
        now += dt
        processed = max(0, processed + dp)
        state, event = observe(state, Reading(now, processed), stall_seconds=STALL)
        if event is not None:
            events.append(event)
        assert state.rate is None or state.rate >= 0
        assert len(state.history) <= 12
    # Events alternate, starting with a stall: never two notices for one stall.
    for i, event in enumerate(events):
        assert event == (Event.STALLED if i % 2 == 0 else Event.RESUMED)
