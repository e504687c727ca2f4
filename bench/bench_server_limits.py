"""Signed requests while unauthenticated clients abuse the HTTP server, before and after ServerLimits.

    python -m bench.bench_server_limits          # --header-mib N (default 64), --slow N (default 1100)

A child process serves a small signed-request app (HMAC-SHA256 over the body, as Slack signs,
then 200) in one of two modes:

* ``baseline``: uvicorn as ``bot.servers.serve_asgi`` ran it before issue 21 (its defaults:
  httptools, no header limit, no request-read deadline, no connection cap);
* ``limits``: ``serve_asgi`` as it is (guarded h11, ``ServerLimits()``).

The child runs under systemd's default open-file limit (1,024) and reports its peak RSS.
Three scenarios per mode, each against a fresh child:

1. ``plain``: 2,000 signed requests over 20 keep-alive connections: requests/s (the cost of h11).
2. ``huge headers``: 3 clients each send a ``--header-mib`` MiB header, over and over, while
   50 signed requests go one after another: their latency, and the child's peak RSS.
3. ``slow clients``: ``--slow`` connections each send half a request line and stay, then 50
   signed requests: how many got a 200, and their latency.

Ratios are against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

SECRET = b"0f1e2d3c4b5a69780f1e2d3c4b5a6978"
BODY = b"command=%2Ftask&text=help&team_id=T0BENCH001&user_id=U0BENCH001&channel_id=C0BENCH001"


def _signed_request() -> bytes:
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET, b"v0:" + stamp.encode() + b":" + BODY, hashlib.sha256).hexdigest()
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: {signature}\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    stamp = headers.get(b"x-slack-request-timestamp", b"")
    expected = "v0=" + hmac.new(SECRET, b"v0:" + stamp + b":" + body, hashlib.sha256).hexdigest()
    ok = hmac.compare_digest(expected.encode(), headers.get(b"x-slack-signature", b""))
    await send({"type": "http.response.start", "status": 200 if ok else 401, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _child(mode: str, port: int) -> None:
    import uvicorn

    from bot.servers import serve_asgi

    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(sys.stdin.fileno(), stop.set)
    if mode == "limits":
        async with serve_asgi(app, port=port):
            print("ready", flush=True)
            await stop.wait()
    else:
        # serve_asgi before issue 21, verbatim but for the app.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
        sock.setblocking(False)
        config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="auto")
        server = uvicorn.Server(config)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await stop.wait()
        server.should_exit = True
        await task
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mib": round(peak, 1)}), flush=True)


def _start(mode: str, port: int) -> subprocess.Popen[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    child = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_server_limits", "--child", mode, "--port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        # The baseline logs a line per failed accept (EMFILE): thousands.
        stderr=None if os.environ.get("BENCH_CHILD_STDERR") else subprocess.DEVNULL,
        text=True,
        preexec_fn=limit,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def _stop(child: subprocess.Popen[str]) -> float:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("x\n")
    child.stdin.close()
    out = child.stdout.read()
    child.wait(30)
    return float(json.loads(out.strip().splitlines()[-1])["peak_rss_mib"])


async def _signed(port: int, timeout: float = 30.0) -> float | None:
    """Seconds to a 200 for one signed request on a new connection; None when it failed."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_signed_request())
            status = await reader.readline()
            writer.close()
    except (OSError, TimeoutError):
        return None
    return time.monotonic() - started if status.startswith(b"HTTP/1.1 200") else None


async def _plain(port: int) -> float:
    async def one_connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(_signed_request())
            await reader.readuntil(b"\r\n\r\n")
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(one_connection(100) for _ in range(20)))
    return 2000 / (time.monotonic() - started)


async def _huge_headers(port: int, mib: int) -> list[float | None]:
    line = b"X-Big: " + b"a" * (1024 * 1024 - 9) + b"\r\n"

    async def attacker() -> None:
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\n")
                for _ in range(mib):
                    writer.write(line)
                    await writer.drain()
                writer.write(b"\r\n")
                await writer.drain()
                writer.close()
            await asyncio.sleep(0)

    attackers = [asyncio.create_task(attacker()) for _ in range(3)]
    await asyncio.sleep(1.0)  # let the attack build up before measuring
    try:
        return [await _signed(port) for _ in range(50)]
    finally:
        for task in attackers:
            task.cancel()


async def _slow_clients(port: int, count: int) -> list[float | None]:
    held: list[asyncio.StreamWriter] = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /slack/ev")
            held.append(writer)
    try:
        return [await _signed(port, timeout=10.0) for _ in range(50)]
    finally:
        for writer in held:
            writer.close()


def _summary(latencies: list[float | None]) -> str:
    done = sorted(x for x in latencies if x is not None)
    if not done:
        return f"0/{len(latencies)} answered"
    p99 = done[min(len(done) - 1, int(len(done) * 0.99))]
    return f"{len(done)}/{len(latencies)} answered, p50 {statistics.median(done) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(mode: str, scenario: str, args: argparse.Namespace) -> tuple[str, float]:
    port = _free_port()
    child = _start(mode, port)
    try:
        if scenario == "plain":
            result = f"{await _plain(port):.0f} requests/s"
        elif scenario == "huge headers":
            result = _summary(await _huge_headers(port, args.header_mib))
        else:
            result = _summary(await _slow_clients(port, args.slow))
    finally:
        peak = _stop(child)
    return result, peak


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["baseline", "limits"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--header-mib", type=int, default=64)
    parser.add_argument("--slow", type=int, default=1100)
    parser.add_argument("--scenario", action="append", choices=["plain", "huge headers", "slow clients"])
    args = parser.parse_args()
    if args.child:
        await _child(args.child, args.port)
        return
    with open("/proc/loadavg") as load:  # noqa: ASYNC230 (once, before anything runs)
        print(f"load before: {' '.join(load.read().split()[:3])}")
    # The client side holds --slow connections itself.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.slow + 1024)), hard))
    for scenario in args.scenario or ("plain", "huge headers", "slow clients"):
        for mode in ("baseline", "limits"):
            result, peak = await _run(mode, scenario, args)
            print(f"{scenario:<13} {mode:<9} {result}; child peak RSS {peak:.0f} MiB", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
