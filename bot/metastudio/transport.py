"""How the MetaStudio client reaches the network: the ``aiohttp`` session it sends through, the
CAs that session trusts, the proxy the environment names, and aiohttp's failures as log text.

``aiohttp``'s C HTTP parser on plain asyncio costs a fifth of the CPU per request of httpx's stack
(``bench/bench_pollcpu.py``); what httpx did for us from the environment is done here the same
way. Invariants:

* TLS is verified against the CAs httpx trusted (``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set,
  else certifi's), one ``SSLContext`` per trust store per process.
* Proxies are ``HTTP(S)_PROXY``/``ALL_PROXY`` less ``NO_PROXY``; aiohttp's own ``trust_env`` is
  off, so ``~/.netrc`` never adds credentials.
* The session keeps no cookies and decodes no body (``read_capped`` in ``responses`` does, under
  the cap). Its lifetime is the client's: this module only builds it.
"""

from __future__ import annotations

import functools
import os
import ssl
import urllib.request

import aiohttp
import certifi
import httpx

from bot.metastudio.errors import MAX_DETAIL

# Connections to one project's endpoint: polls hold at most POLL_CONCURRENCY, commands the rest.
MAX_CONNECTIONS = 50
KEEPALIVE_SECONDS = 30.0


def new_session(timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """A session of kept-alive connections to every endpoint, ``timeout`` per step of a request."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS, ssl=_tls()
        ),
        timeout=timeout,
        # No cookies kept or sent: every call is authenticated by its own headers.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Not aiohttp's trust_env: it hops to a thread twice per request (proxy, netrc)
        # and would add ~/.netrc credentials. Proxies come from proxy_for instead.
        trust_env=False,
        auto_decompress=False,
    )


def proxy_for(base: httpx.URL, known: dict[str, str | None]) -> str | None:
    """The proxy ``HTTP(S)_PROXY``/``ALL_PROXY`` name for this endpoint unless ``NO_PROXY`` exempts
    it (as httpx honoured them), read from the environment once per endpoint into ``known``."""
    key = f"{base.scheme}://{base.netloc.decode('ascii')}"
    if key not in known:
        proxies = urllib.request.getproxies_environment()
        chosen = proxies.get(base.scheme) or proxies.get("all")
        if chosen and urllib.request.proxy_bypass_environment(base.host, proxies):  # type: ignore[attr-defined]
            chosen = None
        known[key] = chosen or None
    return known[key]


def _tls() -> ssl.SSLContext:
    """The CAs httpx trusted: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else certifi's."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return _trust(cafile, None if cafile else os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=8)
def _trust(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """One context per trust store, shared by every client's session: loading certifi's bundle
    takes ~17 ms of CPU on the event loop, once per process instead of once per workspace client."""
    if cafile is None and capath is None:
        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def detail(exc: aiohttp.ClientError) -> str:
    """An aiohttp failure as the detail of a ``ConnectionFailed``: its class and its own words."""
    # aiohttp's text names the failure (refused, reset, DNS) and at most the URL; never a header.
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:MAX_DETAIL]}" if text else type(exc).__name__
