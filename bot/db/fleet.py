"""What several replicas on one PostgreSQL database share: the API rate budget and seen Slack events.

Two tables, both small and both keyed so that a single statement decides each question:

* ``rate_buckets``: one token bucket row per team (the "GCRA / token bucket in the database"
  pattern, as in Rails' Kredis limiter or pg-based rate limiters): a grant is one atomic
  ``UPDATE ... WHERE <refilled tokens> >= 1 RETURNING``; the refill is computed from the row's
  own ``updated`` time with the database's clock, so replicas' clocks never matter. Commands
  keep priority over polls across the fleet: a command that finds the bucket empty writes
  ``command_due``, and until then polls from every replica leave the next token alone.
* ``slack_events_seen``: the Events API ``event_id`` of every event handled, unique, so a retry
  (``X-Slack-Retry-Num``) landing on any replica loses the insert and is acknowledged and
  dropped (the idempotency-key pattern). Rows older than ``SEEN_TTL`` are deleted as new ones
  come in; Slack retries three times within about five minutes. The id is claimed before the
  work, so a replica that dies between claim and work loses that event (at most once): the
  events taskbot listens to (App Home, uninstall, revoked tokens) are redrawn or repeated by
  the next one, and twice would be worse. The check is a Bolt middleware, so it covers HTTP
  and Socket Mode (whose envelopes carry the same ``event_id``) alike.

Invariants: a grant never takes the bucket below zero; on SQLite (one process by design) the
rate stays in-process (``PriorityRateLimiter``) and only ``SeenEvents`` uses the database.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import Float, String, delete, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from bot.aio.ratelimit import Priority, PriorityRateLimiter, RateLimiters
from bot.db.base import Base, Database, rowcount, utcnow

__all__ = ["RateBuckets", "SeenEvents", "SharedRateLimiter", "SharedRateLimiters", "rate_limiters"]

SEEN_TTL: Final = timedelta(hours=1)
# Deleting expired event ids at most this often per process keeps it off the per-event path.
_CLEANUP_EVERY: Final = 60.0
# A poll that found the bucket empty retries a little after the next token is due, spread over
# a quarter of a token's interval (at most this) so replicas waiting on one team do not ask at
# once; a command holds its token for half an interval (at most this) past its due time.
_RETRY_SLACK: Final = 0.2
_MIN_WAIT: Final = 0.005
_BATCH_SECONDS: Final = 0.05


class RateBucket(Base):
    __tablename__ = "rate_buckets"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[datetime]
    command_due: Mapped[datetime | None]


class SeenEvent(Base):
    __tablename__ = "slack_events_seen"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


# Refill from the row's own clock; ``clock_timestamp()``, not ``now()``, which is the start of
# the transaction. ``:burst`` caps the bucket; a grant needs one whole token.
_REFILLED = "least(:burst, tokens + :rate * extract(epoch from clock_timestamp() - updated))"
# Polls take up to ``:want`` tokens in one statement (those waiting in this replica), so the
# database sees one round trip per batch, not per poll. The row lock (FOR UPDATE) makes the
# read of the refilled balance and the write one atomic step across replicas.
_TAKE_POLL = text(
    f"WITH b AS (SELECT team_id, {_REFILLED} AS avail FROM rate_buckets WHERE team_id = :team FOR UPDATE) "
    "UPDATE rate_buckets r SET tokens = b.avail - least(floor(b.avail), :want), updated = clock_timestamp() "
    "FROM b WHERE r.team_id = b.team_id AND b.avail >= 1 "
    "AND (r.command_due IS NULL OR r.command_due < clock_timestamp()) "
    "RETURNING least(floor(b.avail), :want)"
)
_TAKE_COMMAND = text(
    f"UPDATE rate_buckets SET tokens = {_REFILLED} - 1, updated = clock_timestamp() "
    f"WHERE team_id = :team AND {_REFILLED} >= 1 RETURNING tokens"
)
# No grant: say how long until the next token, and (for a command) claim it.
_RESERVE = text(
    f"UPDATE rate_buckets SET command_due = greatest(coalesce(command_due, clock_timestamp()), "
    f"clock_timestamp() + make_interval(secs => (1 - {_REFILLED}) / :rate + :hold)) "
    f"WHERE team_id = :team RETURNING (1 - {_REFILLED}) / :rate"
)
_WAIT = text(
    f"SELECT greatest((1 - {_REFILLED}) / :rate, "
    "coalesce(extract(epoch from command_due - clock_timestamp()), 0)) "
    "FROM rate_buckets WHERE team_id = :team"
)
_CREATE = text(
    "INSERT INTO rate_buckets (team_id, tokens, updated) VALUES (:team, :burst, clock_timestamp()) "
    "ON CONFLICT (team_id) DO NOTHING"
)


class RateBuckets:
    """The fleet-wide token buckets (PostgreSQL only); ``take`` returns 0 on a grant, else a wait."""

    def __init__(self, database: Database, rate: float, burst: int = 1) -> None:
        if database.engine.dialect.name != "postgresql":
            raise ValueError("shared rate buckets need PostgreSQL")
        self._engine = database.engine
        self.rate = rate
        self.burst = burst
        self._known: set[str] = set()

    async def take(self, team_id: str, priority: Priority, want: int = 1) -> tuple[int, float]:
        """(tokens granted, 0) or (0, seconds until the next token is due); ``want`` is for polls."""
        params = {"team": team_id, "rate": self.rate, "burst": float(self.burst), "want": want}
        async with self._engine.begin() as connection:
            if team_id not in self._known:
                await connection.execute(_CREATE, params)
                self._known.add(team_id)
            grant = _TAKE_COMMAND if priority is Priority.COMMAND else _TAKE_POLL
            granted = (await connection.execute(grant, params)).first()
            if granted is not None:
                return (int(granted[0]) if priority is Priority.POLL else 1), 0.0
            if priority is Priority.COMMAND:
                # Hold the next token a little past its due time so this command's retry gets it.
                row = (
                    await connection.execute(_RESERVE, {**params, "hold": min(_RETRY_SLACK, 0.5 / self.rate)})
                ).first()
            else:
                row = (await connection.execute(_WAIT, params)).first()
        if row is None:
            # The row went with its workspace (uninstalled, FollowUpStore.delete_team): make it again.
            self._known.discard(team_id)
            return 0, _MIN_WAIT
        wait = float(row[0]) if row[0] is not None else 1.0 / self.rate
        return 0, max(_MIN_WAIT, wait)


class SharedRateLimiter(PriorityRateLimiter):
    """A ``PriorityRateLimiter`` whose every grant is also taken from the fleet-wide bucket.

    The in-process queue still orders this replica's callers (commands first) and caps them at
    the rate; each grant is then confirmed against the shared bucket. Polls of one team ask
    one at a time (a lock), for as many tokens as polls are waiting, so a replica asks the
    database about once per batch; commands ask on their own and never wait behind polls.
    """

    def __init__(self, buckets: RateBuckets, team_id: str, burst: int | None = None) -> None:
        super().__init__(buckets.rate, burst)
        self._buckets = buckets
        self._team_id = team_id
        self._polls = asyncio.Lock()
        self._polls_waiting = 0
        # Tokens taken from the shared bucket for polls queued behind the lock, not yet handed out.
        self._credit = 0

    async def acquire(self, priority: Priority = Priority.POLL) -> None:
        priority = Priority(priority)
        await super().acquire(priority)
        if priority is Priority.COMMAND:
            while True:
                granted, wait = await self._buckets.take(self._team_id, priority)
                if granted:
                    return
                await asyncio.sleep(wait)
        self._polls_waiting += 1
        try:
            async with self._polls:
                if self._credit > 0:
                    self._credit -= 1
                    return
                while True:
                    granted, wait = await self._buckets.take(
                        self._team_id, priority, want=self._polls_waiting
                    )
                    if granted:
                        self._credit += granted - 1
                        return
                    await asyncio.sleep(wait + random.uniform(0, min(_RETRY_SLACK, 0.25 / self.rate)))
        finally:
            self._polls_waiting -= 1


class SharedRateLimiters(RateLimiters):
    """``RateLimiters`` for a fleet on PostgreSQL: one ``SharedRateLimiter`` per team."""

    def __init__(self, database: Database, rate: float, burst: int | None = None) -> None:
        super().__init__(rate, burst)
        # One burst never less than 50 ms worth of tokens: at the default 10/s that is the one
        # token the in-process limiter allows; at high rates it lets a batch of polls share one
        # round trip instead of queueing one statement per poll behind the team's lock.
        self._buckets = RateBuckets(database, rate, max(burst or 1, math.ceil(rate * _BATCH_SECONDS)))
        self._shared: dict[str, SharedRateLimiter] = {}

    def get(self, key: str) -> PriorityRateLimiter:
        limiter = self._shared.get(key)
        if limiter is None:
            limiter = self._shared[key] = SharedRateLimiter(self._buckets, key, self.burst)
        return limiter


def rate_limiters(database: Database, rate: float) -> RateLimiters:
    """Fleet-wide buckets on PostgreSQL; on SQLite (one process) the in-process limiter suffices."""
    if database.engine.dialect.name == "postgresql":
        return SharedRateLimiters(database, rate)
    return RateLimiters(rate)


class SeenEvents:
    """Slack event ids handled by any replica; ``first_time`` is true once per id."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self._write = database.transactions.write
        self._dialect = database.engine.dialect.name
        self._clock = clock
        self._cleaned = float("-inf")

    async def first_time(self, event_id: str) -> bool:
        now = utcnow()
        insert = pg_insert if self._dialect == "postgresql" else sqlite_insert
        statement = (
            insert(SeenEvent)
            .values(event_id=event_id[:64], seen_at=now)
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
        async with self._write() as session:
            inserted = rowcount(await session.execute(statement)) == 1
            if self._clock() - self._cleaned >= _CLEANUP_EVERY:
                self._cleaned = self._clock()
                await session.execute(delete(SeenEvent).where(SeenEvent.seen_at < now - SEEN_TTL))
        return inserted
