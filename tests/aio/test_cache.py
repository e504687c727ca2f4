"""bot.aio.cache: a bounded mapping whose entries expire, each after its own TTL."""

from __future__ import annotations

import pytest

from bot.aio.cache import TTLCache
from tests.support.clock import FakeClock


def test_cache_expires_entries_after_their_ttl() -> None:
    clock = FakeClock(1000.0)
    cache: TTLCache[str, str] = TTLCache(10, clock=clock)
    cache.set("a", "zh-CN", ttl=60)
    clock.now += 59
    assert cache.get("a") == "zh-CN"
    clock.now += 1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_cache_evicts_the_least_recently_used() -> None:
    cache: TTLCache[str, int] = TTLCache(2, clock=FakeClock(1000.0))
    cache.set("a", 1, ttl=60)
    cache.set("b", 2, ttl=60)
    assert cache.get("a") == 1  # now b is the oldest
    cache.set("c", 3, ttl=60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2
    with pytest.raises(ValueError):
        TTLCache(0)
