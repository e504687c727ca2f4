"""A token bucket with two priorities, so polls never make a user's command wait behind them.

An API that throttles per key (MetaStudio's gateway: per project) counts every call against one
budget, commands and background polls alike. One ``PriorityRateLimiter`` per key spends that
budget (``RateLimiters``): callers ``await acquire(priority)`` before each request. Over the rate, callers queue rather than fail; ``COMMAND`` waiters are
always served before ``POLL`` waiters, and each priority is first come, first served.

No task loops or sleeps on its own: waiters park on futures, and a single timer handle on the
event loop wakes the queue when the next token is due. Cancelling a waiter removes it from the
queue; a waiter cancelled just after being granted hands its token back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

# A timer is never set shorter than this, so a coarse clock cannot make the loop spin.
_MIN_WAIT = 0.001


class Priority(IntEnum):
    COMMAND = 0
    POLL = 1


class PriorityRateLimiter:
    """``rate`` requests per second on average, at most ``burst`` back to back (default 1)."""

    def __init__(
        self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if burst is not None and burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.burst = burst or 1
        self._clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self._queues: dict[Priority, deque[asyncio.Future[None]]] = {p: deque() for p in Priority}
        self._timer: asyncio.TimerHandle | None = None
        self.granted: dict[Priority, int] = dict.fromkeys(Priority, 0)

    @property
    def waiting(self) -> int:
        return sum(1 for queue in self._queues.values() for future in queue if not future.done())

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)

    async def acquire(self, priority: Priority = Priority.POLL) -> None:
        """Return once a request of ``priority`` may be sent; queue (never fail) while over the rate."""
        priority = Priority(priority)
        self._refill()
        if self._tokens >= 1 and self._next_waiter() is None:
            self._tokens -= 1
            self.granted[priority] += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues[priority].append(future)
        self._arm()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Granted and cancelled in the same tick: the token goes to the next waiter.
                self._tokens += 1
                self.granted[priority] -= 1
                if self._timer is not None:
                    self._timer.cancel()
                self._dispatch()
            else:
                with contextlib.suppress(ValueError):
                    self._queues[priority].remove(future)
            raise

    def _next_waiter(self) -> tuple[Priority, asyncio.Future[None]] | None:
        for priority in Priority:
            queue = self._queues[priority]
            while queue and queue[0].done():
                queue.popleft()
            if queue:
                return priority, queue[0]
        return None

    def _dispatch(self) -> None:
        self._timer = None
        self._refill()
        while self._tokens >= 1:
            waiter = self._next_waiter()
            if waiter is None:
                return
            priority, future = waiter
            self._queues[priority].popleft()
            self._tokens -= 1
            self.granted[priority] += 1
            future.set_result(None)
        self._arm()

    def _arm(self) -> None:
        """Make sure a timer wakes the queue when the next token is due (one timer at most)."""
        if self._timer is not None or self._next_waiter() is None:
            return
        self._refill()
        wait = max(_MIN_WAIT, (1 - self._tokens) / self.rate)
        self._timer = asyncio.get_running_loop().call_later(wait, self._dispatch)


class RateLimiters:
    """One limiter per key (a MetaStudio project, or the workspace that owns one), made on first use."""

    def __init__(
        self, rate: float, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._limiters: dict[str, PriorityRateLimiter] = {}

    def get(self, key: str) -> PriorityRateLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = PriorityRateLimiter(self.rate, self.burst, self._clock)
        return limiter
