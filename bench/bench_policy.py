"""The poll policy, simulated: calls per finished task and alert delay over 10,000 tasks (issue 12).

A discrete-event simulation of the real ``bot.followups.polling`` code (``after_progress`` and
``PollPolicy.jittered``, called exactly as ``bot.followups`` calls them) against a fixed-seed workload:

* durations log-uniform from 1 minute to 3 hours (time spent processing);
* throughput noise of ±30%: the rate is piecewise constant over one-minute segments, each
  segment's rate multiplied by a uniform factor in [0.7, 1.3];
* 20% queued for up to 10 minutes (uniform) before they start: no ``begin_time``, no counts;
* 10% stalling once, for 5 to 20 minutes (uniform), at a uniform point of their run (20%-80%);
* 5% ending early: ``end_time`` is set, and the counts freeze, at 30%-95% of the items.

Each task is watched from its creation; the first poll is at once (the card's fetch), and every
poll is one call. A task counts as seen finished by the first poll at or after its real end
(the counts complete, or ``end_time`` set, as ``Task.is_finished`` judges it). Tasks do not
share anything in this model (no rate limit is reached), so each task's events are run in
time order on their own. The fixed-interval pollers are computed exactly: their n-th poll is at
``n * interval``.

Reports calls per finished task for the policy at several settings (the trade-off curve),
for a naive fixed 5 s poll and a fixed 10 s poll, and the alert delay after the real end
(p50, p95, p99), all against the targets: calls <= 0.2x naive 5 s, p95 <= 10 s, p50 <= 3 s.

Run: ``python -m bench.bench_policy`` (``--tasks``, ``--seed``; about 30 s on 2 cores).
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass

from bench.common import percentile
from bot.followups.polling import Cadence, PollPolicy, after_progress

SEGMENT_SECONDS = 60.0
NOISE = 0.3
QUEUED_SHARE, QUEUED_MAX = 0.20, 600.0
STALL_SHARE, STALL_MIN, STALL_MAX = 0.10, 300.0, 1200.0
EARLY_SHARE = 0.05


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


def row(name: str, out: Outcome, naive_mean: float) -> str:
    mean = statistics.fmean(out.calls)
    d = out.delays
    return (
        f"| {name} | {mean:.1f} | {mean / naive_mean:.3f} | {percentile(d, 50):.1f} | "
        f"{percentile(d, 95):.1f} | {percentile(d, 99):.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
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
        f"mean time to end {statistics.fmean(t.end for t in tasks):.0f} s"
    )
    print("targets: calls <= 0.2x naive 5 s, alert delay p95 <= 10 s, p50 <= 3 s\n")
    print("| poller | calls per finished task | x naive 5 s | delay p50 s | p95 s | p99 s |")
    print("|---|---|---|---|---|---|")
    print(row("naive fixed 5 s", naive5, naive_mean))
    print(row("fixed 10 s", run_fixed(tasks, 10.0), naive_mean))
    default = PollPolicy.from_intervals(base, 300.0)
    variants: list[tuple[str, PollPolicy]] = [
        (f"**policy, defaults** (max 300 s, approach {default.approach:g})", default)
    ]
    for ceiling in (60.0, 120.0, 300.0):
        for approach in (0.3, 0.5, 0.7):
            if (ceiling, approach) == (300.0, default.approach):
                continue
            policy = PollPolicy(base=base, ceiling=ceiling, floor=base / 4, approach=approach)
            variants.append((f"policy, max {ceiling:g} s, approach {approach:g}", policy))
    for name, policy in variants:
        print(row(name, run_policy(tasks, policy, args.seed), naive_mean), flush=True)
    out = run_policy(tasks, default, args.seed)
    print("\ndefault policy, alert delay by kind of task (p50 / p95 / p99 s, calls):")
    kinds = {
        "plain": lambda w: not (w.queued or w.stalled or w.early),
        "queued": lambda w: w.queued,
        "stalled": lambda w: w.stalled,
        "early end": lambda w: w.early,
    }
    for kind, pick in kinds.items():
        idx = [i for i, w in enumerate(tasks) if pick(w)]
        d = [out.delays[i] for i in idx]
        c = statistics.fmean(out.calls[i] for i in idx)
        print(
            f"  {kind:9s} n={len(idx):5d}: {percentile(d, 50):6.1f} / {percentile(d, 95):6.1f} / "
            f"{percentile(d, 99):6.1f}, {c:.1f} calls"
        )
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
