"""Ack latency: a burst of ``/task`` commands at a bot running as its own process.

Three processes: the load generator (this one, raw sockets), ``taskbot serve``, and the
simulator plus Slack stand-in. Reports ack latency (until the bot's HTTP response) and
command-to-card time (until the stand-in received the card), p50 and p99.
Run: ``python -m bench.bench_ack [--commands 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import httpx

from bench.common import bot_process, free_port, raw_burst, services_process, summary_ms
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_BOT_TOKEN, SlackStandIn

SIGNING_SECRET = "be0c4be0c4be0c4be0c4be0c4be0c4be"  # 32 hex characters, the shape Slack issues


def bot_env(urls: dict[str, str], workdir: Path) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": DEMO_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": urls["slack"] + "/api/",
        "HUAWEICLOUD_SDK_AK": sim.DEMO_ACCESS_KEY,
        "HUAWEICLOUD_SDK_SK": sim.DEMO_SECRET_KEY,
        "HUAWEICLOUD_SDK_PROJECT_ID": sim.DEMO_PROJECT_ID,
        "METASTUDIO_ENDPOINT": urls["simulator"],
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        "TASKBOT_API_RATE": "1000",
    }


async def main(commands: int, text: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with (
            services_process() as urls,
            bot_process(bot_env(urls, Path(workdir)), free_port()) as bot_url,
        ):
            requester = SlackStandIn()  # only builds signed requests; the served one is in the other process
            requester.base_url = urls["slack"]
            task_ids = [sim.SEED_TASK_ID, sim.RUNNING_TASK_ID, sim.FINISHING_TASK_ID]
            warmup = [requester.slash_command(SIGNING_SECRET, sim.SEED_TASK_ID, channel_id="CWARMUP")]
            await raw_burst(bot_url, "/slack/events", warmup)  # Bolt's first request runs auth.test
            channels = [f"C{i:08d}" for i in range(commands)]
            requests = [
                requester.slash_command(SIGNING_SECRET, text or task_ids[i % 3], channel_id=channel)
                for i, channel in enumerate(channels)
            ]
            results = await raw_burst(bot_url, "/slack/events", requests)
            assert all(r.status == 200 for r in results), {r.status for r in results}
            if text:
                print(f"/task {text}: {commands} commands answered in the ack itself")
                print(f"  ack:             {summary_ms([r.ack_seconds for r in results])}")
                return
            async with httpx.AsyncClient() as http:
                for _ in range(600):
                    recorded = (await http.get(urls["slack"] + "/_recorded")).json()
                    cards = {m["channel"]: m["wall"] for m in recorded if m["via"] == "chat.postMessage"}
                    if all(c in cards for c in channels):
                        break
                    await asyncio.sleep(0.05)
            card_times = [
                cards[c] - r.sent_wall for c, r in zip(channels, results, strict=True) if c in cards
            ]
    print(f"/task burst of {commands} commands; bot, services and load generator in separate processes")
    print(f"  ack:             {summary_ms([r.ack_seconds for r in results])}")
    print(f"  command-to-card: {summary_ms(card_times)} ({len(card_times)} of {commands} cards)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--text", default=None, help="send this command text instead of task ids (e.g. help)")
    args = parser.parse_args()
    asyncio.run(main(args.commands, args.text))
