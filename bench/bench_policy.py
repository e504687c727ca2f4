"""The poll schedule, simulated: calls per finished task and alert delay over 10,000 tasks (issues 12, 26).

A discrete-event simulation of the real ``bot.followups.polling`` code (``after_progress``,
``PollPolicy.jittered``, and for the list call ``sweep_wanted``, ``more_pages`` and
``listed_due``, called as the runtime calls them) against a fixed-seed workload:

* durations log-uniform from 1 minute to 3 hours (time spent processing);
* throughput noise of ±30%: the rate is piecewise constant over one-minute segments, each
  segment's rate multiplied by a uniform factor in [0.7, 1.3];
* 20% queued for up to 10 minutes (uniform) before they start: no ``begin_time``, no counts;
* 10% stalling once, for 5 to 20 minutes (uniform), at a uniform point of their run (20%-80%);
* 5% ending early: ``end_time`` is set, and the counts freeze, at 30%-95% of the items.

Each task is watched from its creation; the first poll is at once (the card's fetch), and every
poll and every list page is one call. A task counts as seen finished by the first poll, or
list row, at or after its real end (the counts complete, or ``end_time`` set, as
``Task.is_finished`` judges it); a row that shows it ended costs the poll that confirms it.
The fixed-interval pollers are computed exactly: their n-th poll is at ``n * interval``.

1. Today's per-task policy alone (issue 12): the trade-off curve over its ceiling and approach.
2. Today's schedule and the new one (issue 26) on the same tasks, in one workspace running
   1, 10 or 50 tasks at once on average (Poisson arrivals), with the list's page size the
   server honours (100, what taskbot asks; or 10, its unconfirmed default): calls per finished
   task counting list calls, and p50/p95/p99 alert delay per kind of task.
3. The new schedule's curve: the unlisted ceiling for a lone task, and list rows that only
   trigger polls against rows folded into the schedule.

Run: ``python -m bench.bench_policy`` (``--tasks``, ``--seed``, ``--concurrency``; about 6 min
on one core).
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bench.common import percentile
from bot.followups.polling import (
    Cadence,
    PollPolicy,
    after_progress,
    listed_due,
    more_pages,
    sweep_wanted,
)

SEGMENT_SECONDS = 60.0
NOISE = 0.3
QUEUED_SHARE, QUEUED_MAX = 0.20, 600.0
STALL_SHARE, STALL_MIN, STALL_MAX = 0.10, 300.0, 1200.0
EARLY_SHARE = 0.05
CALLS_TARGET = 0.1
"""Issue 26: calls per finished task, list calls included, against the naive 5 s poll."""
P99_TARGET = 30.0


@dataclass(frozen=True, slots=True)
class Workload:
    """One task's life, in seconds since its watch began (its creation)."""

    total: int
    begin: float
    """When processing starts (after the queue)."""
    edges: tuple[float, ...]
    """Wall times of the rate segments' edges, a stall's time inserted."""
    counts: tuple[float, ...]
    """Items processed at each edge (not rounded)."""
    end: float
    """The real end: counts complete, or end_time set early."""
    early: bool
    stalled: bool
    queued: bool

    def processed(self, t: float) -> int:
        if t <= self.begin:
            return 0
        i = bisect.bisect_right(self.edges, t) - 1
        if i >= len(self.edges) - 1:
            value = self.counts[-1]
        else:
            t0, t1 = self.edges[i], self.edges[i + 1]
            c0, c1 = self.counts[i], self.counts[i + 1]
            value = c0 + (c1 - c0) * (t - t0) / (t1 - t0)
        # Before the real end the counts are never complete; an early end freezes them.
        return min(int(value), self.total - 1 if t < self.end else self.total)

    def begin_time(self, t: float) -> float | None:
        return self.begin if t >= self.begin else None


def make_workload(rng: random.Random) -> Workload:
    duration = math.exp(rng.uniform(math.log(60.0), math.log(10_800.0)))
    total = rng.randint(100, 50_000)
    queued = rng.random() < QUEUED_SHARE
    begin = rng.uniform(0.0, QUEUED_MAX) if queued else 0.0
    segments = max(1, math.ceil(duration / SEGMENT_SECONDS))
    weights = [rng.uniform(1 - NOISE, 1 + NOISE) for _ in range(segments)]
    scale = total / sum(weights)
    edges = [begin]
    counts = [0.0]
    for k, w in enumerate(weights):
        edges.append(begin + duration * (k + 1) / segments)
        counts.append(counts[-1] + w * scale)
    counts[-1] = float(total)
    stalled = rng.random() < STALL_SHARE
    if stalled:
        at = begin + duration * rng.uniform(0.2, 0.8)
        pause = rng.uniform(STALL_MIN, STALL_MAX)
        i = bisect.bisect_right(edges, at) - 1
        t0, t1, c0, c1 = edges[i], edges[i + 1], counts[i], counts[i + 1]
        c_at = c0 + (c1 - c0) * (at - t0) / (t1 - t0)
        edges = [*edges[: i + 1], at, at + pause, *(e + pause for e in edges[i + 1 :])]
        counts = [*counts[: i + 1], c_at, c_at, *counts[i + 1 :]]
    end = edges[-1]
    early = rng.random() < EARLY_SHARE
    if early:
        target = total * rng.uniform(0.3, 0.95)
        i = bisect.bisect_right(counts, target) - 1
        i = min(i, len(counts) - 2)
        c0, c1 = counts[i], counts[i + 1]
        t0, t1 = edges[i], edges[i + 1]
        end = t0 + (t1 - t0) * (target - c0) / (c1 - c0) if c1 > c0 else t1
        edges = [*edges[: i + 1], end]
        counts = [*counts[: i + 1], target]
    return Workload(total, begin, tuple(edges), tuple(counts), end, early, stalled, queued)


@dataclass
class Outcome:
    calls: list[int]
    delays: list[float]


def run_policy(tasks: list[Workload], policy: PollPolicy, seed: int) -> Outcome:
    """Each task on its own, polled by ``policy`` alone (no list call)."""
    rng = random.Random(seed)
    calls, delays = [], []
    for task in tasks:
        t = 0.0
        cadence = Cadence.start(policy)
        n = 0
        while True:
            n += 1
            if t >= task.end:
                break
            cadence, delay = after_progress(
                cadence,
                policy,
                now=t,
                processed=task.processed(t),
                total=task.total,
                begin=task.begin_time(t),
            )
            t += policy.jittered(delay, rng)
        calls.append(n)
        delays.append(t - task.end)
    return Outcome(calls, delays)


def run_fixed(tasks: list[Workload], interval: float) -> Outcome:
    calls, delays = [], []
    for task in tasks:
        n = math.ceil(task.end / interval)  # polls at 0, interval, ...: the n-th after 0 sees it
        calls.append(n + 1)
        delays.append(n * interval - task.end)
    return Outcome(calls, delays)


@dataclass(frozen=True, slots=True)
class Schedule:
    """One way of spending calls: the per-task policy, and whether the workspace's list call runs."""

    policy: PollPolicy
    listing: bool = False
    """Sweep each workspace with its list call (``policy.list_*``); False: today's schedule."""
    page_size: int = 100
    """Rows per page the server really returns (taskbot asks 100; the unasked default is 10)."""
    fold_rows: bool = True
    """A list row that calls for no poll is folded into the watch's cadence as a free observation
    (its next poll re-planned from it); False: the row only decides whether to poll now."""


@dataclass
class WorkspaceOutcome:
    calls: list[int]
    """Per task: its own polls (the planned ones and those a list row called for)."""
    delays: list[float]
    list_calls: int
    unlisted_ends: int
    """Tasks that ended while the last sweep had not shown them (off the fetched pages, or no sweep)."""


_CREATE, _POLL, _SWEEP = 0, 1, 2


def run_workspace(tasks: list[Workload], concurrency: int, schedule: Schedule, seed: int) -> WorkspaceOutcome:
    """One workspace running ``concurrency`` tasks at once on average, each watched from its creation.

    Tasks arrive as a Poisson stream (so a creation says nothing about another task's end).
    The list returns every task of the workspace, newest created first (the simulator sorts by
    ``begin_time``; a queued task has none, so the order by creation is an assumption), one
    ``page_size`` page per call. The sweep, paging and what a row calls for are the real
    ``sweep_wanted``, ``more_pages`` and ``listed_due``.
    """
    rng = random.Random(seed)
    policy = schedule.policy
    n = len(tasks)
    created = [0.0] * n
    arrivals = random.Random(seed + 1)
    gap = statistics.fmean(t.end for t in tasks) / concurrency  # Little's law: C running on average
    at = 0.0
    for i in range(n):
        created[i] = at
        at += arrivals.expovariate(1.0 / gap)
    cadences = [Cadence.start(policy)] * n
    next_at = [math.inf] * n
    version = [0] * n
    listed = [False] * n
    calls = [0] * n
    delays = [math.nan] * n
    running: set[int] = set()
    created_count = 0  # task i is the i-th created (created[] ascends): its rank is created_count - 1 - i
    state = {"list_calls": 0, "unlisted_ends": 0}
    events: list[tuple[float, int, int]] = [(created[i], _CREATE, i) for i in range(n)]
    if schedule.listing:
        events.append((policy.jittered(policy.list_seconds, rng), _SWEEP, -1))
    heapq.heapify(events)

    def plan(i: int, when: float) -> None:
        version[i] += 1
        next_at[i] = when
        heapq.heappush(events, (when, _POLL, i + (version[i] << 32)))

    def observe(i: int, t: float) -> float:
        """Fold what task i shows at t into its cadence; the delay before its next poll."""
        task = tasks[i]
        local = t - created[i]
        cadences[i], delay = after_progress(
            cadences[i],
            policy,
            now=local,
            processed=task.processed(local),
            total=task.total,
            begin=task.begin_time(local),
            listed=listed[i],
        )
        return delay

    def poll(i: int, t: float) -> None:
        calls[i] += 1
        if t - created[i] >= tasks[i].end:
            delays[i] = t - created[i] - tasks[i].end
            running.discard(i)
            version[i] += 1
            state["unlisted_ends"] += schedule.listing and not listed[i]
            return
        plan(i, t + policy.jittered(observe(i, t), rng))

    def unlist(i: int, t: float) -> None:
        """Off the list from now on: the next poll comes within the unlisted ceiling (no call now)."""
        if listed[i]:
            listed[i] = False
            if next_at[i] > t + policy.ceiling_for(listed=False):
                plan(i, t + policy.ceiling_for(listed=False))

    def sweep(t: float) -> None:
        watches = sorted(running, reverse=True)  # newest created first
        if not sweep_wanted(policy, len(watches)):
            for i in watches:
                unlist(i, t)
            return
        pages = 0
        while True:
            pages += 1
            shown = pages * schedule.page_size
            unseen = sum(1 for i in watches if created_count - 1 - i >= shown)
            if not more_pages(policy, pages=pages, page_full=created_count >= shown, unseen=unseen):
                break
        state["list_calls"] += pages
        for i in watches:
            if created_count - 1 - i >= pages * schedule.page_size:
                unlist(i, t)
                continue
            listed[i] = True
            local = t - created[i]
            task = tasks[i]
            if listed_due(
                cadences[i],
                now=local,
                next_poll_at=next_at[i] - created[i],
                processed=task.processed(local),
                total=task.total,
                finished=local >= task.end,
            ):
                poll(i, t)
            elif schedule.fold_rows:
                plan(i, t + policy.jittered(observe(i, t), rng))

    while events:
        t, kind, payload = heapq.heappop(events)
        if kind == _CREATE:
            created_count += 1
            running.add(payload)
            poll(payload, t)  # the card's fetch
        elif kind == _POLL:
            i, v = payload & 0xFFFFFFFF, payload >> 32
            if v == version[i] and i in running:
                poll(i, t)
        else:
            sweep(t)
            if running or created_count < n:
                heapq.heappush(events, (t + policy.jittered(policy.list_seconds, rng), _SWEEP, -1))
    return WorkspaceOutcome(calls, delays, state["list_calls"], state["unlisted_ends"])


KINDS: dict[str, Callable[[Workload], bool]] = {
    "plain": lambda w: not (w.queued or w.stalled or w.early),
    "queued": lambda w: w.queued,
    "stalled": lambda w: w.stalled,
    "early end": lambda w: w.early,
}


def row(name: str, out: Outcome, naive_mean: float) -> str:
    mean = statistics.fmean(out.calls)
    d = out.delays
    return (
        f"| {name} | {mean:.1f} | {mean / naive_mean:.3f} | {percentile(d, 50):.1f} | "
        f"{percentile(d, 95):.1f} | {percentile(d, 99):.1f} |"
    )


def _triple(delays: Sequence[float]) -> str:
    return f"{percentile(delays, 50):.1f} / {percentile(delays, 95):.1f} / {percentile(delays, 99):.1f}"


def workspace_row(
    label: str, tasks: list[Workload], out: WorkspaceOutcome, naive_mean: float, *, listing: bool = True
) -> str:
    """One row: calls per finished task (list calls included), then p50 / p95 / p99 per kind of task."""
    n = len(tasks)
    calls = (sum(out.calls) + out.list_calls) / n
    worst = 0.0
    cells = [_triple(out.delays)]
    for pick in KINDS.values():
        d = [out.delays[i] for i, w in enumerate(tasks) if pick(w)]
        worst = max(worst, percentile(d, 99))
        cells.append(_triple(d))
    met = "yes" if calls / naive_mean <= CALLS_TARGET and worst <= P99_TARGET else "no"
    return (
        f"| {label} | {calls:.1f} | {calls / naive_mean:.3f} | {out.list_calls / n:.1f} | "
        f"{f'{out.unlisted_ends / n:.0%}' if listing else '–'} | {' | '.join(cells)} | {met} |"
    )


WORKSPACE_HEADER = (
    "| workspace, schedule | calls per finished task | x naive 5 s | of which list | ended off the list "
    "| all p50 / p95 / p99 s | plain | queued | stalled | early end | target met |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    started = time.perf_counter()
    rng = random.Random(args.seed)
    tasks = [make_workload(rng) for _ in range(args.tasks)]
    naive5 = run_fixed(tasks, 5.0)
    naive_mean = statistics.fmean(naive5.calls)
    base = args.poll_seconds
    print(
        f"bench_policy: {args.tasks} tasks, seed {args.seed}; queued {sum(t.queued for t in tasks)}, "
        f"stalled {sum(t.stalled for t in tasks)}, early {sum(t.early for t in tasks)}; "
        f"mean time to end {statistics.fmean(t.end for t in tasks):.0f} s\n"
    )
    print("1. Today's per-task policy (issue 12), one task at a time: the trade-off curve\n")
    print("| poller | calls per finished task | x naive 5 s | delay p50 s | p95 s | p99 s |")
    print("|---|---|---|---|---|---|")
    print(row("naive fixed 5 s", naive5, naive_mean))
    print(row("fixed 10 s", run_fixed(tasks, 10.0), naive_mean))
    today = PollPolicy(base=base, ceiling=300.0, floor=base / 4)
    variants: list[tuple[str, PollPolicy]] = [(f"**today** (max 300 s, approach {today.approach:g})", today)]
    for ceiling in (60.0, 120.0, 300.0):
        for approach in (0.3, 0.5, 0.7):
            if (ceiling, approach) == (300.0, today.approach):
                continue
            policy = PollPolicy(base=base, ceiling=ceiling, floor=base / 4, approach=approach)
            variants.append((f"today's policy, max {ceiling:g} s, approach {approach:g}", policy))
    for name, policy in variants:
        print(row(name, run_policy(tasks, policy, args.seed), naive_mean), flush=True)

    new = PollPolicy.from_intervals(base, 300.0)
    print(
        f"\n2. Today and the new schedule (list every {new.list_seconds:g} s from "
        f"{new.list_min_watches} watches, up to {new.list_max_pages} pages; unlisted ceiling "
        f"{new.ceiling_for(listed=False):g} s), by tasks running at once in a workspace and the page "
        f"size the server really returns. Targets: calls <= {CALLS_TARGET:g}x naive 5 s, p99 <= "
        f"{P99_TARGET:g} s for every kind of task.\n"
    )
    print(WORKSPACE_HEADER)
    schedules = [
        ("today", Schedule(today)),
        ("**new**, pages of 100", Schedule(new, listing=True, page_size=100)),
        ("**new**, pages of 10", Schedule(new, listing=True, page_size=10)),
    ]
    for concurrency in args.concurrency:
        for name, schedule in schedules:
            out = run_workspace(tasks, concurrency, schedule, args.seed)
            row_text = workspace_row(
                f"{concurrency} at once, {name}", tasks, out, naive_mean, listing=schedule.listing
            )
            print(row_text, flush=True)

    print("\n3. The new schedule's own curve\n")
    print(WORKSPACE_HEADER)
    out = run_workspace(tasks, 1, Schedule(new), args.seed)
    print(
        workspace_row(
            "any, no list sweep (the unlisted ceiling alone)", tasks, out, naive_mean, listing=False
        ),
        flush=True,
    )
    for unlisted in (45.0, 60.0, 90.0):
        policy = replace(new, unlisted_ceiling=unlisted)
        out = run_workspace(tasks, 1, Schedule(policy, listing=True, page_size=100), args.seed)
        print(
            workspace_row(f"1 at once, unlisted ceiling {unlisted:g} s", tasks, out, naive_mean), flush=True
        )
    for concurrency in (10, 50):
        out = run_workspace(tasks, concurrency, Schedule(new, listing=True, fold_rows=False), args.seed)
        label = f"{concurrency} at once, pages of 100, rows only trigger polls (not folded)"
        print(workspace_row(label, tasks, out, naive_mean), flush=True)
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
