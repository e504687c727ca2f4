"""Requests to taskbot are cheap to refuse (issue 8, section 2): cold start and unsigned floods.

Three processes (four with the flood): the load generator (raw sockets), ``taskbot serve`` and
the simulator plus Slack stand-in; the flooders get a process of their own.

* ``cold``: ack latency of the first burst of ``--commands`` ``/task`` commands right after
  ``taskbot serve`` starts (no warm-up), then of a second, identical burst on the warm bot:
  the same-run baseline.
* ``flood``: ack latency of ``/task help`` commands sent one at a time every 20 ms, first on
  a quiet bot (the baseline), then while 16 clients keep posting unsigned 6 MB bodies.

``--tree DIR`` runs the bot from another checkout, e.g. the commit before the fix:
``git worktree add /tmp/taskbot-before 0ef4eb6``.
Run: ``python -m bench.bench_requests cold|flood [--commands 500] [--tree DIR]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.bench_ack import SIGNING_SECRET, bot_env
from bench.common import bot_process, free_port, percentile, raw_burst, services_process, summary_ms
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import SlackStandIn

FLOOD_CLIENTS = 16
FLOOD_BYTES = 6 * 1024 * 1024


def _loadavg() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    return "?"


async def cold(bot_url: str, requester: SlackStandIn, commands: int) -> None:
    task_ids = [sim.SEED_TASK_ID, sim.RUNNING_TASK_ID, sim.FINISHING_TASK_ID]

    def burst(tag: str) -> list[tuple[bytes, dict[str, str]]]:
        return [
            requester.slash_command(SIGNING_SECRET, task_ids[i % 3], channel_id=f"C{tag}{i:07d}")
            for i in range(commands)
        ]

    first = await raw_burst(bot_url, "/slack/events", burst("A"))
    await asyncio.sleep(3)  # let the first burst's cards go out
    second = await raw_burst(bot_url, "/slack/events", burst("B"))
    for name, results in (("first burst after start", first), ("second burst (baseline)", second)):
        ok = sum(r.status == 200 for r in results)
        print(f"  {name}: {summary_ms([r.ack_seconds for r in results])}, {ok}/{commands} acked 200")
    ratio = percentile([r.ack_seconds for r in first], 99) / percentile([r.ack_seconds for r in second], 99)
    print(f"  p99 first / p99 second: {ratio:.2f}")


async def _flood_forever(url: str) -> None:
    parts = urlsplit(url)
    head = (
        f"POST /slack/events HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'0' * 64}\r\n"
        f"Content-Length: {FLOOD_BYTES}\r\n\r\n"
    ).encode()
    body = b"payload=" + b"a" * (FLOOD_BYTES - 8)

    async def client() -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                writer.write(head + body)
                await writer.drain()
                await reader.readline()
                writer.close()
            except (ConnectionError, OSError):
                await asyncio.sleep(0.001)

    await asyncio.gather(*(client() for _ in range(FLOOD_CLIENTS)))


async def _paced_help(bot_url: str, requester: SlackStandIn, commands: int) -> list[float]:
    acks = []
    for _ in range(commands):
        [result] = await raw_burst(
            bot_url, "/slack/events", [requester.slash_command(SIGNING_SECRET, "help")]
        )
        assert result.status == 200, result.status
        acks.append(result.ack_seconds)
        await asyncio.sleep(0.02)
    return acks


async def flood(bot_url: str, requester: SlackStandIn, commands: int) -> None:
    quiet = await _paced_help(bot_url, requester, commands)
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_requests", "_flood", bot_url
    )
    try:
        await asyncio.sleep(2)  # the flood is under way
        flooded = await _paced_help(bot_url, requester, commands)
    finally:
        flooder.terminate()
        await flooder.wait()
    print(f"  quiet (baseline):            {summary_ms(quiet)}")
    print(f"  {FLOOD_CLIENTS} clients x 6 MB unsigned: {summary_ms(flooded)}")
    print(f"  p99 flooded / p99 quiet: {percentile(flooded, 99) / percentile(quiet, 99):.2f}")


async def main(mode: str, commands: int, tree: str | None) -> None:
    print(f"{mode}: {commands} commands, bot from {tree or 'this checkout'}, load {_loadavg()}")
    with tempfile.TemporaryDirectory() as workdir:
        async with (
            services_process() as urls,
            bot_process(bot_env(urls, Path(workdir)), free_port(), tree=tree) as bot_url,
        ):
            requester = SlackStandIn()  # only builds signed requests; the served one is in the other process
            requester.base_url = urls["slack"]
            await (cold if mode == "cold" else flood)(bot_url, requester, commands)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_flood"]:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_flood_forever(sys.argv[2]))
        sys.exit(0)
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["cold", "flood"])
    parser.add_argument("--commands", type=int, default=None, help="500 for cold, 100 for flood")
    parser.add_argument("--tree", default=None, help="run the bot from this checkout (before/after)")
    args = parser.parse_args()
    asyncio.run(main(args.mode, args.commands or (500 if args.mode == "cold" else 100), args.tree))
