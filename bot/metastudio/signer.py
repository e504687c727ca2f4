"""Huawei Cloud ``SDK-HMAC-SHA256`` request signing.

No maintained library outside Huawei's own SDK implements it, and that SDK is synchronous, so
this is a small re-implementation. ``tests/metastudio/test_signer.py`` holds it byte-identical to
``huaweicloudsdkcore.signer.signer.Signer``: same canonical URI (every segment unquoted then
re-quoted with only ``~`` safe, trailing slash added), same canonical query (sorted, ``~`` safe),
same canonical headers (lower-cased names, stripped values, any name with ``_`` left unsigned).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
HEADER_DATE = "X-Sdk-Date"
HEADER_AUTHORIZATION = "Authorization"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()

QueryParams = Iterable[tuple[str, str]]


def _quote(text: str) -> str:
    return quote(text, safe="~")


def format_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(DATE_FORMAT)


def parse_date(text: str) -> datetime:
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)


def canonical_uri(path: str) -> str:
    encoded = "/".join(_quote(segment) for segment in unquote(path).split("/"))
    return encoded if encoded.endswith("/") else encoded + "/"


def canonical_query(params: QueryParams) -> str:
    """The canonical query string; it is also what goes on the wire, so the two never differ."""
    return "&".join(f"{_quote(key)}={_quote(value)}" for key, value in sorted(params))


def signable_header_names(headers: Mapping[str, str]) -> list[str]:
    return sorted(name.lower() for name in headers if "_" not in name)


def canonical_request(
    method: str,
    path: str,
    params: QueryParams,
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    header_lines = "".join(f"{name}:{lowered.get(name, '')}\n" for name in signed_headers)
    payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(params),
            header_lines,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def signature(secret_key: str, canonical: str, date: str) -> str:
    string_to_sign = "\n".join([ALGORITHM, date, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    return hmac.new(secret_key.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class ParsedAuthorization:
    access_key: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization | None:
    """Split an ``Authorization`` header of this scheme; None if it is not one."""
    algorithm, _, rest = value.partition(" ")
    if algorithm != ALGORITHM:
        return None
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key] = val
    if not {"Access", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return ParsedAuthorization(
        access_key=fields["Access"],
        signed_headers=[h for h in fields["SignedHeaders"].split(";") if h],
        signature=fields["Signature"],
    )


def sign(
    *,
    access_key: str,
    secret_key: str,
    method: str,
    path: str,
    params: QueryParams,
    headers: dict[str, str],
    body: bytes = b"",
    now: datetime | None = None,
) -> dict[str, str]:
    """Add ``X-Sdk-Date`` and ``Authorization`` to ``headers`` (which must hold ``Host``) and return it.

    Every header in ``headers`` is signed, as the SDK does, so pass only the ones to protect.
    """
    if HEADER_DATE not in headers:
        headers[HEADER_DATE] = format_date(now or datetime.now(UTC))
    signed = signable_header_names(headers)
    canonical = canonical_request(method, path, list(params), headers, signed, body)
    digest = signature(secret_key, canonical, headers[HEADER_DATE])
    headers[HEADER_AUTHORIZATION] = (
        f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={digest}"
    )
    return headers
