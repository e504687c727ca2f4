"""The MetaStudio client's HTTP stack (aiohttp) over loopback: kept-alive connections, and the
proxy the environment names (``HTTP_PROXY``/``NO_PROXY``, as httpx honoured them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from bot.config import CloudCredentials, CredentialKind
from bot.metastudio.client import MetaStudioClient

TASK_ID = "b" * 32
PROJECT = "0123456789abcdef0123456789abcdef"
BODY = json.dumps({"task_id": TASK_ID, "task_status": "RUNNING", "total_count": 4}).encode()


@dataclass
class Seen:
    request_lines: list[str] = field(default_factory=list)
    connections: int = 0


RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
    + BODY
)


class _KeepAlive(asyncio.Protocol):
    """Answers every request head on a connection with one small task; never closes first."""

    def __init__(self, seen: Seen) -> None:
        self.seen = seen
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.seen.connections += 1

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\r\n\r\n" in self.pending:
            head, _, self.pending = self.pending.partition(b"\r\n\r\n")
            self.seen.request_lines.append(head.split(b"\r\n", 1)[0].decode())
            self.transport.write(RESPONSE)


@contextlib.asynccontextmanager
async def keepalive_server() -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    server = await asyncio.get_running_loop().create_server(lambda: _KeepAlive(seen), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    finally:
        server.close()


def client(url: str) -> MetaStudioClient:
    credentials = CloudCredentials(
        kind=CredentialKind.AKSK,
        project_id=PROJECT,
        access_key="TRANSPORTAK01",
        secret_key=SecretStr("k" * 40),
    )
    return MetaStudioClient(endpoint=url, credentials=credentials, max_retries=0)


async def test_calls_reuse_one_kept_alive_connection() -> None:
    async with keepalive_server() as (url, seen), client(url) as c:
        for _ in range(20):
            assert (await c.get_task(TASK_ID)).value.task_id == TASK_ID
        # Concurrent calls open a connection each, then those are reused too.
        await asyncio.gather(*(c.get_task(TASK_ID) for _ in range(4)))
        await asyncio.gather(*(c.get_task(TASK_ID) for _ in range(4)))
    assert len(seen.request_lines) == 28
    assert seen.connections <= 4


async def test_the_proxy_the_environment_names_carries_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in proxy answers itself; what matters is that the request reached it, in absolute form."""
    async with keepalive_server() as (proxy_url, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("http_proxy", raising=False)
        async with client("http://metastudio.invalid:8080") as c:
            fetched = await c.get_task(TASK_ID)
    assert fetched.value.task_id == TASK_ID
    assert seen.request_lines == [
        f"GET http://metastudio.invalid:8080/v2/{PROJECT}/ies/task/{TASK_ID} HTTP/1.1"
    ]


async def test_no_proxy_exempts_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    async with keepalive_server() as (proxy_url, proxied), keepalive_server() as (url, direct):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("http_proxy", raising=False)
        async with client(url) as c:
            await c.get_task(TASK_ID)
    assert proxied.request_lines == []
    assert direct.request_lines == [f"GET /v2/{PROJECT}/ies/task/{TASK_ID} HTTP/1.1"]
