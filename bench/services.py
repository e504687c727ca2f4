"""The MetaStudio simulator and the Slack stand-in in their own process, for benchmarks.

Prints one JSON line ``{"simulator": url, "slack": url}`` once both listen, then serves until
terminated. Keeping them out of the load generator's process keeps its measurements honest.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from bot.devtools.simulator import Simulator
from bot.devtools.slack_standin import SlackStandIn
from bot.servers import serve_asgi


async def main() -> int:
    slack = SlackStandIn()
    # ``--users-info-delay SECONDS``: how long users.info takes (bench_locale), 0 by default.
    if "--users-info-delay" in sys.argv:
        slack.users_info_delay = float(sys.argv[sys.argv.index("--users-info-delay") + 1])
    # ``--known-users N``: bench_locale's user ids, half en-US and half zh-CN, so users.info
    # answers them (an unknown id gets user_not_found, which would measure the failure path).
    if "--known-users" in sys.argv:
        count = int(sys.argv[sys.argv.index("--known-users") + 1])
        for prefix in ("UCACHED", "UNEW"):
            slack.locales.update({f"{prefix}{i:05d}": ("en-US", "zh-CN")[i % 2] for i in range(count)})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve_asgi(Simulator().app) as simulator_url, serve_asgi(slack.app) as slack_url:
        slack.base_url = slack_url
        print(json.dumps({"simulator": simulator_url, "slack": slack_url}), flush=True)
        await stop.wait()
    return 0


if __name__ == "__main__":
    from bot.cli import run_fast

    sys.exit(run_fast(main()))
