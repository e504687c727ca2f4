"""Fair slots: per-workspace concurrency limits under one global cap.

The pattern is per-tenant concurrency limiting with round-robin dispatch, i.e. deficit round
robin with a unit quantum (every request costs one slot): at most ``per_team`` calls of one
workspace are in flight, at most ``total`` of all workspaces together, and each slot that frees
goes to the next workspace *in turn* that has a waiter and is under its own cap. A workspace
whose endpoint hangs every call therefore holds at most ``per_team`` slots; every
other workspace keeps ``total - per_team`` and is served within one turn of the ring.

Invariants:

* ``running <= total`` and, per workspace, ``running <= per_team``;
* after every release, either every slot is taken or no waiter is eligible, so a newcomer that
  finds a free slot takes it without overtaking anyone eligible;
* within one workspace, waiters are served first come, first served;
* exactly one waiter wakes per freed slot (no thundering herd with thousands queued);
* a waiter cancelled while queued leaves no trace; one cancelled just after its grant gives
  the slot back, so cancellation never leaks a slot (the ``asyncio.Semaphore`` recipe);
* a workspace with nothing in flight and nobody waiting is forgotten: memory follows activity.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["FairSlots"]


@dataclass
class _Team:
    running: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)


class FairSlots:
    def __init__(self, *, total: int, per_team: int) -> None:
        if total < 1 or per_team < 1:
            raise ValueError("slot counts must be at least 1")
        self.total = total
        self.per_team = min(per_team, total)
        self._running = 0
        self._teams: dict[str, _Team] = {}
        # Workspaces with waiters, in turn order: the front one is served next.
        self._ring: OrderedDict[str, None] = OrderedDict()

    def running(self, team_id: str | None = None) -> int:
        """Slots in use, of one workspace or of all."""
        if team_id is None:
            return self._running
        team = self._teams.get(team_id)
        return team.running if team is not None else 0

    def waiting(self, team_id: str) -> int:
        team = self._teams.get(team_id)
        return sum(1 for w in team.waiters if not w.done()) if team is not None else 0

    def __len__(self) -> int:
        """Workspaces tracked (in flight or waiting)."""
        return len(self._teams)

    @contextlib.asynccontextmanager
    async def slot(self, team_id: str) -> AsyncIterator[None]:
        await self.acquire(team_id)
        try:
            yield
        finally:
            self.release(team_id)

    async def acquire(self, team_id: str) -> None:
        team = self._teams.get(team_id)
        if team is None:
            team = self._teams[team_id] = _Team()
        if not team.waiters and team.running < self.per_team and self._running < self.total:
            self._grant(team)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        team.waiters.append(waiter)
        if team_id not in self._ring:
            self._ring[team_id] = None
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Granted, then cancelled before it could run: the slot goes back.
                self.release(team_id)
            else:
                with contextlib.suppress(ValueError):
                    team.waiters.remove(waiter)
                self._tidy(team_id, team)
            raise

    def release(self, team_id: str) -> None:
        team = self._teams[team_id]
        if team.running <= 0:
            raise RuntimeError("release without acquire")
        team.running -= 1
        self._running -= 1
        self._dispatch()
        self._tidy(team_id, team)

    def _grant(self, team: _Team) -> None:
        team.running += 1
        self._running += 1

    def _dispatch(self) -> None:
        """Hand free slots to waiting workspaces, one per workspace per turn of the ring."""
        while self._running < self.total and self._ring:
            for team_id in self._ring:
                team = self._teams[team_id]
                while team.waiters and team.waiters[0].done():
                    team.waiters.popleft()  # cancelled while queued
                if team.waiters and team.running < self.per_team:
                    break
            else:
                # Everyone waiting is at their own cap; drop the rings' empty entries.
                for team_id in [t for t in self._ring if not self._teams[t].waiters]:
                    del self._ring[team_id]
                return
            self._grant(team)
            team.waiters.popleft().set_result(None)
            if team.waiters:
                self._ring.move_to_end(team_id)
            else:
                del self._ring[team_id]

    def _tidy(self, team_id: str, team: _Team) -> None:
        if not any(not w.done() for w in team.waiters):
            team.waiters.clear()
            self._ring.pop(team_id, None)
            if team.running == 0:
                self._teams.pop(team_id, None)
