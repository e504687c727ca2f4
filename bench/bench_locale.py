"""Locale look-ups and ack latency: does a burst of commands from people never seen before slow
the acks? (issue 11)

Every ``/task`` needs the asker's Slack locale, which only ``users.info`` gives; the look-up must
stay off the ack path. Three processes as in ``bench_ack``: the load generator, ``taskbot serve``,
and the simulator plus a Slack stand-in whose ``users.info`` takes ``--users-info-delay`` seconds.
In one run: a burst from 200 users whose locales are cached (the baseline), then a burst from 200
new users, then the baseline again (drift check). Reports ack and command-to-card p50/p99 and the
new/baseline ratios.
A warm-up burst from the cached users goes first: the first burst after start-up is slower whoever
sends it. Run: ``python -m bench.bench_locale [--commands 200] [--users-info-delay 0.05]``.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx

from bench.bench_ack import SIGNING_SECRET, bot_env
from bench.common import (
    RawResult,
    bot_process,
    free_port,
    percentile,
    raw_burst,
    run_benchmark,
    services_process,
    summary_ms,
)
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import SlackStandIn


async def _cards(slack_url: str, channels: list[str], results: list[RawResult]) -> list[float]:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            recorded = (await http.get(slack_url + "/_recorded")).json()
            cards = {m["channel"]: m["wall"] for m in recorded if m["via"] == "chat.postMessage"}
            if all(c in cards for c in channels):
                break
            await asyncio.sleep(0.05)
    return [cards[c] - r.sent_wall for c, r in zip(channels, results, strict=True) if c in cards]


async def main(commands: int, users_info_delay: float) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with (
            services_process(
                "bench.services",
                "--users-info-delay",
                str(users_info_delay),
                "--known-users",
                str(commands),
            ) as urls,
            bot_process(bot_env(urls, Path(workdir)), free_port()) as bot_url,
        ):
            requester = SlackStandIn()
            requester.base_url = urls["slack"]
            warmup = [requester.slash_command(SIGNING_SECRET, sim.SEED_TASK_ID, channel_id="CWARMUP")]
            await raw_burst(bot_url, "/slack/events", warmup)
            cached = [f"UCACHED{i:05d}" for i in range(commands)]
            # /task help is answered in the ack; the look-up it starts afterwards fills the cache.
            await raw_burst(
                bot_url,
                "/slack/events",
                [
                    requester.slash_command(SIGNING_SECRET, "help", user_id=u, channel_id="CHELP")
                    for u in cached
                ],
            )
            # 4 look-ups at a time per workspace (LocaleResolver.per_team), each `users_info_delay` long.
            await asyncio.sleep(commands / 4 * users_info_delay + 2.0)

            async def burst(label: str, users: list[str]) -> tuple[list[RawResult], list[float]]:
                channels = [f"C{label}{i:05d}" for i in range(len(users))]
                requests = [
                    requester.slash_command(SIGNING_SECRET, sim.SEED_TASK_ID, channel_id=c, user_id=u)
                    for c, u in zip(channels, users, strict=True)
                ]
                results = await raw_burst(bot_url, "/slack/events", requests)
                assert all(r.status == 200 for r in results), {r.status for r in results}
                cards = await _cards(urls["slack"], channels, results)
                await asyncio.sleep(1.0)  # let the burst's background work end before the next
                return results, cards

            await burst("WARM", cached)  # the first burst after start-up is slower whoever sends it
            runs = {
                "cached (baseline)": await burst("BASEA", cached),
                "new users": await burst("NEWUS", [f"UNEW{i:05d}" for i in range(commands)]),
                "cached again": await burst("BASEB", cached),
            }
    print(
        f"/task bursts of {commands} commands; users.info takes {users_info_delay * 1000:.0f} ms; separate processes"
    )
    for label, (results, cards) in runs.items():
        print(f"  {label:18} ack:  {summary_ms([r.ack_seconds for r in results])}")
        print(f"  {'':18} card: {summary_ms(cards)} ({len(cards)} of {commands})")
    base_ack = [
        r.ack_seconds * 1000 for label in ("cached (baseline)", "cached again") for r in runs[label][0]
    ]
    new_ack = [r.ack_seconds * 1000 for r in runs["new users"][0]]
    for q in (50, 99):
        ratio = percentile(new_ack, q) / percentile(base_ack, q)
        print(f"  ack p{q} new / both cached bursts: {ratio:.2f}x")


if __name__ == "__main__":
    run_benchmark(main, commands=200, users_info_delay=0.05)
