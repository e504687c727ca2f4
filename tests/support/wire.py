"""What the MetaStudio client put on the wire, seen by a TCP relay on loopback in front of a server.

``relay(target)`` yields a ``Wire`` whose ``url`` stands in for ``target`` as the client's endpoint.
Every byte either way is forwarded unchanged and recorded per connection, so a test reads the
request exactly as it crossed the socket: ``requests()`` parses what the client sent (method,
request target byte for byte, headers as sent, body), ``responses()`` the heads of what came back.
The ``Host`` header names the relay, which is what the client signed; the server behind it checks
that signature as it would without the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class SentRequest:
    method: str
    target: str
    """The request target as sent: the raw path and query, percent-escapes untouched."""
    headers: httpx.Headers
    body: bytes


@dataclass(frozen=True)
class ReceivedResponse:
    status_code: int
    headers: httpx.Headers


@dataclass
class _Connection:
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)


@dataclass
class Wire:
    url: str
    connections: list[_Connection] = field(default_factory=list)

    def requests(self) -> list[SentRequest]:
        found: list[SentRequest] = []
        for connection in self.connections:
            for start, headers, body in _messages(bytes(connection.sent), requests=True):
                method, target, _ = start.split(" ", 2)
                found.append(SentRequest(method, target, headers, body))
        return found

    def responses(self) -> list[ReceivedResponse]:
        found: list[ReceivedResponse] = []
        for connection in self.connections:
            for start, headers, _ in _messages(bytes(connection.received), requests=False):
                found.append(ReceivedResponse(int(start.split(" ", 2)[1]), headers))
        return found


def _messages(data: bytes, *, requests: bool) -> list[tuple[str, httpx.Headers, bytes]]:
    """HTTP/1.1 messages in one direction of one connection: start line, headers, body."""
    messages: list[tuple[str, httpx.Headers, bytes]] = []
    while b"\r\n\r\n" in data:
        head, _, data = data.partition(b"\r\n\r\n")
        start, *lines = head.decode("latin-1").split("\r\n")
        pairs = [line.split(":", 1) for line in lines]
        headers = httpx.Headers([(name.strip(), value.strip()) for name, value in pairs])
        if headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body += data[:size]
                data = data[size + 2 :]
                if size == 0:
                    break
            messages.append((start, headers, bytes(body)))
            continue
        length = int(headers.get("Content-Length", "0"))
        if not requests and "Content-Length" not in headers:
            length = len(data)  # read to close
        messages.append((start, headers, data[:length]))
        data = data[length:]
    return messages


@contextlib.asynccontextmanager
async def relay(target: str) -> AsyncIterator[Wire]:
    """A recording TCP relay on 127.0.0.1 in front of ``target`` (``http://host:port``)."""
    upstream = httpx.URL(target)
    wire = Wire(url="")

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray) -> None:
        try:
            while chunk := await reader.read(65536):
                record += chunk
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.write_eof()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        connection = _Connection()
        wire.connections.append(connection)
        server_reader, server_writer = await asyncio.open_connection(upstream.host, upstream.port)
        try:
            await asyncio.gather(
                pipe(client_reader, server_writer, connection.sent),
                pipe(server_reader, client_writer, connection.received),
            )
        finally:
            server_writer.close()
            client_writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    wire.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield wire
    finally:
        server.close()
