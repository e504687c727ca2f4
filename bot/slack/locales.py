"""Which catalog a Slack user reads, learnt from ``users.info`` off the ack path and cached.

Slash commands, actions and events carry no locale, so the resolver asks ``users.info`` with
``include_locale=true`` once per user and keeps the answer in a bounded LRU cache with a TTL (the
``cachetools.TTLCache`` pattern, hand-rolled on ``OrderedDict`` to avoid a dependency for 40 lines).

Invariants:
- Nothing here runs before an ack: ``cached``/``locale_for`` never do I/O; ``resolve`` and
  ``prefetch`` are for after the ack (or a background task).
- At most one ``users.info`` per (team, user) is in flight: concurrent askers share it.
- Every look-up is bounded: a total deadline (waiting for a slot included) and at most
  ``per_team`` concurrent look-ups per workspace, so one busy workspace cannot starve the rest.
- A failed or locale-less answer is cached too, for ``failure_ttl``, so a failing Slack is not asked
  again on every command; the caller's fallback (the workspace's language) is used, then English.
- The cache stores catalog ids (``messages.SUPPORTED``), never raw tags.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.slack.origin import belongs_to

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

_UNKNOWN: Final = ""  # cached for a user whose locale could not be learnt


class TTLCache(Generic[K, V]):
    """A bounded mapping whose entries expire: LRU eviction past ``maxsize``, expiry after a TTL.

    Not thread-safe; it lives on one event loop.
    """

    def __init__(self, maxsize: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def set(self, key: K, value: V, ttl: float) -> None:
        self._data[key] = (self._clock() + ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class LocaleResolver:
    """Per-user catalog ids for one process; share one instance between all handlers."""

    def __init__(
        self,
        *,
        maxsize: int = 10_000,
        ttl: float = 6 * 3600.0,
        failure_ttl: float = 300.0,
        timeout: float = 5.0,
        per_team: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.timeout = timeout
        self.per_team = per_team
        self._cache: TTLCache[tuple[str, str], str] = TTLCache(maxsize, clock=clock)
        # The same answer says whether the person belongs to the workspace (Slack Connect).
        self._members: TTLCache[tuple[str, str], bool] = TTLCache(maxsize, clock=clock)
        self._inflight: dict[tuple[str, str], asyncio.Task[str]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._slot_users: dict[str, int] = {}

    # -- no I/O: safe anywhere, including before an ack -----------------------------------------
    def cached(self, team_id: str, user_id: str) -> str | None:
        """The user's catalog id if known; ``""`` if the look-up failed recently; None if never asked."""
        return self._cache.get((team_id, user_id))

    def locale_for(self, team_id: str, user_id: str, *, fallback: str | None = None) -> str:
        """The catalog id to use right now: the user's, else ``fallback`` (the workspace's), else English."""
        return self.cached(team_id, user_id) or messages.resolve(fallback)

    def member(self, team_id: str, user_id: str) -> bool | None:
        """Whether the user belongs to the workspace, from the last users.info; None if unknown."""
        return self._members.get((team_id, user_id))

    def remember(self, team_id: str, user_id: str, tag: str | None) -> str:
        """Store a locale learnt elsewhere (a payload that carries one); returns its catalog id."""
        locale = messages.resolve(tag) if tag else _UNKNOWN
        self._cache.set((team_id, user_id), locale, self.ttl if tag else self.failure_ttl)
        return locale or messages.DEFAULT_LOCALE

    # -- after the ack ------------------------------------------------------------------------
    def prefetch(self, client: AsyncWebClient, team_id: str, user_id: str) -> None:
        """Start learning the user's locale in the background, unless known or already underway."""
        key = (team_id, user_id)
        if self._cache.get(key) is None and key not in self._inflight:
            self._start(client, key)

    async def resolve(
        self, client: AsyncWebClient, team_id: str, user_id: str, *, fallback: str | None = None
    ) -> str:
        """The user's catalog id, asking Slack if needed (coalesced, bounded by ``timeout``).

        Never raises for Slack's sake: a failure, a timeout or a missing locale gives ``fallback``
        (the workspace's language) or English.
        """
        key = (team_id, user_id)
        known = self._cache.get(key)
        if known is not None:
            return known or messages.resolve(fallback)
        task = self._inflight.get(key) or self._start(client, key)
        # shield: one impatient caller must not cancel the look-up the others share. _lookup itself
        # never raises (it turns every failure into _UNKNOWN).
        locale = await asyncio.shield(task)
        return locale or messages.resolve(fallback)

    async def aclose(self) -> None:
        """Cancel look-ups still in flight (at shutdown)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- internals ------------------------------------------------------------------------------
    def _start(self, client: AsyncWebClient, key: tuple[str, str]) -> asyncio.Task[str]:
        task = asyncio.create_task(self._lookup(client, key), name=f"users.info {key[1]}")
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return task

    async def _lookup(self, client: AsyncWebClient, key: tuple[str, str]) -> str:
        team_id, user_id = key
        locale = _UNKNOWN
        try:
            async with asyncio.timeout(self.timeout):
                async with self._slot(team_id):
                    response = await client.users_info(user=user_id, include_locale=True)
            user = response.get("user") or {}
            if isinstance(user, dict):
                self._members.set(key, belongs_to(user, team_id), self.ttl)
            tag = user.get("locale") if isinstance(user, dict) else None
            if isinstance(tag, str) and tag:
                locale = messages.resolve(tag)
            else:
                log.info("users.info gave no locale for %s in %s", user_id, team_id)
        except SlackApiError as exc:
            log.warning("users.info failed for %s in %s: %s", user_id, team_id, exc.response.get("error"))
        except TimeoutError:
            log.warning("users.info for %s in %s took over %.1f s", user_id, team_id, self.timeout)
        except Exception:
            # A transport error must not surface as a user-facing failure: the fallback language is fine.
            log.warning("users.info for %s in %s failed", user_id, team_id, exc_info=True)
        self._cache.set(key, locale, self.ttl if locale else self.failure_ttl)
        return locale

    def _slot(self, team_id: str) -> _TeamSlot:
        return _TeamSlot(self, team_id)


class _TeamSlot:
    """One of ``per_team`` concurrent look-ups for a workspace; the semaphore goes when unused."""

    def __init__(self, resolver: LocaleResolver, team_id: str) -> None:
        self._resolver = resolver
        self._team_id = team_id

    async def __aenter__(self) -> None:
        r = self._resolver
        semaphore = r._slots.get(self._team_id)
        if semaphore is None:
            semaphore = r._slots[self._team_id] = asyncio.Semaphore(r.per_team)
        r._slot_users[self._team_id] = r._slot_users.get(self._team_id, 0) + 1
        try:
            await semaphore.acquire()
        except BaseException:
            self._release_user()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._resolver._slots[self._team_id].release()
        self._release_user()

    def _release_user(self) -> None:
        r = self._resolver
        r._slot_users[self._team_id] -= 1
        if r._slot_users[self._team_id] == 0:
            del r._slot_users[self._team_id]
            del r._slots[self._team_id]
