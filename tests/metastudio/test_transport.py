"""The MetaStudio client's HTTP stack (httpx on its own transport) over loopback: kept-alive
connections, the proxy the environment names (``HTTP_PROXY``/``NO_PROXY``, read by httpx's
``trust_env``), TLS verified against the CAs it names (``SSL_CERT_FILE``, else certifi's), no
``~/.netrc`` credentials, no cookies kept, and each way a connection can fail as its typed error."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bot.metastudio import transport
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import ConnectionFailed, InvalidParameter, MetaStudioError, TimedOut
from tests.support.credentials import aksk

TASK_ID = "b" * 32
PROJECT = "0123456789abcdef0123456789abcdef"
BODY = json.dumps({"task_id": TASK_ID, "task_status": "RUNNING", "total_count": 4}).encode()


@dataclass
class Seen:
    request_lines: list[str] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
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
            self.seen.heads.append(head)
            self.seen.request_lines.append(head.split(b"\r\n", 1)[0].decode())
            self.transport.write(RESPONSE)


@contextlib.asynccontextmanager
async def keepalive_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, Seen]]:
    seen = Seen()
    server = await asyncio.get_running_loop().create_server(lambda: _KeepAlive(seen), "127.0.0.1", 0, ssl=tls)
    scheme = "https" if tls is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    finally:
        server.close()


def self_signed(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 that no public CA vouches for: its PEM, and a server context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taskbot test CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_pem, key_pem = directory / "cert.pem", directory / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_pem, key_pem)
    return cert_pem, context


def client(url: str) -> MetaStudioClient:
    credentials = aksk("TRANSPORTAK01", "k" * 40, project_id=PROJECT)
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


async def test_tls_is_verified_against_the_certificates_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_pem, server_tls = self_signed(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with keepalive_server(server_tls) as (url, seen):
        # certifi's CAs do not vouch for it: refused before any request is sent.
        async with client(url) as c:
            with pytest.raises(ConnectionFailed) as caught:
                await c.get_task(TASK_ID)
        assert "certificate" in caught.value.detail.lower()
        assert seen.request_lines == []
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_pem))
        async with client(url) as c:
            assert (await c.get_task(TASK_ID)).value.task_id == TASK_ID
    assert seen.request_lines == [f"GET /v2/{PROJECT}/ies/task/{TASK_ID} HTTP/1.1"]


def test_every_client_shares_one_trust_store_per_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Loading a CA bundle blocks the event loop for ~17 ms: once per process, not once per client."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert transport._tls() is transport._tls()
    cert_pem, _ = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_pem))
    named = transport._tls()
    assert named is transport._tls()
    monkeypatch.delenv("SSL_CERT_FILE")
    assert transport._tls() is not named


async def test_a_netrc_in_the_environment_adds_nothing_to_the_signed_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpx before 0.24 read it under trust_env and added Basic credentials to the request.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    async with keepalive_server() as (url, seen), client(url) as c:
        assert (await c.get_task(TASK_ID)).value.task_id == TASK_ID
    [head] = seen.heads
    authorization = [line for line in head.split(b"\r\n") if line.lower().startswith(b"authorization:")]
    assert len(authorization) == 1 and b"SDK-HMAC-SHA256" in authorization[0]
    assert b"Basic" not in head


async def test_cookies_a_server_sets_are_neither_kept_nor_sent_back() -> None:
    seen = Seen()
    cookie_response = RESPONSE.replace(b"\r\n\r\n", b"\r\nSet-Cookie: session=tracked; Path=/\r\n\r\n", 1)

    class SetsCookies(_KeepAlive):
        def data_received(self, data: bytes) -> None:
            self.pending += data
            while b"\r\n\r\n" in self.pending:
                head, _, self.pending = self.pending.partition(b"\r\n\r\n")
                self.seen.heads.append(head)
                self.transport.write(cookie_response)

    server = await asyncio.get_running_loop().create_server(lambda: SetsCookies(seen), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with client(url) as c:
            for _ in range(2):
                await c.get_task(TASK_ID)
        # The HTTP client the MetaStudio client is built on, asked the way that merges its jar in.
        async with transport.new_client(connect_timeout=1.0, read_timeout=1.0) as http:
            for _ in range(2):
                await http.get(url + "/")
            assert len(http.cookies) == 0
    finally:
        server.close()
    assert len(seen.heads) == 4
    assert all(b"cookie:" not in head.lower() for head in seen.heads)


# --- each transport failure is its typed error ------------------------------------------------


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    # SO_LINGER 0: close with a TCP reset instead of an orderly FIN.
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"task')
    await writer.drain()
    writer.close()


async def _not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await writer.drain()
    writer.close()


async def _closed_without_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        (_reset, ("ReadError", "RemoteProtocolError")),
        (_cut_short, ("RemoteProtocolError",)),
        (_not_http, ("RemoteProtocolError",)),
        (_closed_without_answer, ("RemoteProtocolError",)),
    ],
    ids=["reset", "cut-short", "not-http", "closed-without-answer"],
)
async def test_a_broken_connection_is_connection_failed_and_retried(
    behaviour: object, said: tuple[str, ...]
) -> None:
    attempts = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await behaviour(reader, writer)  # type: ignore[operator]

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    credentials = aksk("TRANSPORTAK01", "k" * 40, project_id=PROJECT)
    try:
        async with MetaStudioClient(
            endpoint=f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}",
            credentials=credentials,
            max_retries=1,
            backoff_base=0.01,
        ) as c:
            with pytest.raises(MetaStudioError) as caught:
                await c.get_task(TASK_ID)
    finally:
        server.close()
    assert type(caught.value) is ConnectionFailed
    assert caught.value.detail.split(":")[0] in said, caught.value.detail
    assert attempts == 2


async def test_a_connect_that_never_completes_is_timed_out_and_retried() -> None:
    # A listener that never accepts, its one-slot backlog taken: the next SYN gets no answer.
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        credentials = aksk("TRANSPORTAK01", "k" * 40, project_id=PROJECT)
        retries = []

        async def sleep(seconds: float) -> None:
            retries.append(seconds)

        async with MetaStudioClient(
            endpoint=f"http://127.0.0.1:{port}",
            credentials=credentials,
            connect_timeout=0.2,
            max_retries=1,
            sleep=sleep,
        ) as c:
            with pytest.raises(TimedOut) as caught:
                await c.get_task(TASK_ID)
    assert "connect timeout (ConnectTimeout)" in caught.value.detail
    assert len(retries) == 1


async def test_a_path_httpx_would_rewrite_is_refused_before_sending() -> None:
    """httpx drops "." and ".." path segments; a request it would rewrite is not the one signed."""
    credentials = aksk("TRANSPORTAK01", "k" * 40, project_id="..")
    async with (
        keepalive_server() as (url, seen),
        MetaStudioClient(endpoint=url, credentials=credentials, max_retries=0) as c,
    ):
        with pytest.raises(InvalidParameter) as caught:
            await c.get_task(TASK_ID)
    assert "cannot go on the wire as signed" in caught.value.detail
    assert seen.connections == 0
