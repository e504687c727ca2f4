"""A hostile MetaStudio cannot forge log lines: every value the text log writes is escaped.

A loopback server answers with a newline and a fake record in ``error_code`` / ``error_msg`` and
in a raw 5xx body, plus ANSI escapes; the client's error goes through taskbot's own handler
(``bot.logs.make_handler``) and the log still has exactly one line per record.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import logs
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError
from bot.servers import serve_asgi
from tests.support.credentials import aksk

FORGED = "\n2026-01-01T00:00:00Z ERROR   taskbot: forged record"
ANSI = "\x1b[31mRED\x1b[0m"
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")


async def hostile(request: Request) -> Response:
    if request.url.path.endswith("bad"):
        return Response(f"upstream broke{FORGED}{ANSI}", status_code=502, media_type="text/plain")
    body = {"error_code": f"MSS.00000001{FORGED}", "error_msg": f"bad{FORGED} {ANSI}\u2028x"}
    return JSONResponse(body, status_code=400)


@pytest_asyncio.fixture
async def hostile_url() -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/{path:path}", hostile, methods=["GET", "POST"])])
    async with serve_asgi(app) as url:
        yield url


@pytest.mark.parametrize("task_id", ["0123456789abcdef0123456789abcdef", "00000000000000000000000000000bad"])
async def test_error_bodies_cannot_forge_a_line_or_reach_the_terminal(hostile_url: str, task_id: str) -> None:
    stream = io.StringIO()
    handler = logs.make_handler("text", stream=stream)
    # The client's own record of the failed call, and bot/services/tasks.py's, through one handler.
    logger = logging.getLogger("taskbot")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with MetaStudioClient(endpoint=hostile_url, credentials=aksk(), max_retries=0) as client:
            with pytest.raises(MetaStudioError) as caught:
                await client.get_task(task_id)
        services = logging.getLogger("taskbot.services.tasks")
        services.info("MetaStudio call failed: %s", caught.value, extra={"task_id": f"t{FORGED}"})
        try:
            raise RuntimeError(f"boom{FORGED}")
        except RuntimeError:
            services.exception("poll failed%s", ANSI)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    written = stream.getvalue()
    lines = written.splitlines()
    records = [line for line in lines if RECORD_START.match(line)]
    assert len(records) == 3, written
    assert all(line.startswith("    ") for line in lines if not RECORD_START.match(line)), written
    assert "forged record" in records[0] and "\\n2026-01-01" in records[0]
    assert "\x1b" not in written and "\u2028" not in written
    assert "\\x1b[31mRED" in written


def test_json_lines_escape_c1_controls_and_line_separators() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("taskbot.test.json")
    logger.propagate = False
    logger.handlers[:] = [logs.make_handler("json", stream=stream)]
    logger.warning("csi\x9b31m sep\u2028 nl\n esc\x1b", extra={"task_id": "t\u2029"})
    logger.handlers.clear()
    written = stream.getvalue()
    assert written.count("\n") == 1
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]", written), repr(written)
    assert json.loads(written)["msg"] == "csi\x9b31m sep\u2028 nl\n esc\x1b"
