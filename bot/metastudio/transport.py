"""How the MetaStudio client reaches the network: the ``httpx.AsyncClient`` it sends through (httpx's
own transport, httpcore), the CAs that client trusts, and httpx's failures as log text.

One ``httpx.AsyncClient`` per ``MetaStudioClient``, that is per MetaStudio endpoint and its
credentials, carries the MetaStudio and the IAM calls alike. Invariants:

* Proxies and CA trust come from the environment as httpx's ``trust_env`` reads them:
  ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` less ``NO_PROXY``, read when the client is built;
  TLS verified against ``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else certifi's CAs. httpx (0.24
  on) never reads ``~/.netrc``, so no credentials are added to a signed request.
* One ``SSLContext`` per trust store per process, shared by every client: loading certifi's
  bundle costs ~17 ms of CPU on the event loop, which httpx would pay once per client.
* No cookies kept (``_NoCookies``), no redirects followed (``follow_redirects=False``): every call
  is authenticated by its own headers, and a signature or token is for its own host only.
* The client decodes no body: the caller reads ``aiter_raw`` and inflates under its cap
  (``responses.read_capped``). Its lifetime is the MetaStudio client's; this module only builds it.
"""

from __future__ import annotations

import functools
import http.cookiejar
import os
import ssl
import urllib.request
from http.client import HTTPResponse

import certifi
import httpx

from bot.metastudio.errors import MAX_DETAIL

# Connections to one project's endpoint: polls hold at most POLL_CONCURRENCY, commands the rest.
MAX_CONNECTIONS = 50
# Idle connections kept: the polls' POLL_CONCURRENCY and a few for commands. httpcore's pool looks
# at every pooled connection for each waiting request (quadratic in the pool's size): 32 calls at
# once cost 3.6 ms CPU each with all 32 connections kept, 1.4 to 1.7 ms with 10 (re-opening the rest).
MAX_IDLE_CONNECTIONS = 10
KEEPALIVE_SECONDS = 30.0


class _NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing a server sets, so nothing is ever sent back."""

    def extract_cookies(self, response: HTTPResponse, request: urllib.request.Request) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


def new_client(*, connect_timeout: float, read_timeout: float) -> httpx.AsyncClient:
    """Kept-alive connections to one endpoint (and its IAM), each step of a request bounded.

    ``connect_timeout`` bounds connecting and waiting for a pooled connection; ``read_timeout``
    each read and write. The whole call is bounded by the client's deadline on top.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        limits=httpx.Limits(
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_IDLE_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_SECONDS,
        ),
        verify=_tls(),
        trust_env=True,
        follow_redirects=False,
        cookies=_NoCookies(),
    )


def _tls() -> ssl.SSLContext:
    """The CAs httpx's ``trust_env`` picks: ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set, else
    certifi's (``httpx._config.create_ssl_context``), built once per setting."""
    cafile = os.environ.get("SSL_CERT_FILE") or None
    return _trust(cafile, None if cafile else os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=8)
def _trust(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile is None and capath is None:
        cafile = certifi.where()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def detail(exc: httpx.HTTPError) -> str:
    """An httpx failure as the detail of a ``ConnectionFailed``: its class and its own words."""
    # httpx's text names the failure (refused, reset, TLS, a protocol error); never a header value.
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:MAX_DETAIL]}" if text else type(exc).__name__
