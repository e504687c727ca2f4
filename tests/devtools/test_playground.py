"""``taskbot playground`` driven through a pseudo-terminal, the way a person types into it.

The test reads only what the terminal shows: a card, the watch's confirmation and its alert.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import pytest

from bot.devtools.playground import find_button, parse_duration
from bot.devtools.slack_standin import PostedMessage
from tests.support.cli import clean_env

# CSI and OSC sequences, and carriage returns: what prompt-toolkit and rich add around the text.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]|\r")
_TASK_ID = re.compile(r"Added task ([0-9a-f]{32})")


class Terminal:
    """``taskbot playground`` on a pseudo-terminal: type lines, wait for text to be shown."""

    def __init__(self, *args: str, columns: int = 120) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        env = clean_env(TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS=str(columns))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self.raw = b""
        self.seen = 0

    @property
    def text(self) -> str:
        return _ESCAPES.sub("", self.raw.decode("utf-8", errors="replace"))

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.raw += chunk
        return bool(chunk)

    def expect(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until ``pattern`` shows after what earlier expects consumed; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern, re.DOTALL).search(self.text, self.seen)
            if found:
                self.seen = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and self.process.poll() is not None):
                raise AssertionError(f"{pattern!r} never showed; the terminal:\n{self.text[-3000:]}")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def control(self, key: str, prompt: str) -> None:
        """Ctrl-``key`` once ``prompt`` shows: once, even if a message is being printed at that moment."""
        self.expect(prompt)
        os.write(self.master, {"d": b"\x04", "c": b"\x03"}[key])

    def wait_exit(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        while self._read(0.05):
            pass
        code = self.process.poll()
        assert code is not None, f"still running after {timeout:g} s; the terminal:\n{self.text[-3000:]}"
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    shown = Terminal("playground")
    try:
        yield shown
    finally:
        shown.close()


def test_a_person_sees_a_card_a_watch_and_its_alert(terminal: Terminal) -> None:
    terminal.expect(r"taskbot serve is up at http://127\.0\.0\.1:\d+")
    terminal.expect(r"U0DEMOUSER \(en-US\) >")
    terminal.type("task")
    task_id = terminal.expect(_TASK_ID.pattern).group(1)

    terminal.type(f"/task {task_id}")
    card = terminal.expect(r"message: chat\.postMessage in C0DEMO0001.*?Playground import #1.*?╰", 60)
    assert "[ Notify this channel when done ]" in card.group(0) and "[ Refresh ]" in card.group(0)

    terminal.type("press Notify this channel when done")
    terminal.expect(r"\(pressed 'Notify this channel when done'\)")
    terminal.expect(r"I'll tell this channel when Playground import #1 finishes")

    terminal.type("wait 2m")
    terminal.expect(r"120 s passed for \d+ simulated task\(s\)")
    alert = terminal.expect(r"alert \(in a thread\): chat\.postMessage in C0DEMO0001.*?╰", 60)
    assert "Playground import #1" in alert.group(0) and "<@U0DEMOUSER>" not in alert.group(0)
    assert "@U0DEMOUSER" in alert.group(0)  # the alert mentions who asked

    terminal.control("d", r"U0DEMOUSER \(en-US\) >")
    assert terminal.wait_exit() == 0
    assert "Bye." in terminal.text[terminal.seen :]
    assert "Traceback" not in terminal.text


def test_chinese_user_and_ctrl_c_leaves_cleanly(terminal: Terminal) -> None:
    terminal.expect(r"U0DEMOUSER \(en-US\) >")
    terminal.type("as zh")
    terminal.expect(r"U0DEMOZH01 \(zh-CN\) >")
    terminal.type("/task recent")
    terminal.expect(r"only you can see this.*?最新的导入导出任务.*?╰", 30)
    terminal.type("press 查看")  # the newest task's Open button, in the reader's language
    terminal.expect(r"message: chat\.postMessage in C0DEMO0001.*?成功数.*?╰", 30)
    terminal.type("press Nothing Like This")
    terminal.expect(r"No message has a button 'Nothing Like This' yet\.")
    terminal.control("c", r"U0DEMOZH01 \(zh-CN\) >")
    assert terminal.wait_exit() == 0
    assert "Bye." in terminal.text and "Traceback" not in terminal.text


def test_durations_and_button_labels() -> None:
    assert [parse_duration(t) for t in ("30", "30s", "5m", "1.5h", "2 min")] == [30, 30, 300, 5400, 120]
    with pytest.raises(ValueError):
        parse_duration("soon")
    refresh = {"type": "button", "text": {"type": "plain_text", "text": "Refresh"}, "action_id": "r"}
    notify = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Notify this channel"},
        "action_id": "n",
    }
    older = PostedMessage(
        "chat.postMessage", "C1", {"blocks": [{"type": "actions", "elements": [refresh]}]}, "1"
    )
    newer = PostedMessage(
        "chat.postMessage",
        "C1",
        {"blocks": [{"type": "section", "accessory": refresh}, {"type": "actions", "elements": [notify]}]},
        "2",
    )
    assert find_button([older, newer], "refresh") == (newer, refresh)
    assert find_button([older, newer], "notify") == (newer, notify)  # a label's beginning will do
    assert find_button([older], "notify") is None
