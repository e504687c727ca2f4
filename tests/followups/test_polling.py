"""The adaptive poll interval: pure functions, checked without a clock or a server."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.followups.polling import (
    UNLISTED_CEILING,
    Cadence,
    PollPolicy,
    after_error,
    after_progress,
    listed_due,
    more_pages,
    sweep_wanted,
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


def _run(
    cadence: Cadence, points: list[tuple[float, int]], total: int, begin: float | None = None
) -> tuple[Cadence, float]:
    delay = 0.0
    for now, processed in points:
        cadence, delay = after_progress(
            cadence, POLICY, now=now, processed=processed, total=total, begin=begin
        )
    return cadence, delay


def test_quiet_task_that_moved_backs_off_geometrically_up_to_the_ceiling() -> None:
    cadence, _ = _run(Cadence.start(POLICY), [(0.0, 5)], 1_000_000)
    delays = []
    now = 0.0
    for _ in range(20):
        now += cadence.interval
        cadence, delay = after_progress(cadence, POLICY, now=now, processed=5, total=0)
        delays.append(delay)
    assert delays[0] == pytest.approx(15.0)
    assert delays[1] == pytest.approx(22.5)
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert delays[-1] == 300.0


def test_queued_task_backs_off_only_to_the_queued_limit() -> None:
    cadence, _ = _run(Cadence.start(POLICY), [(0.0, 0)], 1000)
    now, delays = 0.0, []
    for _ in range(20):
        now += cadence.interval
        cadence, delay = after_progress(cadence, POLICY, now=now, processed=0, total=1000)
        delays.append(delay)
    assert delays[-1] == POLICY.queued_limit == 60.0


def test_long_run_is_polled_rarely_in_the_middle() -> None:
    # 10 items/s, 100,000 items: ~9,900 s left, so the ceiling applies.
    _, delay = _run(Cadence.start(POLICY), [(0.0, 0), (10.0, 100), (20.0, 200)], 100_000)
    assert delay == 300.0


def test_first_poll_uses_begin_time_for_the_rate() -> None:
    # Begun 100 s ago, 1,000 of 2,000 done: 100 s left, a share of it.
    _, delay = after_progress(
        Cadence.start(POLICY), POLICY, now=1000.0, processed=1000, total=2000, begin=900.0
    )
    assert delay == pytest.approx(POLICY.approach * 100.0)
    # A begin_time in our future (clock skew) is no basis: the base interval.
    _, delay = after_progress(
        Cadence.start(POLICY), POLICY, now=1000.0, processed=1000, total=2000, begin=1100.0
    )
    assert delay == 10.0


def test_tightens_toward_the_estimated_end() -> None:
    # 10 items/s, 1,000 items: the delays shrink as the end approaches, down to the floor.
    cadence = Cadence.start(POLICY)
    now, delays = 0.0, []
    while now < 99.0:
        cadence, delay = after_progress(cadence, POLICY, now=now, processed=int(now * 10), total=1000)
        delays.append(delay)
        now += delay
    assert delays[1] > delays[-1]
    # From the first estimate on (counts that start from 0 need two changes), never longer.
    assert all(b <= a for a, b in itertools.pairwise(delays[2:]))
    assert delays[-1] == POLICY.floor


def test_rate_change_replans_at_once() -> None:
    cadence, slow = _run(Cadence.start(POLICY), [(0.0, 0), (10.0, 10), (20.0, 20)], 10_000)
    _, fast = after_progress(cadence, POLICY, now=30.0, processed=2020, total=10_000)
    assert fast < slow


def test_first_change_after_a_pause_is_remeasured_within_base() -> None:
    cadence, _ = _run(Cadence.start(POLICY), [(0.0, 0), (10.0, 100)], 1_000_000)
    for now in (310.0, 610.0, 910.0):
        cadence, _ = after_progress(cadence, POLICY, now=now, processed=100, total=1_000_000)
    _, delay = after_progress(cadence, POLICY, now=1210.0, processed=200, total=1_000_000)
    assert delay <= POLICY.base


def test_stalled_task_backs_off_no_further_than_its_remaining_work() -> None:
    # 10 items/s, 200 items left: 20 s of work, so at most a share of that between polls.
    cadence, _ = _run(Cadence.start(POLICY), [(0.0, 0), (10.0, 100), (20.0, 200), (30.0, 300)], 500)
    now = 30.0
    for _ in range(10):
        now += cadence.interval
        cadence, delay = after_progress(cadence, POLICY, now=now, processed=300, total=500)
        assert delay <= max(POLICY.floor, POLICY.approach * 20.0) + 1e-9


def test_unknown_total_polls_every_base() -> None:
    _, delay = _run(Cadence.start(POLICY), [(0.0, 0), (10.0, 100), (20.0, 200)], 0)
    assert delay == 10.0


def test_counts_going_backwards_start_over() -> None:
    cadence, _ = _run(Cadence.start(POLICY), [(0.0, 0), (10.0, 900)], 1000)
    cadence, delay = after_progress(cadence, POLICY, now=20.0, processed=10, total=1000)
    assert cadence.last_processed == 10
    assert delay == 10.0


@given(
    st.lists(
        st.tuples(st.floats(0.0, 400.0), st.integers(0, 1000)),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 100_000),
    st.one_of(st.none(), st.floats(-1e4, 1e4)),
)
def test_every_delay_stays_within_floor_and_ceiling(
    steps: list[tuple[float, int]], total: int, begin: float | None
) -> None:
    cadence, now, processed = Cadence.start(POLICY), 0.0, 0
    for dt, dp in steps:
        now += dt
        processed += dp
        cadence, delay = after_progress(
            cadence, POLICY, now=now, processed=processed, total=total, begin=begin
        )
        assert POLICY.floor <= delay <= POLICY.ceiling


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


def test_jitter_stays_within_ten_percent_and_varies() -> None:
    rng = random.Random(7)
    values = [POLICY.jittered(10.0, rng) for _ in range(2000)]
    assert all(9.0 <= v <= 11.0 for v in values)
    assert min(values) < 9.2
    assert max(values) > 10.8
    assert replace(POLICY, jitter=0.0).jittered(10.0, rng) == 10.0


def test_jitter_is_the_policys_own() -> None:
    rng = random.Random(7)
    values = [replace(POLICY, jitter=0.3).jittered(10.0, rng) for _ in range(2000)]
    assert all(7.0 <= v <= 13.0 for v in values)
    assert min(values) < 7.5
    assert max(values) > 12.5


# -- the list call as a change detector (issue 26) -------------------------------------------


def test_policy_from_settings_caps_unlisted_watches_at_27_seconds() -> None:
    policy = PollPolicy.from_intervals(10.0, 300.0)
    assert policy.ceiling_for(listed=True) == 300.0
    assert policy.ceiling_for(listed=False) == UNLISTED_CEILING == 27.0
    assert UNLISTED_CEILING * (1 + policy.jitter) <= 30.0
    # A base interval above it wins (never poll faster than asked); a ceiling below it too.
    assert PollPolicy.from_intervals(60.0, 300.0).ceiling_for(listed=False) == 60.0
    assert PollPolicy.from_intervals(5.0, 20.0).ceiling_for(listed=False) == 20.0


def test_policy_from_settings_sweeps_every_25_seconds_or_sooner_with_faster_polls() -> None:
    assert PollPolicy.from_intervals(10.0, 300.0).list_seconds == 25.0
    # A slower base interval never slows the sweep past the unlisted ceiling.
    assert PollPolicy.from_intervals(60.0, 300.0).list_seconds == 25.0
    assert PollPolicy.from_intervals(4.0, 300.0).list_seconds == 10.0
    assert PollPolicy.from_intervals(0.4, 600.0).list_seconds == 1.0


@pytest.mark.parametrize(
    "changes",
    [
        {"unlisted_ceiling": 1.0},
        {"unlisted_ceiling": 301.0},
        {"list_seconds": 0.0},
        {"list_min_watches": 0},
        {"list_max_pages": 0},
        {"list_min_unseen": 0},
    ],
)
def test_policy_rejects_bad_list_settings(changes: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        replace(PollPolicy.from_intervals(10.0, 300.0), **changes)


def test_an_unlisted_watch_waits_no_longer_than_the_unlisted_ceiling() -> None:
    policy = PollPolicy.from_intervals(10.0, 300.0)
    # A three-hour task at its start: the estimate alone would wait 300 s.
    points = [(0.0, 0), (10.0, 10)]
    for listed, expected in ((True, 300.0), (False, 27.0)):
        cadence = Cadence.start(policy)
        delay = 0.0
        for now, processed in points:
            cadence, delay = after_progress(
                cadence, policy, now=now, processed=processed, total=10_000, begin=0.0, listed=listed
            )
        assert delay == expected


def test_an_unlisted_quiet_watch_backs_off_no_further_than_the_unlisted_ceiling() -> None:
    policy = PollPolicy.from_intervals(10.0, 300.0)
    cadence, _ = after_progress(Cadence.start(policy), policy, now=0.0, processed=5, total=0)
    now, delay = 0.0, 0.0
    for _ in range(20):
        now += cadence.interval
        cadence, delay = after_progress(cadence, policy, now=now, processed=5, total=0)
    assert delay == 27.0


def _polled(points: list[tuple[float, int]], total: int) -> Cadence:
    cadence = Cadence.start(POLICY)
    for now, processed in points:
        cadence, _ = after_progress(cadence, POLICY, now=now, processed=processed, total=total, begin=0.0)
    return cadence


def test_a_list_row_showing_the_task_ended_is_due_at_once() -> None:
    cadence = _polled([(0.0, 0), (100.0, 100)], 10_000)
    assert listed_due(cadence, now=110.0, next_poll_at=400.0, processed=150, total=10_000, finished=True)


def test_a_list_row_on_the_estimate_is_not_due() -> None:
    # 1 item/s, 9,900 left: the planned poll at 400 s is far before the end.
    cadence = _polled([(0.0, 0), (100.0, 100)], 10_000)
    assert not listed_due(cadence, now=125.0, next_poll_at=400.0, processed=125, total=10_000, finished=False)
    # The same counts as the last poll: nothing new.
    assert not listed_due(cadence, now=125.0, next_poll_at=400.0, processed=100, total=10_000, finished=False)


def test_a_list_row_running_ahead_of_the_estimate_is_due() -> None:
    # Planned at 1 item/s; the row shows 300 more items in 25 s (12/s): 500 left end in ~42 s,
    # before the poll planned at 400 s.
    cadence = _polled([(0.0, 0), (100.0, 100)], 900)
    assert listed_due(cadence, now=125.0, next_poll_at=400.0, processed=400, total=900, finished=False)


def test_a_list_row_of_a_quiet_or_restarted_task_that_moves_is_due() -> None:
    cadence = _polled([(0.0, 0), (100.0, 100), (150.0, 100)], 1_000_000)
    assert cadence.quiet == 1
    assert listed_due(cadence, now=160.0, next_poll_at=400.0, processed=101, total=1_000_000, finished=False)
    moving = _polled([(0.0, 0), (100.0, 100)], 1_000_000)
    assert listed_due(moving, now=110.0, next_poll_at=400.0, processed=3, total=1_000_000, finished=False)


def test_a_list_row_of_a_watch_never_polled_is_not_due() -> None:
    assert not listed_due(
        Cadence.start(POLICY), now=5.0, next_poll_at=10.0, processed=999, total=1000, finished=False
    )


def test_a_sweep_needs_two_watches_and_pages_on_only_for_two_unseen() -> None:
    policy = PollPolicy.from_intervals(10.0, 300.0)
    assert not sweep_wanted(policy, 1)
    assert sweep_wanted(policy, 2)
    assert more_pages(policy, pages=1, page_full=True, unseen=2)
    assert not more_pages(policy, pages=1, page_full=True, unseen=1)
    assert not more_pages(policy, pages=1, page_full=False, unseen=10)
    assert not more_pages(policy, pages=policy.list_max_pages, page_full=True, unseen=10)
