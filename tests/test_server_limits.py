"""The HTTP server sheds abuse before the signature check: raw sockets against real servers.

A huge request line or header gets 400 and a closed connection, at once; a request that
trickles in is closed after ``request_read_seconds``; past ``max_connections`` the connection
that has waited longest for its request is closed, so slow clients cannot starve the rest.
The last test runs ``taskbot serve`` as a process under systemd's open-file limit scaled down
(256) with more slow connections than that, and a signed ``/task`` still gets its ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from bot.devtools import simulator as sim
from bot.devtools.slack_standin import SlackStandIn
from bot.servers import ServerLimits, ServerStartupFailed, serve_asgi
from tests.support.cli import free_port, serving_env, stop_cli
from tests.support.waiting import eventually

SIGNING_SECRET = "c11e5e5c11e5e5c11e5e5c11e5e5c11e"
FAST = ServerLimits(request_read_seconds=0.5, max_connections=20)


async def hello(_: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


@contextlib.asynccontextmanager
async def small_server(limits: ServerLimits = FAST) -> AsyncIterator[tuple[str, int]]:
    async with serve_asgi(Starlette(routes=[Route("/", hello)]), limits=limits) as url:
        yield "127.0.0.1", int(url.rsplit(":", 1)[1])


@contextlib.asynccontextmanager
async def failing_startup(_: Starlette) -> AsyncIterator[None]:
    raise RuntimeError("the database is not there")
    yield


async def test_a_failed_startup_raises_in_the_caller_and_the_loop_serves_on() -> None:
    # uvicorn ends a failed startup with sys.exit(3); out of a task that stopped the event loop
    # itself, and with it every other server and fixture on it (a test's tmp_path leaked into
    # every later test of that pytest worker).
    with pytest.raises(ServerStartupFailed) as failed:
        async with serve_asgi(Starlette(lifespan=failing_startup)):
            pytest.fail("a server whose startup failed was handed out")
    assert failed.value.exit_code == 3
    async with small_server() as (host, port), httpx.AsyncClient() as http:
        assert (await http.get(f"http://{host}:{port}/")).text == "hello"


async def _closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sent until it closed the connection; fails if it stays open.

    A server that closes with our request unread makes the kernel reset the connection, which
    may drop its 400 before we read it: a reset counts as closed, with what was read so far.
    """
    received = b""
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                received += chunk
    return received


def _refused(answer: bytes) -> bool:
    return answer == b"" or answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 "))


async def _send_ignoring_reset(writer: asyncio.StreamWriter, data: bytes) -> None:
    # The server may close while we still send: that is the point.
    with contextlib.suppress(ConnectionError):
        writer.write(data)
        await writer.drain()


@pytest.mark.parametrize("where", ["header", "url"])
async def test_a_huge_header_or_url_is_refused_at_once(where: str) -> None:
    huge = "a" * (1024 * 1024)
    request = (
        f"GET /?q={huge} HTTP/1.1\r\nHost: x\r\n\r\n"
        if where == "url"
        else f"GET / HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n"
    ).encode()
    async with small_server() as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        started = time.monotonic()
        await _send_ignoring_reset(writer, request)
        answer = await _closed_by_server(reader, within=5)
        took = time.monotonic() - started
        writer.close()
    assert _refused(answer), answer[:100]
    # Refused on the bound, not after the whole megabyte was parsed and handed on.
    assert took < FAST.request_read_seconds, took


async def test_many_small_headers_are_bounded_too() -> None:
    headers = "".join(f"X-H{i}: v\r\n" for i in range(5000))
    async with small_server() as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        await _send_ignoring_reset(writer, f"GET / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
        answer = await _closed_by_server(reader, within=5)
        writer.close()
    assert _refused(answer), answer[:100]


@pytest.mark.parametrize("phase", ["first request", "after keep-alive"])
async def test_a_request_that_trickles_in_is_closed(phase: str) -> None:
    async with small_server() as (host, port):
        reader, writer = await asyncio.open_connection(host, port)
        if phase == "after keep-alive":
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await reader.readuntil(b"hello")).startswith(b"HTTP/1.1 200 ")
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()

        async def trickle() -> None:
            # A byte every 50 ms: each one would reset a plain idle timeout.
            with contextlib.suppress(ConnectionError):
                while True:
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        try:
            assert await _closed_by_server(reader, within=10) == b""
        finally:
            sender.cancel()
            writer.close()
    assert time.monotonic() - started >= FAST.request_read_seconds * 0.9


async def test_past_the_limit_the_longest_waiting_connection_goes() -> None:
    async with small_server() as (host, port):
        idle = [await asyncio.open_connection(host, port) for _ in range(FAST.connections() * 2)]
        for _, writer in idle:
            writer.write(b"GET / HTTP/1.1\r\n")
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://{host}:{port}/")
        assert response.text == "hello"
        # The first half were shed as the second half arrived; the newest still wait.
        oldest_reader = idle[0][0]
        assert await _closed_by_server(oldest_reader, within=5) == b""
        assert not idle[-1][1].is_closing()
        for _, writer in idle:
            writer.close()


async def test_a_burst_of_connections_is_shed_down_to_the_limit() -> None:
    # A read deadline far away: only shedding closes anything here.
    async with small_server(ServerLimits(request_read_seconds=60, max_connections=20)) as (host, port):
        # Connected while the loop is held, so the server accepts all 200 in one or two turns
        # (as under a real flood): each arrival must shed a different waiting connection.
        burst = [socket.create_connection((host, port)) for _ in range(200)]
        for sock in burst:
            sock.setblocking(False)

        def open_on_server() -> int:
            still = 0
            for sock in burst:
                try:
                    still += sock.recv(1) != b""
                except BlockingIOError:
                    still += 1
                except ConnectionError:
                    pass
            return still

        await eventually(lambda: open_on_server() <= 20, within=5, what="the burst shed")
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://{host}:{port}/")).text == "hello"
        for sock in burst:
            sock.close()


def _low_file_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def test_serve_acks_signed_requests_while_slow_clients_hold_more_than_its_file_limit() -> None:
    slack = SlackStandIn()
    port = free_port()
    async with serve_asgi(sim.Simulator().app) as simulator_url, serve_asgi(slack.app) as slack_url:
        slack.base_url = slack_url
        env = serving_env(
            SIGNING_SECRET,
            simulator_url,
            slack.api_url,
            DATABASE_URL="sqlite+aiosqlite:///:memory:",
            PORT=str(port),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_low_file_limit,
        )
        slow: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                for _ in range(300):
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
                else:
                    pytest.fail("taskbot serve did not come up")
                # More slow clients than the process has file descriptors, in bursts.
                for _ in range(3):
                    burst = await asyncio.gather(
                        *(asyncio.open_connection("127.0.0.1", port) for _ in range(100))
                    )
                    for _, writer in burst:
                        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
                    slow += burst
                for attempt in range(3):
                    body, headers = slack.slash_command(SIGNING_SECRET, sim.SEED_TASK_ID)
                    started = time.monotonic()
                    response = await http.post(
                        f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers
                    )
                    assert response.status_code == 200, (attempt, response.text)
                    # Slack's own bound on an ack.
                    assert time.monotonic() - started < 3.0
                await slack.wait_for_messages(3, timeout=10)
                huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n"
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                await _send_ignoring_reset(writer, huge)
                assert _refused(await _closed_by_server(reader, within=5))
                writer.close()
        finally:
            for _, writer in slow:
                writer.close()
            code, out, err = await stop_cli(process)
    assert code == 0, err
    assert "Traceback" not in out + err


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.send_text(await websocket.receive_text())


async def test_a_websocket_outlives_the_request_read_deadline() -> None:
    # The read deadline is for the upgrade request; left armed, it closed every websocket (the
    # Slack stand-in's Socket Mode connections) request_read_seconds after it opened.
    async with (
        serve_asgi(Starlette(routes=[WebSocketRoute("/ws", echo)]), limits=FAST) as url,
        aiohttp.ClientSession() as session,
        session.ws_connect(url + "/ws") as websocket,
    ):
        deadline = time.monotonic() + 3 * FAST.request_read_seconds
        exchanged = 0
        while time.monotonic() < deadline:
            await websocket.send_str(f"ping {exchanged}")
            assert await websocket.receive_str(timeout=5) == f"ping {exchanged}"
            exchanged += 1
            await asyncio.sleep(0.1)
        assert not websocket.closed and exchanged > 1
