"""Tenant isolation: B's alert delay while workspace A's MetaStudio endpoint hangs every call.

    python -m bench.bench_tenants            # --runs N (default 3), --database-url URL

The scenario of ``tests/test_tenant_isolation.py`` over real sockets: two installed workspaces,
each on its own simulator; A watches 24 tasks and then every show call of A hangs past the
4 s call deadline; one task of B finishes just after a poll of B saw it running. Measured: the
seconds from that moment to B's alert in Slack, for

* ``global``: one pool of 8 poll slots for every workspace (an ``asyncio.Semaphore``, as
  before issue 8), swapped in for the run;
* ``fair``: ``FairSlots`` as configured (multi-workspace: 4 per workspace, 32 in all).

Both run in the same process, one after the other; the ratio is global / fair.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from tests.install_support import MultiStack
from tests.test_tenant_isolation import b_alert_delay

OLD_POOL = 8


class GlobalPool:
    """The pre-issue-8 scheduler: one semaphore for every workspace's polls."""

    def __init__(self, size: int) -> None:
        self._semaphore = asyncio.Semaphore(size)

    @contextlib.asynccontextmanager
    async def slot(self, team_id: str) -> AsyncIterator[None]:
        async with self._semaphore:
            yield


def _use_global_pool(stack: MultiStack) -> None:
    calls = stack.runtime.followups.watches.calls
    # PollCalls is frozen: the swap is the benchmark's, never the runtime's.
    object.__setattr__(calls, "poll_slots", GlobalPool(OLD_POOL))


async def _run(kind: str, runs: int, database_url: str | None) -> list[float]:
    delays = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            prepare = _use_global_pool if kind == "global" else None
            delay = await b_alert_delay(Path(tmp), url, prepare=prepare)
        print(f"{kind:>6} run {i + 1}: B's alert {delay:.2f} s")
        delays.append(delay)
    return delays


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file per run")
    args = parser.parse_args()
    # A's timed-out polls log one warning each; the figures are the output.
    logging.getLogger("taskbot").setLevel(logging.ERROR)
    baseline = await _run("global", args.runs, args.database_url)
    fair = await _run("fair", args.runs, args.database_url)
    base_m, fair_m = statistics.median(baseline), statistics.median(fair)
    print(f"global pool of {OLD_POOL}: median {base_m:.2f} s, max {max(baseline):.2f} s")
    print(f"fair slots:        median {fair_m:.2f} s, max {max(fair):.2f} s")
    print(f"ratio global / fair (median): {base_m / fair_m:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
