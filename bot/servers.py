"""Run an ASGI app under uvicorn on a real socket, inside the current event loop.

The demo, the tests and the benchmarks all need several servers (bot, simulator, Slack
stand-in) side by side on loopback; this is the one way they are started and stopped.

Every server runs with ``ServerLimits``, because the bot's port takes requests from anyone
before the signature is checked. What uvicorn 0.55 offers and what is added here:

- Header size: uvicorn's default parser (httptools) has no limit, so a 64 MB URL or header was
  buffered in full. h11's ``h11_max_incomplete_event_size`` bounds only a head still
  incomplete after a read, so a 200 KB head arriving in one read would pass; ``_GuardedH11``
  counts the bytes up to the blank line that ends the head and answers 431 and closes past
  ``max_header_bytes``.
- Header (and body) read time: uvicorn has none, so a client that sends a byte now and then
  held its connection and file descriptor forever. ``_GuardedH11`` closes a connection whose
  request is not complete ``request_read_seconds`` after it opened or after the previous
  response (Apache's ``mod_reqtimeout``, nginx's ``client_header_timeout``/``client_body_timeout``).
  A websocket upgrade ends the bound: the connection then belongs to the websocket (the Slack
  stand-in's Socket Mode), which must stay open however long it lives.
- Connections: at ``max_connections`` (half the open-file limit by default, the rest is for
  the database, MetaStudio and Slack) a new connection closes the oldest one still waiting for
  its request, as nginx reuses idle keep-alive connections when it runs out. A slow client is
  what gets closed; a signed request arrives in full within milliseconds and is served. uvicorn's
  ``limit_concurrency`` is left off: it counts open connections, so idle ones would turn every
  signed request into a 503.
- Backlog: the listen queue is also how many connections the event loop accepts in one go
  (asyncio's accept loop; libuv's drains the queue), and a connection runs
  ``connection_made``, where shedding happens, only two or three loop turns after its accept.
  So the queue is kept at a sixteenth of the open-file limit (64 under 1,024): three batches
  on top of ``max_connections`` stay under the limit. Hitting the limit is what must not
  happen: asyncio then logs and re-schedules every pending accept (48,000 errors in one run
  of ``bench/bench_server_limits.py``), and libuv drops pending connections.
- Keep-alive: uvicorn's ``timeout_keep_alive``, set explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ServerLimits", "ServerStartupFailed", "serve_asgi"]

log = logging.getLogger("taskbot.server")

# Of the open-file limit: half for inbound connections, three sixteenths for the accepts not
# yet shed (three batches), the rest for the database pool, outbound HTTP and files.
_INBOUND_SHARE: Final = 0.5
_ACCEPT_SHARE: Final = 1 / 16


def _file_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return 16_384 if soft == resource.RLIM_INFINITY else int(soft)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one client may hold of the server. Slack's requests are far inside every bound:
    headers under 2 KB, sent in full at once, one at a time per connection."""

    # Request line plus headers; 16 KB is h11's default and nginx's large_client_header_buffers.
    max_header_bytes: int = 16 * 1024
    # From a connection's start (or the end of its previous response) to its complete request.
    request_read_seconds: float = 10.0
    # Idle keep-alive after a response; uvicorn's default, stated here.
    keep_alive_seconds: int = 5
    # None: half the process's open-file limit (512 under systemd's default 1,024).
    max_connections: int | None = None
    # None: a sixteenth of the open-file limit, at most 1,024 (64 under systemd's default).
    backlog: int | None = None

    def connections(self) -> int:
        if self.max_connections is not None:
            return self.max_connections
        return max(16, int(_file_limit() * _INBOUND_SHARE))

    def accept_batch(self) -> int:
        if self.backlog is not None:
            return self.backlog
        return min(1024, max(8, int(_file_limit() * _ACCEPT_SHARE)))


class _GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a request-read deadline and oldest-waiting-first shedding.

    A subclass per server (``_protocol_for``) carries that server's limits; the shared set of
    open connections is uvicorn's own ``server_state.connections``.
    """

    limits: ClassVar[ServerLimits]
    max_connections: ClassVar[int]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._read_timer: asyncio.TimerHandle | None = None
        self.waiting_since: float | None = None
        # Bytes of the current request's head so far (None once its blank line has been seen),
        # and the last bytes of the previous read, in case the blank line straddles two reads.
        self._head_bytes: int | None = 0
        self._head_tail = b""
        super().connection_made(transport)
        self._await_request()
        if len(self.connections) > self.max_connections:
            self._shed()

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is not None and self._head_too_large(data):
            self._refuse_head()
            return
        super().data_received(data)
        if self.conn.their_state in (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR):
            self._request_read()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Keep-alive: the next request, unless already read from a pipeline, gets the same bound.
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._request_read()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The request was read in full and the transport is the websocket's from here on: the
        # read deadline and shedding would close a live websocket ``request_read_seconds`` in.
        self._request_read()
        super().handle_websocket_upgrade(event)

    def _head_too_large(self, data: bytes) -> bool:
        assert self._head_bytes is not None
        seen = self._head_tail + data
        end = seen.find(b"\r\n\r\n")
        if end == -1:
            self._head_bytes += len(data)
            self._head_tail = seen[-3:]
        else:
            self._head_bytes += end + 4 - len(self._head_tail)
        too_large = self._head_bytes > self.limits.max_header_bytes
        if end != -1:
            self._head_bytes = None
        return too_large

    def _refuse_head(self) -> None:
        self._request_read()
        self._head_bytes = None
        self.transport.write(_HEAD_TOO_LARGE)
        self.transport.close()

    def _await_request(self) -> None:
        self._request_read()
        self._head_bytes, self._head_tail = 0, b""
        self.waiting_since = self.loop.time()
        self._read_timer = self.loop.call_later(self.limits.request_read_seconds, self._too_slow)

    def _request_read(self) -> None:
        self.waiting_since = None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _too_slow(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            # Closed without an answer, as nginx does on client_header_timeout; a slow client
            # is not worth a response.
            self.transport.close()

    def _shed(self) -> None:
        """Close the connection that has waited longest for its request (this one if no other waits)."""
        waiting = [
            other
            for other in self.connections
            if isinstance(other, _GuardedH11) and other is not self and other.waiting_since is not None
        ]
        oldest = min(waiting, key=lambda other: other.waiting_since or 0.0, default=self)
        # Its connection_lost comes a loop turn later; until then the next arrivals in this
        # turn must pick another one, or many arrivals would shed just this one.
        oldest._request_read()
        oldest.transport.close()


_HEAD_TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 32\r\n\r\nRequest header fields too large\n"
)


def _protocol_for(limits: ServerLimits) -> type[_GuardedH11]:
    return type(
        "GuardedH11",
        (_GuardedH11,),
        {"limits": limits, "max_connections": limits.connections()},
    )


class ServerStartupFailed(Exception):
    """The app's lifespan startup failed; uvicorn has logged why."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(f"the server's startup failed (uvicorn exit code {exit_code}); its log says why")
        self.exit_code = exit_code


async def _serve_without_exiting(server: uvicorn.Server, sock: socket.socket) -> None:
    """``server.serve``, with uvicorn's ``sys.exit`` on a failed startup turned into an exception.

    A ``SystemExit`` raised inside a task is not kept in the task: asyncio re-raises it out of
    the event loop, which stops every other server, request and test fixture on that loop.
    """
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise ServerStartupFailed(exc.code if isinstance(exc.code, int) else 1) from None


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yields its base URL, e.g. ``http://127.0.0.1:53211``.

    Port 0 picks a free port. The socket is bound before uvicorn starts, so the URL is valid
    the moment it is yielded. Raises ``ServerStartupFailed`` when the app's startup fails.
    """
    limits = limits or ServerLimits()
    # IPPROTO_TCP explicitly: uvicorn sets TCP_NODELAY only on sockets whose proto says TCP (42 ms vs 0.2 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(limits.accept_batch())
    sock.setblocking(False)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=5,
        http=_protocol_for(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=limits.keep_alive_seconds,
        backlog=limits.accept_batch(),
    )
    server = uvicorn.Server(config)
    # Signals belong to the process that owns the loop, not to one of several servers inside it.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(_serve_without_exiting(server, sock))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            sock.close()
