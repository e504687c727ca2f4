"""What the simulated API gateway checks before a task call reaches MetaStudio: an IAM token it
issued, or an ``SDK-HMAC-SHA256`` signature recomputed from the request exactly as received.

Rejection reasons are distinct per case so a failing test says which check tripped, and none
of them repeats a secret, a token or a signature.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from bot.metastudio import signer

HEADER_AUTH_TOKEN = "x-auth-token"
HEADER_SECURITY_TOKEN = "x-security-token"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """A key pair's secret half; ``security_token`` is set for temporary keys, which must send it."""

    secret_key: str
    project_id: str
    security_token: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    project_id: str
    issued_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """A request as the gateway received it, undecoded; ``headers`` keys are lower-case."""

    method: str
    raw_path: str
    query_string: str
    headers: Mapping[str, str]
    body: bytes


class AuthRejected(Exception):
    """The gateway refuses the request: HTTP ``status`` with ``error_code`` and ``error_msg``."""

    def __init__(self, error_msg: str, *, error_code: str = "APIGW.0301", status: int = 401) -> None:
        super().__init__(error_msg)
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg


def _incorrect(reason: str) -> AuthRejected:
    return AuthRejected(f"Incorrect IAM authentication information: {reason}")


class Gateway:
    """Verifies requests against known access keys and issued tokens, by the injected clock."""

    def __init__(
        self,
        *,
        access_keys: Mapping[str, AccessKey],
        clock: Callable[[], float],
        max_clock_skew_seconds: float,
    ) -> None:
        self.access_keys = dict(access_keys)
        self.tokens: dict[str, IssuedToken] = {}
        self._clock = clock
        self.max_clock_skew_seconds = max_clock_skew_seconds

    def issue_token(self, project_id: str, ttl_seconds: float) -> tuple[str, IssuedToken]:
        now = self._clock()
        # Real IAM tokens are long opaque base64 strings starting "MII"; the shape keeps clients honest.
        token = "MIIsim" + secrets.token_urlsafe(96)
        issued = IssuedToken(project_id=project_id, issued_at=now, expires_at=now + ttl_seconds)
        self.tokens[token] = issued
        return token, issued

    def authenticate(self, request: GatewayRequest) -> str:
        """The project the caller is authorised for; raises AuthRejected."""
        token = request.headers.get(HEADER_AUTH_TOKEN)
        if token is not None:
            return self._check_token(token)
        authorization = request.headers.get("authorization")
        if authorization is None:
            raise _incorrect("no X-Auth-Token or Authorization header")
        return self._check_signature(request, authorization)

    def _check_token(self, token: str) -> str:
        issued = self.tokens.get(token)
        if issued is None:
            raise _incorrect("the token was not issued by IAM or cannot be decrypted")
        if self._clock() >= issued.expires_at:
            raise AuthRejected("The token must be updated.", error_code="APIGW.0307")
        return issued.project_id

    def _check_signature(self, request: GatewayRequest, authorization: str) -> str:
        headers = request.headers
        parsed = signer.parse_authorization(authorization)
        if parsed is None:
            raise _incorrect(f"the Authorization header is not a well-formed {signer.ALGORITHM} header")
        key = self.access_keys.get(parsed.access_key)
        if key is None:
            raise _incorrect("the access key does not exist")
        date = headers.get(signer.HEADER_DATE.lower())
        if date is None:
            raise _incorrect("X-Sdk-Date is missing")
        try:
            signed_at = signer.parse_date(date).timestamp()
        except ValueError:
            raise _incorrect("X-Sdk-Date is not in YYYYMMDDTHHMMSSZ format") from None
        if abs(self._clock() - signed_at) > self.max_clock_skew_seconds:
            raise _incorrect("X-Sdk-Date is too far from the server time (request expired or clock skew)")
        signed_headers = parsed.signed_headers
        if "host" not in signed_headers:
            raise _incorrect("the Host header is not signed")
        missing = [name for name in signed_headers if name not in headers]
        if missing:
            raise _incorrect(f"signed headers absent from the request: {', '.join(missing)}")
        self._check_security_token(key, headers, signed_headers)
        canonical = signer.canonical_request(
            request.method,
            request.raw_path,
            parse_qsl(request.query_string, keep_blank_values=True),
            {name: headers[name] for name in signed_headers},
            signed_headers,
            request.body,
        )
        expected = signer.signature(key.secret_key, canonical, date)
        if not hmac.compare_digest(expected, parsed.signature):
            raise _incorrect("verify aksk signature fail")
        return key.project_id

    @staticmethod
    def _check_security_token(key: AccessKey, headers: Mapping[str, str], signed: list[str]) -> None:
        sent = headers.get(HEADER_SECURITY_TOKEN)
        if key.security_token is None:
            if sent is not None:
                raise _incorrect("a security token was sent with a permanent access key")
            return
        if sent is None:
            raise _incorrect("temporary access keys need an X-Security-Token header")
        if HEADER_SECURITY_TOKEN not in signed:
            raise _incorrect("X-Security-Token is not signed")
        if not hmac.compare_digest(sent.encode(), key.security_token.encode()):
            raise _incorrect("the security token is invalid or expired")
