"""A bounded mapping whose entries expire, each after its own TTL.

The ``cachetools.TTLCache`` pattern (LRU eviction past ``maxsize``, expiry on read), hand-rolled
on ``OrderedDict`` because each entry brings its own TTL (a failed look-up is kept shorter than a
good one), which ``cachetools.TLRUCache`` can only express by storing the TTL in the value.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

K = TypeVar("K")
V = TypeVar("V")


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
