"""What the MetaStudio client put on the wire, seen from its own ``aiohttp`` session.

``capturing_session`` is an ``aiohttp.ClientSession`` to pass as ``MetaStudioClient(http=...)``;
every attempt is recorded as an ``httpx.Request`` when it starts (before connecting, so a
refused connection counts too: the headers the client handed aiohttp, the URL byte for byte),
and every response's headers once they arrive.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import aiohttp
import httpx
from multidict import CIMultiDict


@contextlib.asynccontextmanager
async def capturing_session(
    sent: list[httpx.Request], received: list[CIMultiDict[str]] | None = None
) -> AsyncIterator[aiohttp.ClientSession]:
    async def on_start(
        _session: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append(httpx.Request(params.method, str(params.url), headers=list(params.headers.items())))

    async def on_end(
        _session: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if received is not None:
            received.append(CIMultiDict(params.response.headers))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    trace.on_request_end.append(on_end)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        yield session
