"""Waiting for what nothing signals: poll a condition until it holds, within a bound.

One helper for every test, for plain and async conditions alike. It returns what the condition
returned, so a test can wait for a value and use it, and it fails naming what it waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")


async def eventually(check: Callable[[], T | Awaitable[T]], *, within: float = 10.0, what: str = "") -> T:
    """Poll ``check`` (plain or async) until it returns something truthy, and return that."""
    deadline = time.monotonic() + within
    delay = 0.01
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return cast(T, result)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what or 'the condition'}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
