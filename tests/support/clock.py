"""The one fake clock of the test suite: time moves when a test moves it, never by itself.

Anything that takes a ``clock`` callable (the simulator, the MetaStudio client, the caches, the
rate limiter) reads epoch seconds from it; a test sets ``now`` or calls ``advance``.
"""

from __future__ import annotations

import time


class FakeClock:
    """Epoch seconds that stand still: ``now`` (the real time by default) until moved."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
