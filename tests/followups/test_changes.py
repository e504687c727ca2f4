"""The watches' change detector (issue 26): one list sweep per workspace calls for the polls that
matter. ``detect`` is checked on its own; ``ListSweeps`` against the MetaStudio simulator and the
Slack stand-in on loopback sockets, with the engine's own timers."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from bot.devtools.simulator import SimTask
from bot.followups import FollowUps
from bot.followups.changes import WatchPlan, detect, sweep_job
from bot.followups.listing import LIST_PAGE_SIZE
from bot.followups.polling import Cadence, PollPolicy, after_progress
from bot.metastudio.models import Task
from tests.followups.test_followups import (  # noqa: F401 (stack is a fixture)
    CHANNELS,
    TEAM,
    Stack,
    sim_task,
    stack,
)
from tests.support.waiting import eventually

POLICY = PollPolicy.from_intervals(10.0, 300.0)
# The engines' own sweep job comes an hour after it is armed: these tests sweep by hand.
BY_HAND = replace(PollPolicy.from_intervals(1.0, 600.0), list_seconds=3600.0)
EARLY_ID = "c0ffee00c0ffee00c0ffee00c0ffee0a"
STEADY_ID = "c0ffee00c0ffee00c0ffee00c0ffee0b"


def _plan(watch_id: int, task_id: str, *, next_poll_at: float = 300.0) -> WatchPlan:
    cadence = Cadence.start(POLICY)
    for now, processed in ((0.0, 0), (100.0, 100)):
        cadence, _ = after_progress(cadence, POLICY, now=now, processed=processed, total=100_000, begin=0.0)
    return WatchPlan(watch_id, task_id, cadence, next_poll_at, listed=True)


def _row(task_id: str, processed: int, *, ended: bool = False) -> Task:
    return Task(
        task_id=task_id,
        begin_time=1_000,
        end_time=900_000 if ended else None,
        total_count=100_000,
        success_count=processed,
    )


def test_detect_polls_the_ended_folds_the_steady_and_unlists_the_missing() -> None:
    plans = [_plan(1, "a" * 32), _plan(2, "b" * 32), _plan(3, "c" * 32), _plan(4, "d" * 32)]
    rows = [
        _row("a" * 32, 120, ended=True),  # ended early: far from its counts' end
        _row("b" * 32, 125),  # on its estimate (1 item/s)
        _row("d" * 32, 99_990),  # far ahead: 10 items left end long before the poll at 300 s
    ]
    changes = detect(plans, rows, now=125.0)
    assert changes.poll_now == (1, 4)
    assert [(watch_id, row.task_id) for watch_id, row in changes.fold] == [(2, "b" * 32)]
    assert changes.unlisted == (3,)


def test_no_rows_unlist_every_watch() -> None:
    # A failed sweep is detected as an empty list: no watch may wait for a list that is not coming.
    assert detect([_plan(1, "a" * 32), _plan(2, "b" * 32)], [], now=125.0).unlisted == (1, 2)


def test_detect_judges_the_end_with_the_operator_finished_codes() -> None:
    row = _row("a" * 32, 125).model_copy(update={"task_status": "7"})
    assert detect([_plan(1, "a" * 32)], [row], now=125.0).fold
    assert detect([_plan(1, "a" * 32)], [row], now=125.0, finished_codes=frozenset({"7"})).poll_now == (1,)


def _long(task_id: str, started_ago: float = 60.0) -> SimTask:
    # Three hours at ~92 items/s: the estimate alone plans the next poll at max_poll_seconds.
    return sim_task(task_id, duration=3 * 3600, started_ago=started_ago, total_count=1_000_000)


async def _two_watches(built: Stack, steady_started_ago: float = 60.0) -> FollowUps:
    built.sim.add_task(_long(EARLY_ID))
    built.sim.add_task(_long(STEADY_ID, steady_started_ago))
    engine = await built.followups(poll_seconds=1.0, max_poll_seconds=600.0, policy=BY_HAND)
    for number, task_id in enumerate((EARLY_ID, STEADY_ID)):
        await engine.watch(team_id=TEAM, task_id=task_id, channel_id=CHANNELS[number], user_id="U0USER0001")
    # Ended, not just begun (``polls`` counts a poll as it starts): a first poll still in flight
    # when a test sweeps would plan its watch's next poll over the sweep's.
    await eventually(
        lambda: (
            len(plans := engine.watches.plans(TEAM)) == 2 and all(p.next_poll_at < math.inf for p in plans)
        ),
        what="the first poll of each watch, ended",
    )
    return engine


async def test_a_sweep_sees_an_early_end_long_before_the_planned_poll(stack: Stack) -> None:  # noqa: F811
    engine = await _two_watches(stack)
    first = await engine.sweeps.sweep(TEAM)
    assert first.poll_now == () and first.unlisted == ()
    assert sorted(watch_id for watch_id, _ in first.fold) == sorted(
        p.watch_id for p in engine.watches.plans(TEAM)
    )
    assert stack.sim.requests[("list", "")] == 1
    plans = {plan.task_id: plan for plan in engine.watches.plans(TEAM)}
    # Listed: the next polls wait for the estimate (minutes), not for the unlisted ceiling.
    assert all(plan.listed and plan.next_poll_at - time.time() > 60 for plan in plans.values())

    # The early task fails halfway: end_time set, counts frozen.
    body = stack.sim.snapshot(EARLY_ID)
    stack.sim.add_task(
        SimTask.static({**body, "end_time": int(body["begin_time"]) + 61_000, "task_status": 3})
    )
    polls_before = engine.polls
    second = await engine.sweeps.sweep(TEAM)
    assert second.poll_now == (plans[EARLY_ID].watch_id,)
    await stack.slack.wait_for(lambda _: len(stack.alerts(EARLY_ID)) == 1, timeout=5)
    assert engine.polls == polls_before + 1  # the one poll the row called for
    assert not stack.alerts(STEADY_ID)
    assert [plan.task_id for plan in engine.watches.plans(TEAM)] == [STEADY_ID]


async def test_a_watch_off_the_first_page_falls_back_to_the_unlisted_ceiling(stack: Stack) -> None:  # noqa: F811
    engine = await _two_watches(stack, steady_started_ago=1.0)
    await engine.sweeps.sweep(TEAM)
    # A page of newer tasks (begun 30 s ago) pushes the one begun 60 s ago down to page two; the
    # one begun 1 s ago stays first.
    for number in range(LIST_PAGE_SIZE - 1):
        stack.sim.add_task(sim_task(f"{number:032x}", duration=3600, started_ago=30.0))
    lists_before = stack.sim.requests[("list", "")]

    changes = await engine.sweeps.sweep(TEAM)
    plans = {plan.task_id: plan for plan in engine.watches.plans(TEAM)}
    # One unseen watch is not worth another page: it is polled on its own again.
    assert stack.sim.requests[("list", "")] == lists_before + 1
    assert changes.unlisted == (plans[EARLY_ID].watch_id,)
    assert not plans[EARLY_ID].listed and plans[STEADY_ID].listed
    ceiling = engine.policy.ceiling_for(listed=False)
    assert plans[EARLY_ID].next_poll_at - time.time() <= ceiling * (1 + engine.policy.jitter)
    assert plans[STEADY_ID].next_poll_at - time.time() > 60


async def test_a_sweep_follows_a_server_whose_pages_are_smaller_than_asked(stack: Stack) -> None:  # noqa: F811
    task_ids = [f"{number:032x}" for number in range(1, 13)]
    for number, task_id in enumerate(task_ids):
        stack.sim.add_task(_long(task_id, started_ago=60.0 + number))
    stack.sim.page_cap = 10  # asked for 100 rows, it answers 10 (the documented default page)
    engine = await stack.followups(poll_seconds=1.0, max_poll_seconds=600.0, policy=BY_HAND)
    for task_id in task_ids:
        await engine.watch(team_id=TEAM, task_id=task_id, channel_id=CHANNELS[0], user_id="U0USER0001")
    await eventually(lambda: engine.polls >= len(task_ids), what="the first poll of each watch")

    changes = await engine.sweeps.sweep(TEAM)
    # Page one held the ten newest; the two oldest are worth one more page, from offset 10.
    assert stack.sim.requests[("list", "")] == 2
    assert changes.unlisted == ()
    assert all(plan.listed for plan in engine.watches.plans(TEAM))


async def test_a_restart_arms_the_sweep_from_the_tables_and_forgetting_the_workspace_cancels_it(
    stack: Stack,  # noqa: F811
) -> None:
    first = await _two_watches(stack)
    assert first.scheduler.pending(sweep_job(TEAM))
    await first.stop()
    again = await stack.followups(poll_seconds=1.0, max_poll_seconds=600.0, policy=BY_HAND)
    assert len(again.watches) == 2
    assert again.scheduler.pending(sweep_job(TEAM))
    await again.forget_team(TEAM)
    assert not again.scheduler.pending(sweep_job(TEAM))


async def test_one_watch_alone_costs_no_list_call(stack: Stack) -> None:  # noqa: F811
    stack.sim.add_task(_long(EARLY_ID))
    engine = await stack.followups(poll_seconds=1.0, max_poll_seconds=600.0, policy=BY_HAND)
    await engine.watch(team_id=TEAM, task_id=EARLY_ID, channel_id=CHANNELS[0], user_id="U0USER0001")
    await eventually(lambda: engine.polls >= 1, what="the first poll")
    changes = await engine.sweeps.sweep(TEAM)
    assert stack.sim.requests[("list", "")] == 0
    assert changes.poll_now == () and changes.fold == ()


async def test_a_folded_row_redraws_the_live_card(stack: Stack) -> None:  # noqa: F811
    stack.sim.add_task(_long(EARLY_ID))
    stack.sim.add_task(_long(STEADY_ID))
    engine = await stack.followups(
        poll_seconds=1.0, max_poll_seconds=600.0, policy=BY_HAND, card_update_seconds=0.2
    )
    card = await stack.post_card(CHANNELS[0], STEADY_ID)
    await engine.watch(
        team_id=TEAM, task_id=STEADY_ID, channel_id=CHANNELS[0], user_id="U0USER0001", message_ts=card
    )
    await engine.watch(team_id=TEAM, task_id=EARLY_ID, channel_id=CHANNELS[1], user_id="U0USER0001")
    await eventually(lambda: engine.polls >= 2, what="the first poll of each watch")
    await eventually(lambda: stack.updates(card), what="the first redraw")
    drawn = len(stack.updates(card))
    # Past the redraw throttle (card_update_seconds) since that redraw.
    await eventually(lambda: time.time() - stack.updates(card)[-1].wall > 0.3, what="the throttle to pass")
    polls = engine.polls
    await engine.sweeps.sweep(TEAM)
    # No poll (the next is minutes away), yet the card shows the row's newer counts.
    await eventually(lambda: len(stack.updates(card)) > drawn, within=5, what="a redraw from the row")
    assert engine.polls == polls
