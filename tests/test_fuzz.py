"""Hypothesis fuzzes the text of ``/task``: every input gets a clear reply, never a 500 or a traceback."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import messages
from bot.devtools.demo import LocalStack, demo_stack
from bot.metastudio.models import is_task_id
from bot.services.parsing import Command, Invalid, ShowTask, Unwatch, Watch, parse

texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="0123456789abcdefABCDEF -_`<>&!@#", max_size=70),
    st.sampled_from(
        [
            "help",
            "recent",
            "recent a,b c",
            "WATCHING",
            "watch ../x",
            "subscribe <!here>",
            "<!channel>",
            "`" * 5,
            "\x00",
            "../../v3/auth/tokens",
        ]
    ),
    st.builds(
        lambda s, tail: s + tail,
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
        st.text(max_size=10),
    ),
)


@given(texts)
@settings(max_examples=500)
def test_parse_always_yields_a_command(text: str) -> None:
    command = parse(text)
    assert isinstance(command, Command)
    if isinstance(command, ShowTask | Watch | Unwatch):
        assert is_task_id(command.task_id)
    if isinstance(command, Invalid):
        assert command.message and "\n" not in command.message
        assert "<!" not in command.message and "<@" not in command.message


class BackgroundStack:
    """The whole stack on its own event loop in a thread, so a sync Hypothesis test can drive it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ready = threading.Event()
        self.local: LocalStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with demo_stack(self.workdir) as local:
            self.local = local
            self.ready.set()
            await self._stop.wait()

    def __enter__(self) -> LocalStack:
        self._thread.start()
        assert self.ready.wait(20), "stack did not start"
        assert self.local is not None
        return self.local

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)


@pytest.fixture(scope="module")
def background_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with BackgroundStack(tmp_path_factory.mktemp("fuzz")) as local:
        yield local


KNOWN_SENTENCES = [
    messages.text(key)
    for key in ("error_not_found", "error_mss_invalid_parameter", "error_unexpected", "recent_empty")
]


@given(texts)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_command_text_gets_a_clear_reply(background_stack: LocalStack, text: str) -> None:
    slack = background_stack.slack
    seen = len(slack.messages)
    body, headers = slack.slash_command(background_stack.signing_secret, text)
    response = httpx.post(
        f"{background_stack.bot_url}/slack/events", content=body, headers=headers, timeout=10
    )
    assert response.status_code == 200
    assert "Traceback" not in response.text
    if response.content:
        reply = response.json()
        assert reply["response_type"] == "ephemeral"
        assert reply["text"].strip()
        return
    deadline = time.monotonic() + 10
    while len(slack.messages) <= seen:
        assert time.monotonic() < deadline, f"no reply for {text!r}"
        time.sleep(0.01)
    message = slack.messages[seen]
    assert "Traceback" not in repr(message.payload)
    assert message.text.strip()
