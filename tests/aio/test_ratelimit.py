"""The priority rate limiter, on the real event loop and clock (rates high enough to stay fast)."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.aio.ratelimit import Priority, PriorityRateLimiter, RateLimiters
from tests.support.clock import FakeClock


async def test_within_burst_is_immediate() -> None:
    limiter = PriorityRateLimiter(rate=1.0, burst=3)
    started = time.monotonic()
    for _ in range(3):
        await limiter.acquire(Priority.POLL)
    assert time.monotonic() - started < 0.05
    assert limiter.granted[Priority.POLL] == 3


async def test_rate_is_respected_and_nothing_is_dropped() -> None:
    rate = 50.0
    limiter = PriorityRateLimiter(rate=rate)
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire(Priority.POLL)
        times.append(time.monotonic())

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one() for _ in range(21))), 5)
    elapsed = time.monotonic() - started
    assert len(times) == 21
    # One token up front, then 20 more at 50/s: at least 0.4 s.
    assert elapsed >= 20 / rate * 0.95
    assert elapsed < 20 / rate + 0.5
    # No window of 10 consecutive grants is faster than the rate allows.
    times.sort()
    for first, last in zip(times, times[10:], strict=False):
        assert last - first >= 10 / rate * 0.9


async def test_command_goes_before_queued_polls() -> None:
    limiter = PriorityRateLimiter(rate=20.0)
    await limiter.acquire(Priority.POLL)  # drain the bucket
    order: list[str] = []

    async def take(label: str, priority: Priority) -> None:
        await limiter.acquire(priority)
        order.append(label)

    polls = [asyncio.create_task(take(f"poll{i}", Priority.POLL)) for i in range(5)]
    await asyncio.sleep(0)
    command = asyncio.create_task(take("command", Priority.COMMAND))
    await asyncio.wait_for(asyncio.gather(*polls, command), 5)
    assert order[0] == "command"
    # FIFO within a priority.
    assert order[1:] == [f"poll{i}" for i in range(5)]


async def test_commands_are_fifo_among_themselves() -> None:
    limiter = PriorityRateLimiter(rate=100.0)
    await limiter.acquire(Priority.COMMAND)
    order: list[int] = []

    async def take(index: int) -> None:
        await limiter.acquire(Priority.COMMAND)
        order.append(index)

    await asyncio.wait_for(asyncio.gather(*(take(i) for i in range(6))), 5)
    assert order == list(range(6))


async def test_cancelled_waiter_leaves_the_queue_and_others_proceed() -> None:
    # Tokens come from a fake clock, so "the very next token" is counted, not timed: 1/16 s is
    # exact in binary floating point, so one advance mints exactly one token.
    clock = FakeClock(100.0)
    limiter = PriorityRateLimiter(rate=16.0, clock=clock)
    await limiter.acquire(Priority.POLL)
    first = asyncio.create_task(limiter.acquire(Priority.POLL))
    second = asyncio.create_task(limiter.acquire(Priority.POLL))
    await asyncio.sleep(0)
    assert limiter.waiting == 2
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert limiter.waiting == 1
    clock.advance(1 / 16)
    # The second waiter gets the one token minted since: were it still queued behind the
    # cancelled waiter, it would wait for a second token that the standing clock never mints.
    await asyncio.wait_for(second, 10)
    assert limiter.granted[Priority.POLL] == 2
    assert limiter.waiting == 0


async def test_no_busy_loop_while_waiting() -> None:
    """A waiter parks on one timer: the loop is idle, not spinning, while it waits."""
    calls = 0

    def clock() -> float:
        nonlocal calls
        calls += 1
        return time.monotonic()

    limiter = PriorityRateLimiter(rate=4.0, clock=clock)
    await limiter.acquire(Priority.POLL)
    before = calls
    await asyncio.wait_for(limiter.acquire(Priority.POLL), 2)
    assert calls - before < 10


async def test_fake_clock_decides_the_tokens() -> None:
    clock = FakeClock(100.0)
    limiter = PriorityRateLimiter(rate=1.0, burst=2, clock=clock)
    await limiter.acquire(Priority.POLL)
    await limiter.acquire(Priority.POLL)
    waiter = asyncio.create_task(limiter.acquire(Priority.POLL))
    # The same limiter on the real clock, started alongside: once it has granted its third
    # token (after one real second), a limiter minting tokens by real time would have too.
    real = PriorityRateLimiter(rate=1.0, burst=2)
    await real.acquire(Priority.POLL)
    await real.acquire(Priority.POLL)
    await asyncio.wait_for(real.acquire(Priority.POLL), 5)
    await asyncio.sleep(0)
    assert not waiter.done()  # the fake clock has not moved: no token yet
    clock.advance(1.0)
    await asyncio.wait_for(waiter, 2)


def test_registry_keeps_one_limiter_per_key() -> None:
    limiters = RateLimiters(rate=10.0)
    assert limiters.get("T1") is limiters.get("T1")
    assert limiters.get("T1") is not limiters.get("T2")
    assert limiters.get("T1").rate == 10.0


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        PriorityRateLimiter(rate=0)
    with pytest.raises(ValueError):
        PriorityRateLimiter(rate=1, burst=0)


async def test_waiter_cancelled_after_its_grant_hands_the_token_back() -> None:
    clock = FakeClock(0.0)
    limiter = PriorityRateLimiter(rate=1.0, clock=clock)
    await limiter.acquire(Priority.POLL)
    waiter = asyncio.create_task(limiter.acquire(Priority.POLL))
    await asyncio.sleep(0)
    clock.advance(1.0)
    limiter._dispatch()  # the token is granted to the waiter, which has not run yet...
    waiter.cancel()  # ...and is cancelled before it could use it
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.granted[Priority.POLL] == 1
    await asyncio.wait_for(limiter.acquire(Priority.COMMAND), 0.05)  # the token was handed back
