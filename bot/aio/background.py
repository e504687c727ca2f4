"""Work that runs after a request is answered: the ack-first gate and the tracked background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["AckFirst", "Asker", "Background"]


class Asker(Protocol):
    """Whoever background work answers; its workspace goes into the failure's log line."""

    @property
    def team_id(self) -> str | None: ...


A = TypeVar("A", bound=Asker)


class AckFirst:
    """Lets pending acks go before follow-up work when a burst of requests arrives.

    The HTTP route counts requests that have not been answered yet; background work (cloud
    calls, posting cards, polls, alerts) waits until that count is zero, or at most
    ``max_wait`` seconds so a steady stream of requests cannot starve it. One event loop
    serves both, so without this a burst of 200 commands interleaves 200 cloud calls with the
    acks Slack is waiting for. ``max_wait`` must outlast a whole burst: at 0.25 s, a burst
    that took longer released its 200 cloud calls into the acks still queued, and ack p99
    was 500 to 716 ms in 3 runs of 7 instead of 73 to 120 ms (BENCHMARKS.md).
    """

    def __init__(self, max_wait: float = 2.0) -> None:
        self.max_wait = max_wait
        self._pending = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    def __enter__(self) -> None:
        self._pending += 1
        self._quiet.clear()

    def __exit__(self, *exc: object) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._quiet.set()

    async def wait(self) -> None:
        if self._pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._quiet.wait(), self.max_wait)


class Background(Generic[A]):
    """Runs work after the ack; shutdown waits for it so no one is left without a reply.

    ``on_failure`` tells the asker (one sentence instead of silence); ``log`` is the caller's
    logger, so the failure is logged where the work belongs.
    """

    def __init__(self, on_failure: Callable[[A], Awaitable[None]], *, log: logging.Logger) -> None:
        self._on_failure = on_failure
        self._log = log
        self._inflight: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, Any], *, reply_to: A | None = None) -> None:
        """Nothing escapes: a failure is logged (redacted, with its traceback) and, when the work
        answers someone, ``on_failure`` tells them."""
        task = asyncio.create_task(self._guarded(work, reply_to))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def drain(self, timeout: float) -> None:
        pending = self._inflight - {asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _guarded(self, work: Coroutine[Any, Any, Any], reply_to: A | None) -> None:
        try:
            await work
        except Exception:
            team = reply_to.team_id if reply_to else None
            self._log.exception(
                "background work %s failed", getattr(work, "__qualname__", "?"), extra={"team": team}
            )
            if reply_to is not None:
                await self._on_failure(reply_to)
