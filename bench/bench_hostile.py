"""Peak RSS of a bot-like process while 3 gzip bombs and 3 endless bodies arrive at once.

    python -m bench.bench_hostile            # --mib N: how far each hostile body goes (default 256)

A hostile server (this process) serves a gzip bomb (zeros, ~1/1000 on the wire) and a
"endless" plain body; each stops after ``--mib`` MiB so that the baseline ends at all. A child
process (the bot-like one) makes 3 + 3 concurrent ``get_task`` calls and reports its own peak
RSS (``ru_maxrss``) and what each call ended as:

* ``baseline``: the body read whole and decoded by httpx, as the client did before issue 8;
* ``capped``: ``MetaStudioClient`` as it is (1 MiB decoded cap, bounded inflation).

Ratios are against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

from pydantic import SecretStr

CHUNK = 1024 * 1024


async def serve(mib: int) -> tuple[asyncio.Server, int]:
    bomb = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * CHUNK
    packed = b"".join(bomb.compress(block) for _ in range(mib)) + bomb.flush()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            gz = b"ffffffff" in request.split(b"\r\n", 1)[0]
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            if gz:
                writer.write((head + "Content-Encoding: gzip\r\n\r\n").encode())
                for start in range(0, len(packed), 65536):
                    writer.write(packed[start : start + 65536])
                    await writer.drain()
            else:
                writer.write((head + "\r\n").encode() + b'{"task_name": "')
                for _ in range(mib):
                    writer.write(b"x" * CHUNK)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def child(mode: str, url: str) -> dict[str, object]:
    import httpx

    from bot.metastudio.client import MetaStudioClient
    from bot.metastudio.credentials import AkSk

    # Task ids: "f..." asks for the bomb, "a..." for the endless body (the server looks at the path).
    ids = ["f" * 32] * 3 + ["a" * 32] * 3
    started = time.monotonic()
    outcomes: list[str] = []
    if mode == "baseline":
        async with httpx.AsyncClient(timeout=60) as http:

            async def whole(task_id: str) -> str:
                response = await http.get(f"{url}/v2/p/ies/task/{task_id}")
                return f"read {len(response.content) // CHUNK} MiB"

            outcomes = list(await asyncio.gather(*(whole(i) for i in ids)))
    else:
        credentials = AkSk(
            project_id="0" * 32,
            access_key="BENCHAK000001",
            secret_key=SecretStr("s" * 40),
        )
        async with MetaStudioClient(
            endpoint=url, credentials=credentials, max_retries=0, call_deadline=60
        ) as client:

            async def capped(task_id: str) -> str:
                try:
                    await client.get_task(task_id)
                except Exception as exc:
                    return type(exc).__name__
                return "ok"

            outcomes = list(await asyncio.gather(*(capped(i) for i in ids)))
    return {
        "mode": mode,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": round(time.monotonic() - started, 2),
        "outcomes": outcomes,
    }


async def main(mib: int) -> None:
    server, port = await serve(mib)
    url = f"http://127.0.0.1:{port}"
    results = []
    async with server:
        for mode in ("baseline", "capped"):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.bench_hostile", "--child", mode, url, stdout=subprocess.PIPE
            )
            out, _ = await process.communicate()
            results.append(json.loads(out))
    base = results[0]["peak_rss_mib"]
    load = Path("/proc/loadavg").read_text().split()[:3]  # noqa: ASYNC240 - a benchmark, after the runs
    print(f"load average: {' '.join(load)}; each hostile body {mib} MiB decoded")
    print(f"{'mode':<9} {'peak RSS':>10} {'ratio':>6} {'time':>7}  outcomes")
    for row in results:
        peak = row["peak_rss_mib"]
        print(
            f"{row['mode']:<9} {peak:>7.0f} MiB {peak / base:>6.2f} {row['seconds']:>6}s  "
            f"{', '.join(row['outcomes'])}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "URL"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(*args.child))))
    else:
        asyncio.run(main(args.mib))
