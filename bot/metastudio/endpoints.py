"""Which endpoints a workspace admin may point taskbot at (SSRF guard).

A saved connection makes taskbot send requests signed with the workspace's AK/SK to a URL an
admin typed. Invariants:

1. By default only ``https`` on Huawei Cloud hosts passes: the suffixes of every endpoint in
   ``huaweicloudsdkmetastudio`` 3.1.219's ``MetaStudioRegion`` and ``huaweicloudsdkcore``'s IAM
   table (all ``*.myhuaweicloud.com``), plus ``*.huaweicloud.com``.
2. The operator widens the list (``TASKBOT_ALLOWED_ENDPOINT_HOSTS``): entries are host patterns
   (``fnmatch``, ``*.example.com``) or IP networks (``10.0.0.0/8``, ``127.0.0.1``); an entry
   written ``http://...`` also allows plain ``http`` for what it matches. A wildcard pattern
   must end in two fixed labels (``*.*.*`` or ``*.com`` would allow nearly any host), and an
   IPv6 entry is bare or wholly in brackets (``[::bad`` is a typo, not the network ``::bad``).
3. After DNS resolution every address must be public (``ipaddress.is_global``) or inside a listed
   network: a public name resolving to 127.0.0.1, 10/8, 169.254/16 or ::1 is refused.
   Resolution uses the event loop's ``getaddrinfo`` (a thread, never blocking the loop).

This follows OWASP's SSRF prevention pattern (allow-list the destination, validate every
resolved address). The operator's own ``METASTUDIO_ENDPOINT`` is not checked: it is theirs.

Before any of that, ``parse_endpoint`` is the one check of every endpoint URL, wherever it comes
from (an environment variable, the modal, the SDK's regions file or variable, a profile's
``iam_endpoint``): parsed by httpx, the parser that will send to it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from dataclasses import dataclass
from enum import StrEnum

import httpx

DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("*.myhuaweicloud.com", "*.huaweicloud.com")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refusal(StrEnum):
    """Why an endpoint is refused. The values are plain identifiers; the sentence an admin reads
    is ``bot.slack.cloud_errors``'s."""

    NOT_HTTPS = "not_https"  # plain http:// to a host not listed with http://
    HOST = "host"  # not a URL, or a host no entry allows
    ADDRESS = "address"  # the host resolves to an address that is neither public nor listed
    UNRESOLVED = "unresolved"  # the host does not resolve


class BadEndpointURL(ValueError):
    """Not an endpoint URL; the message says what is wrong, never the URL."""


def parse_endpoint(text: str) -> httpx.URL:
    """``text`` as an endpoint URL: http or https, a host, a valid port, no user info (it would
    keep a credential where nobody treats it as one), no query or fragment (the signed path is
    appended), no whitespace. Raises ``BadEndpointURL``."""
    if any(ch.isspace() for ch in text):
        raise BadEndpointURL("it contains whitespace")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise BadEndpointURL("it is not a URL") from None
    if url.scheme not in ("http", "https"):
        raise BadEndpointURL("its scheme is not http or https")
    if not url.host:
        raise BadEndpointURL("it has no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise BadEndpointURL("its port is not 1-65535")
    if url.userinfo:
        raise BadEndpointURL("it carries a user name or password")
    if url.query or url.fragment or text.rstrip().endswith(("?", "#")):
        raise BadEndpointURL("it has a query or a fragment")
    return url


class EndpointRefused(ValueError):
    def __init__(self, refusal: Refusal, detail: str) -> None:
        self.refusal = refusal
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class _Rule:
    http: bool
    pattern: str | None = None
    network: IpNetwork | None = None


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    rules: tuple[_Rule, ...]

    @classmethod
    def parse(cls, entries: list[str] | tuple[str, ...]) -> EndpointPolicy:
        """Raises ``ValueError`` naming the first entry that is neither a host pattern nor a network."""
        rules: list[_Rule] = []
        for raw in entries:
            entry = raw.strip().lower()
            http = entry.startswith("http://")
            if http:
                entry = entry.removeprefix("http://")
            entry = entry.removeprefix("https://").rstrip("/")
            if not entry:
                continue
            # An IPv6 network is written bare or in whole brackets; "[::bad" is a typo, not ::bad.
            bracketed = entry.startswith("[") and entry.endswith("]") and entry.count("[") == 1
            if bracketed or ("[" not in entry and "]" not in entry):
                try:
                    network = ipaddress.ip_network(entry.strip("[]"), strict=False)
                    rules.append(_Rule(http=http, network=network))
                    continue
                except ValueError:
                    pass
            if not all(ch.isalnum() or ch in "-.*?_" for ch in entry):
                raise ValueError(f"not a host pattern or IP network: {raw!r} (example: *.myhuaweicloud.com)")
            labels = entry.split(".")
            if any(ch in entry for ch in "*?") and (
                len(labels) < 3 or any(ch in label for label in labels[-2:] for ch in "*?")
            ):
                # "*.*.*" or "*.com" would let an admin's AK/SK go to nearly any host.
                raise ValueError(
                    f"too wide a host pattern: {raw!r}; a wildcard must end in a fixed domain "
                    "(example: *.myhuaweicloud.com)"
                )
            rules.append(_Rule(http=http, pattern=entry))
        return cls(rules=tuple(rules))

    def _host_rules(self, host: str) -> list[_Rule]:
        host = host.lower().strip("[]")
        try:
            address: IpAddress | None = ipaddress.ip_address(host)
        except ValueError:
            address = None
        found = []
        for rule in self.rules:
            if address is not None:
                if rule.network is not None and address in rule.network:
                    found.append(rule)
            elif rule.pattern is not None and fnmatch.fnmatchcase(host, rule.pattern):
                found.append(rule)
        return found

    def check_url(self, url: str) -> httpx.URL:
        """Scheme and host, without DNS (the modal's check). Raises ``EndpointRefused``."""
        try:
            parsed = parse_endpoint(url)
        except BadEndpointURL as exc:
            raise EndpointRefused(Refusal.HOST, f"not an endpoint URL: {exc}") from None
        rules = self._host_rules(parsed.host)
        if not rules:
            raise EndpointRefused(Refusal.HOST, f"host {parsed.host!r} is not an allowed endpoint host")
        if parsed.scheme != "https" and not any(rule.http for rule in rules):
            raise EndpointRefused(Refusal.NOT_HTTPS, f"{parsed.scheme}:// is not allowed for {parsed.host!r}")
        return parsed

    def address_allowed(self, address: IpAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(rule.network is not None and address in rule.network for rule in self.rules):
            return True
        return address.is_global

    async def check(self, url: str) -> None:
        """``check_url``, then every address the host resolves to. Raises ``EndpointRefused``."""
        parsed = self.check_url(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise EndpointRefused(Refusal.UNRESOLVED, f"{parsed.host!r} does not resolve: {exc}") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if not self.address_allowed(address):
                raise EndpointRefused(Refusal.ADDRESS, f"{parsed.host!r} resolves to {address}, not public")
