"""FairSlots: per-workspace caps under a global cap, round-robin grants, cancellation safety."""

from __future__ import annotations

import asyncio

import pytest

from bot.aio.fairness import FairSlots


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _holder(slots: FairSlots, team: str, release: asyncio.Event, order: list[str]) -> None:
    async with slots.slot(team):
        order.append(team)
        await release.wait()


async def _hold(
    slots: FairSlots, team: str, count: int, release: asyncio.Event, order: list[str]
) -> list[asyncio.Task[None]]:
    """``count`` calls from ``team`` that take a slot (or queue for one) and keep it until ``release``."""
    holders = [asyncio.create_task(_holder(slots, team, release, order)) for _ in range(count)]
    await _settle()
    return holders


async def test_one_team_never_holds_more_than_its_cap() -> None:
    slots = FairSlots(total=8, per_team=2)
    release = asyncio.Event()
    order: list[str] = []
    hostile = await _hold(slots, "A", 20, release, order)
    assert slots.running("A") == 2 and slots.running() == 2
    assert slots.waiting("A") == 18
    # B is served at once although A queued first and has 18 waiting.
    [got] = await _hold(slots, "B", 1, release, order)
    assert slots.running("B") == 1 and order.count("B") == 1
    release.set()
    await asyncio.gather(*hostile, got)
    assert slots.running() == 0 and len(slots) == 0


async def test_free_slots_go_round_robin_across_waiting_teams() -> None:
    slots = FairSlots(total=2, per_team=2)
    gate = asyncio.Event()
    order: list[str] = []
    first = await _hold(slots, "X", 2, gate, order)
    # A queues ten, then B and C one each: the ring serves A, B, C, A... not A ten times first.
    queued = [asyncio.create_task(_one_shot(slots, "A", order)) for _ in range(10)]
    queued += [asyncio.create_task(_one_shot(slots, t, order)) for t in ("B", "C")]
    await _settle()
    gate.set()
    await asyncio.gather(*first, *queued)
    served = [t for t in order if t != "X"]
    assert served[:4] == ["A", "B", "C", "A"], served
    assert served.count("A") == 10


async def _one_shot(slots: FairSlots, team: str, order: list[str]) -> None:
    async with slots.slot(team):
        order.append(team)
        await asyncio.sleep(0)


async def test_no_team_starves_under_a_flood() -> None:
    """Many teams flooding: every queued call runs, and nobody exceeds a cap at any moment."""
    slots = FairSlots(total=4, per_team=2)
    peak: dict[str, int] = {}
    peak_total = 0

    async def call(team: str) -> None:
        nonlocal peak_total
        async with slots.slot(team):
            peak[team] = max(peak.get(team, 0), slots.running(team))
            peak_total = max(peak_total, slots.running())
            await asyncio.sleep(0.001)

    work = [call(f"T{i % 7}") for i in range(300)]
    await asyncio.wait_for(asyncio.gather(*work), timeout=10)
    assert max(peak.values()) <= 2 and peak_total <= 4
    assert slots.running() == 0 and len(slots) == 0


async def test_a_cancelled_waiter_leaves_no_trace() -> None:
    slots = FairSlots(total=1, per_team=1)
    release = asyncio.Event()
    order: list[str] = []
    [holder] = await _hold(slots, "A", 1, release, order)
    [doomed] = await _hold(slots, "B", 1, release, order)
    [later] = await _hold(slots, "C", 1, release, order)
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert slots.waiting("B") == 0
    release.set()
    await asyncio.gather(holder, later)
    assert order == ["A", "C"]
    assert slots.running() == 0 and len(slots) == 0


async def test_a_waiter_cancelled_right_after_its_grant_gives_the_slot_back() -> None:
    slots = FairSlots(total=1, per_team=1)
    await slots.acquire("A")
    granted_then_cancelled = asyncio.create_task(slots.acquire("B"))
    await _settle()
    slots.release("A")  # grants B's waiter...
    granted_then_cancelled.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await granted_then_cancelled
    assert slots.running() == 0
    # The slot is free again: a new call gets it at once.
    await asyncio.wait_for(slots.acquire("C"), timeout=1)
    slots.release("C")
    assert len(slots) == 0


async def test_cancelling_a_holder_frees_its_slot() -> None:
    slots = FairSlots(total=1, per_team=1)
    never = asyncio.Event()
    order: list[str] = []
    [holder] = await _hold(slots, "A", 1, never, order)
    holder.cancel()
    with pytest.raises(asyncio.CancelledError):
        await holder
    await asyncio.wait_for(slots.acquire("B"), timeout=1)
    assert slots.running("A") == 0 and slots.running("B") == 1


def test_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        FairSlots(total=0, per_team=1)
    assert FairSlots(total=2, per_team=5).per_team == 2
