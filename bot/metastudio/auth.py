"""How each MetaStudio request proves who sent it: AK/SK signature, a given token, or an IAM token.

The authenticators only compute headers; they never do HTTP themselves. The IAM password flow
needs one call to IAM, which it gets as an injected ``fetch`` coroutine, so the client's
retries, timeouts, metrics and logging apply to that call like to any other.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.metastudio import signer

CONTENT_TYPE = "application/json"
HEADER_CONTENT_TYPE = "Content-Type"
HEADER_HOST = "Host"
HEADER_PROJECT_ID = "X-Project-Id"
HEADER_SECURITY_TOKEN = "X-Security-Token"
HEADER_AUTH_TOKEN = "X-Auth-Token"
HEADER_SUBJECT_TOKEN = "X-Subject-Token"
TOKEN_PATH = "/v3/auth/tokens"
HEADER_USER_AGENT = "User-Agent"
USER_AGENT = "taskbot (MetaStudio task viewer)"

# IAM tokens live 24 h; renewing an hour early leaves room for clock skew and slow calls.
DEFAULT_REFRESH_BEFORE = 3600.0


@dataclass(frozen=True, slots=True)
class RequestParts:
    """What a signature covers: the request exactly as it goes on the wire."""

    method: str
    host: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


class Authenticator(ABC):
    """Adds credentials to one request."""

    @abstractmethod
    async def headers(self, request: RequestParts) -> dict[str, str]:
        """Every header the request must carry, including ``Host`` and ``Content-Type``."""

    async def recover(self, sent_headers: Mapping[str, str]) -> bool:
        """After a 401: True when sending again may succeed (a fresh token was or will be obtained)."""
        return False

    @abstractmethod
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or an exception."""


# No repr, no equality: it holds secrets, and each instance is one client's signer.
@dataclass(kw_only=True, repr=False, eq=False)
class AkSkAuthenticator(Authenticator):
    """``SDK-HMAC-SHA256`` signing, with the headers the official SDK signs.

    The SDK signs Content-Type, Host, User-Agent, X-Project-Id and X-Sdk-Date, plus
    X-Security-Token for temporary credentials (seen on a capture server, 3.1.219); signing
    exactly that set keeps our requests shaped like its. Only the User-Agent value differs.
    """

    access_key: str
    secret_key: str
    project_id: str
    """Empty until the client has looked the project up in IAM; that one call goes without it."""
    security_token: str | None = None
    clock: Callable[[], float] = time.time

    async def headers(self, request: RequestParts) -> dict[str, str]:
        headers = {
            HEADER_HOST: request.host,
            HEADER_CONTENT_TYPE: CONTENT_TYPE,
            HEADER_USER_AGENT: USER_AGENT,
        }
        if self.project_id:
            headers[HEADER_PROJECT_ID] = self.project_id
        if self.security_token:
            headers[HEADER_SECURITY_TOKEN] = self.security_token
        return signer.sign(
            access_key=self.access_key,
            secret_key=self.secret_key,
            method=request.method,
            path=request.path,
            params=request.params,
            headers=headers,
            body=request.body,
            now=datetime.fromtimestamp(self.clock(), UTC),
        )

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.access_key, self.secret_key, self.security_token) if s)


class StaticTokenAuthenticator(Authenticator):
    """A token the operator obtained elsewhere (METASTUDIO_AUTH_TOKEN); it cannot be renewed."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def headers(self, request: RequestParts) -> dict[str, str]:
        return {HEADER_HOST: request.host, HEADER_CONTENT_TYPE: CONTENT_TYPE, HEADER_AUTH_TOKEN: self._token}

    def secrets(self) -> tuple[str, ...]:
        return (self._token,)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    value: str = field(repr=False)
    issued_at: float
    expires_at: float

    def due(self, now: float, refresh_before: float) -> bool:
        """Whether to renew: within ``refresh_before`` of expiry, but never later than 3/4 of the
        lifetime, so a short-lived token is not used up to its last second."""
        lifetime = max(0.0, self.expires_at - self.issued_at)
        return now >= self.expires_at - min(refresh_before, lifetime / 4)


TokenFetcher = Callable[[], Awaitable[IssuedToken]]


class IamPasswordAuthenticator(Authenticator):
    """An IAM user token, obtained with the user's password, cached and renewed before expiry."""

    def __init__(
        self,
        *,
        fetch: TokenFetcher,
        secrets: Sequence[str],
        clock: Callable[[], float] = time.time,
        refresh_before: float = DEFAULT_REFRESH_BEFORE,
    ) -> None:
        self._fetch = fetch
        self._secrets = tuple(s for s in secrets if s)
        self._clock = clock
        self._refresh_before = refresh_before
        self._token: IssuedToken | None = None
        # One IAM call at a time: concurrent requests wait for it instead of each fetching a token.
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        current = self._token
        if current is not None and not current.due(self._clock(), self._refresh_before):
            return current.value
        async with self._lock:
            current = self._token
            if current is None or current.due(self._clock(), self._refresh_before):
                current = await self._fetch()
                self._token = current
            return current.value

    async def headers(self, request: RequestParts) -> dict[str, str]:
        token = await self.token()
        return {HEADER_HOST: request.host, HEADER_CONTENT_TYPE: CONTENT_TYPE, HEADER_AUTH_TOKEN: token}

    async def recover(self, sent_headers: Mapping[str, str]) -> bool:
        rejected = sent_headers.get(HEADER_AUTH_TOKEN)
        # Drop the token only if no other request has renewed it meanwhile.
        if self._token is not None and self._token.value == rejected:
            self._token = None
        return True

    def secrets(self) -> tuple[str, ...]:
        cached = (self._token.value,) if self._token is not None else ()
        return self._secrets + cached


def password_token_request(*, username: str, password: str, domain: str, project_id: str) -> bytes:
    """The body of ``POST /v3/auth/tokens`` for a project-scoped token with password auth."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": username, "password": password, "domain": {"name": domain}}},
            },
            "scope": {"project": {"id": project_id}},
        }
    }
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def parse_issued_token(headers: Mapping[str, str], body: bytes, now: float) -> IssuedToken:
    """The token from ``X-Subject-Token`` and its expiry from the body. Raises ValueError."""
    value = headers.get(HEADER_SUBJECT_TOKEN, "").strip()
    if not value:
        raise ValueError("no X-Subject-Token header")
    try:
        document = json.loads(body)
        expires_text = document["token"]["expires_at"]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError("no token.expires_at in the body") from exc
    if not isinstance(expires_text, str):
        raise ValueError("token.expires_at is not a string")
    try:
        expires = datetime.fromisoformat(expires_text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError("token.expires_at is not an ISO 8601 time") from exc
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    expires_at = expires.timestamp()
    if expires_at <= now:
        raise ValueError("the token has already expired")
    return IssuedToken(value=value, issued_at=now, expires_at=expires_at)
