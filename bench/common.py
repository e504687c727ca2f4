"""Helpers shared by the benchmarks: the command line, percentiles, a bot process, in-process settings
and schema, the simulator's import tasks, output."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from bot.config import Settings
from bot.db.base import Database
from bot.db.schema import ensure_schema
from bot.devtools import simulator as sim
from bot.devtools.slack_standin import DEMO_BOT_TOKEN


def run_benchmark(
    main: Callable[..., Coroutine[Any, Any, object]], **defaults: int | float | str | bool | list[float]
) -> None:
    """``python -m bench.<name>``: one ``--option`` per keyword of ``defaults`` (``_`` becomes
    ``-``; typed as its default: a bool is a switch, a list takes one or more values), then
    ``asyncio.run(main(**options))``. ``--help`` shows the first paragraph of the benchmark's
    docstring."""
    doc = sys.modules[main.__module__].__doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    for name, default in defaults.items():
        flag = f"--{name.replace('_', '-')}"
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", default=default)
        elif isinstance(default, list):
            parser.add_argument(flag, type=type(default[0]), nargs="+", default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    asyncio.run(main(**vars(parser.parse_args())))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
        f"max {max(ms):.1f} ms, mean {statistics.fmean(ms):.1f} ms (n={len(ms)})"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_settings(urls: Mapping[str, str], database_url: str, **overrides: Any) -> Settings:
    """Settings for a bot run in the benchmark's own process against ``services_process``'
    simulator and Slack stand-in (``urls``), with the demo credentials and warnings-only logs;
    ``overrides`` set the rest (polling, rates, the signing secret a load generator signs with)."""
    values: dict[str, Any] = {
        "slack_bot_token": SecretStr(DEMO_BOT_TOKEN),
        "slack_signing_secret": SecretStr(secrets.token_hex(16)),
        "slack_api_url": urls["slack"] + "/api/",
        "cloud_ak": sim.DEMO_ACCESS_KEY,
        "cloud_sk": SecretStr(sim.DEMO_SECRET_KEY),
        "cloud_project_id": sim.DEMO_PROJECT_ID,
        "endpoint": urls["simulator"],
        "database_url": database_url,
        "log_level": "WARNING",
    }
    return Settings(**{**values, **overrides})


def import_task(
    task_id: str,
    name: str,
    *,
    total_count: int,
    duration_seconds: float,
    begin_time_ms: int,
    failure_rate: float = 0.0,
    ends_early_at_seconds: float | None = None,
) -> sim.SimTask:
    """A simulated import of ``total_count`` intent questions, the kind of task every benchmark
    watches; it ends ``ends_early_at_seconds`` after its begin when that is set."""
    return sim.SimTask(
        task_id,
        name,
        "knowledge-intent-question-create",
        total_count,
        duration_seconds,
        begin_time_ms,
        failure_rate,
        ends_early_at_seconds=ends_early_at_seconds,
    )


async def migrate_schema(database_url: str) -> None:
    """The current schema in ``database_url``, migrated as ``taskbot serve`` migrates on start.

    Preload rows only after this: a database the models made directly (``create_all``) has no
    Alembic revision, and the bot would then try to adopt it as a 0.1.0 database."""
    database = Database(database_url)
    try:
        await ensure_schema(database.engine, migrate_on_start=True)
    finally:
        await database.dispose()


async def wait_for_ok(http: httpx.AsyncClient, url: str, *, attempts: int, failure: str) -> None:
    """Ask ``url`` every 50 ms until it answers 200; ``RuntimeError(failure)`` after ``attempts``."""
    for _ in range(attempts):
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(url)).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(failure)


@contextlib.asynccontextmanager
async def bot_process(env: dict[str, str], port: int, *, tree: str | None = None) -> AsyncIterator[str]:
    """``taskbot serve`` as its own process, so the load generator does not share its event loop.

    ``tree``: run the bot from another checkout (an older commit, for a before/after figure);
    ``-m`` puts the working directory first on the path, ahead of the editable install."""
    full_env = {**os.environ, **env, "PORT": str(port), "TASKBOT_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "serve", env=full_env, stdout=asyncio.subprocess.DEVNULL, cwd=tree
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            await wait_for_ok(http, f"{url}/healthz", attempts=400, failure="taskbot serve did not start")
        yield url
    finally:
        process.terminate()
        await process.wait()


@contextlib.asynccontextmanager
async def services_process(
    module: str = "bench.services", *args: str, start_timeout: float = 30
) -> AsyncIterator[dict[str, str]]:
    """Simulator and Slack stand-in in their own process (``python -m module *args``), which
    prints their URLs as one JSON line once it serves them; yields those URLs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), start_timeout)
        yield json.loads(line)
    finally:
        process.terminate()
        await process.wait()


@dataclass
class RawResult:
    sent_wall: float
    ack_seconds: float
    status: int


async def raw_burst(url: str, path: str, requests: Sequence[tuple[bytes, dict[str, str]]]) -> list[RawResult]:
    """Send every request at once on its own pre-opened connection; time each response.

    Raw asyncio streams keep the load generator's own cost per request in microseconds, so the
    figures are the server's, not the client library's.
    """
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    connections = [await asyncio.open_connection(host, port) for _ in requests]
    payloads = []
    for body, headers in requests:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        payloads.append(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
    sent: list[tuple[float, float]] = []
    for (_, writer), payload in zip(connections, payloads, strict=True):
        sent.append((time.perf_counter(), time.time()))
        writer.write(payload)

    async def read(index: int, reader: asyncio.StreamReader) -> RawResult:
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        if length:
            await reader.readexactly(length)
        elapsed = time.perf_counter() - sent[index][0]
        return RawResult(sent[index][1], elapsed, int(status_line.split()[1]))

    results = await asyncio.gather(*(read(i, reader) for i, (reader, _) in enumerate(connections)))
    for _, writer in connections:
        writer.close()
    return list(results)
