"""Which workspaces this replica polls: shard leases with heartbeats.

A **shard** is one workspace (``team_id``): its watches, its feed poll, its owed deliveries and
its MetaStudio rate limit stay in one process. On PostgreSQL the shard is leased in the
``shard_leases`` table (``bot.db.leases``) with the ``FOR UPDATE SKIP LOCKED`` lease-with-
heartbeat pattern of APScheduler 4's data store, Oban and Solid Queue. Why this one and not
session advisory locks (GoodJob): a lease is a row, so it is visible (who owns what, since
when), it survives PgBouncer in transaction mode, it needs no connection held open per
replica, and a stalled replica loses it by the clock, not by a TCP timeout that may take
minutes; advisory locks would also cost one lock call per shard.

Invariants:
- Every ``lease_seconds / 3`` (the ``lease:heartbeat`` interval job of ``bot.followups.scheduler``)
  a replica renews ALL its leases with one UPDATE (and its row in
  ``shard_replicas``), then claims unowned or expired shards up to a fair share,
  ``ceil(shards / live replicas)`` (one SELECT ... SKIP LOCKED + one UPDATE), and releases what
  it holds beyond that share: O(replicas) lease writes per heartbeat, however many watches.
- A replica polls a shard only while its lease is valid by its own monotonic clock, counted
  from before the renew was sent (so it stops no later than the database expires the row).
  ``owns()`` is that in-memory check, made on every poll, and again once the poll has its slot
  and rate token (that wait can take seconds): a replica woken from SIGSTOP past its lease
  stops polling at once, before its next heartbeat tells it the shard is gone.
- A renew that returns fewer shards than it held means they were lost: their jobs are
  removed. A claim re-arms the shard from the tables (watches, feed, owed deliveries).
- Each heartbeat also re-reads the active watches, feeds and owed deliveries of the owned
  shards, so a watch created on another replica is polled by the owner within one heartbeat
  (the creating replica polls it at once only when it owns the shard itself), and a delivery
  queued by a replica that had lost the shard is sent by the owner. Only the owner delivers:
  a lost shard's retry jobs are dropped with its poll jobs (``Outbox.forget_team``).
- Two replicas may briefly both believe they own a shard (a stalled owner waking up, or a
  takeover while a poll is in flight): exactly-once alerts never depend on the lease, only on
  ``close_watch``'s transaction, ``mark_sending`` and the look-up before a retry.
- ``stop()`` expires this replica's rows at once (SIGTERM). Between heartbeats every replica
  reads once a second (the ``lease:probe`` job) whether a lease is free
  (``LeaseStore.claimable``: no write, and only the lease table, so its cost does not grow
  with the watches) and then brings the heartbeat job forward, so a
  rolling restart hands over in about a second, not after a lease period. A workspace that
  gets work on a replica not owning it is ``announce``d (its lease row written if missing),
  so a watch on a workspace nobody owns yet is polled within about a second too.
- On SQLite there is one process (the CLI refuses a second), which owns every shard without
  touching the lease table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

from bot.db.leases import LeaseStore
from bot.followups.scheduler import Scheduler
from bot.metrics import LEASE_RENEWALS, LEASE_TAKEOVERS, REPLICA, SHARDS_OWNED

__all__ = ["Shards", "replica_name"]

log = logging.getLogger("taskbot.shards")

RELEASE_TIMEOUT: Final = 5.0
PROBE_SECONDS: Final = 1.0
"""Between heartbeats, how often a replica reads whether a shard was released or is new."""
HEARTBEAT_JOB: Final = "lease:heartbeat"
PROBE_JOB: Final = "lease:probe"


def replica_name() -> str:
    """Unique per process start: a restarted replica never inherits its old leases by name."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Shards:
    """The leases of one replica; ``leases`` None means the one process owns everything."""

    def __init__(
        self,
        leases: LeaseStore | None,
        *,
        seconds: float,
        on_gain: Callable[[set[str]], Awaitable[None]],
        on_lose: Callable[[set[str]], None],
        on_sync: Callable[[set[str]], Awaitable[None]],
        owner: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        scheduler: Scheduler | None = None,
    ) -> None:
        """``scheduler`` runs the heartbeat and the probe once ``start()`` is called (PostgreSQL only)."""
        self.leases = leases
        self.seconds = seconds
        self.owner = owner or replica_name()
        self._on_gain = on_gain
        self._on_lose = on_lose
        self._on_sync = on_sync
        self._clock = clock
        self.owned: set[str] = set()
        self._valid_until = -1.0
        self._scheduler = scheduler
        self._beating = asyncio.Lock()
        self._active = False
        self.renewals = 0
        self.takeovers = 0

    @property
    def leased(self) -> bool:
        return self.leases is not None

    def owns(self, team_id: str) -> bool:
        if self.leases is None:
            return True
        return team_id in self.owned and self._clock() < self._valid_until

    async def start(self) -> None:
        if self.leases is None or self._active:
            return
        assert self._scheduler is not None, "leases need a scheduler for their heartbeat"
        self._active = True
        await self._heartbeat()
        interval = self.seconds / 3
        self._scheduler.every(HEARTBEAT_JOB, self._heartbeat, interval)
        self._scheduler.every(PROBE_JOB, self._probe, min(PROBE_SECONDS, interval))

    async def stop(self) -> None:
        """Stop the heartbeat and give every lease up at once."""
        if self._active:
            self._active = False
            assert self._scheduler is not None
            self._scheduler.cancel(HEARTBEAT_JOB)
            self._scheduler.cancel(PROBE_JOB)
            # A heartbeat in progress ends first, so it cannot claim again after the release.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RELEASE_TIMEOUT):
                    await self._beating.acquire()
                    self._beating.release()
        if self.leases is None:
            return
        held, self.owned = self.owned, set()
        self._valid_until = -1.0
        if held:
            self._on_lose(held)
        try:
            released = await asyncio.wait_for(self.leases.release(self.owner), RELEASE_TIMEOUT)
            log.info("released %d shard leases", released, extra={"owner": self.owner})
        except Exception:
            log.warning("could not release shard leases; they expire in %.0f s", self.seconds)

    async def announce(self, team_id: str) -> None:
        """The workspace has new work here: unless we own it, make sure its lease row exists."""
        if self.leases is None or self.owns(team_id):
            return
        try:
            await self.leases.announce(team_id)
        except Exception:
            # Not needed for correctness: the next heartbeat's claim writes the row anyway.
            log.warning("could not announce a new workspace's shard; it is claimed at the next heartbeat")

    async def beat(self) -> None:
        """Renew, drop what was lost, claim a fair share, then sync the owned shards' jobs."""
        assert self.leases is not None
        sent = self._clock()
        renewed = await self.leases.renew(self.owner, self.seconds)
        self.renewals += 1
        LEASE_RENEWALS.labels(REPLICA).inc()
        if sent > self._valid_until:
            # Our leases had already run out by our clock: whatever we held was polled by nobody
            # or by a new owner; treat what the database still gives us as newly gained.
            lost, kept = self.owned, set[str]()
        else:
            lost, kept = self.owned - renewed, renewed & self.owned
        regained = renewed - kept
        self.owned = renewed
        self._valid_until = sent + self.seconds
        if lost:
            log.warning(
                "lost %d shard leases; no longer polling them",
                len(lost),
                extra={"owner": self.owner, "teams": sorted(lost)},
            )
            self._on_lose(lost)
        sent = self._clock()
        taken, share = await self.leases.claim(self.owner, self.seconds, owned=len(self.owned))
        excess = len(self.owned) - share
        if excess > 0 and not taken:
            # More than our share (replicas joined): give the excess up for them to claim.
            extra = set(sorted(self.owned - regained)[:excess])
            if extra:
                self.owned -= extra
                self._on_lose(extra)
                await self.leases.release(self.owner, extra)
                log.info("released %d shards to other replicas", len(extra), extra={"owner": self.owner})
        gained = taken | regained
        if gained:
            self.owned |= taken
            self._valid_until = min(self._valid_until, sent + self.seconds)
            self.takeovers += len(taken)
            LEASE_TAKEOVERS.labels(REPLICA).inc(len(taken))
            log.info(
                "took over %d shards",
                len(gained),
                extra={"owner": self.owner, "teams": sorted(gained)},
            )
            await self._on_gain(gained)
        SHARDS_OWNED.labels(REPLICA).set(len(self.owned))
        rest = self.owned - gained
        if rest:
            await self._on_sync(rest)

    async def _heartbeat(self) -> None:
        """The ``lease:heartbeat`` job: one beat; a failed one keeps the leases until they run out."""
        async with self._beating:
            if not self._active:
                return
            try:
                await self.beat()
            except Exception:
                log.exception("lease heartbeat failed", extra={"owner": self.owner})
                if self.owned and self._clock() >= self._valid_until:
                    held, self.owned = self.owned, set()
                    with contextlib.suppress(Exception):
                        self._on_lose(held)

    async def _probe(self) -> None:
        """The ``lease:probe`` job: a lease is free (released, expired or new), so beat now."""
        assert self.leases is not None and self._scheduler is not None
        if self._beating.locked() or not self._active:
            return
        try:
            free = await self.leases.claimable()
        except Exception:
            log.warning(
                "lease probe failed; the next heartbeat claims what is free", extra={"owner": self.owner}
            )
            return
        if free and not self._beating.locked():
            self._scheduler.run_soon(HEARTBEAT_JOB)
