"""Logging setup: one line per event, text or JSON, never a secret.

Fields passed with ``extra={...}`` (team, command, task_id, request_id, latency_ms) become JSON
keys or ``key=value`` pairs. A redaction filter masks anything that looks like a Slack token,
an AK/SK signature header or a known secret value, as a last line of defence.

The text format writes every value with its control characters escaped (``escape_controls``):
a MetaStudio error body or a task field carrying a newline and a fake record, or an ANSI escape,
shows as ``\\n`` or ``\\x1b`` inside its own line and cannot forge another line or recolour a
terminal. A traceback keeps its line breaks, each continuation line indented, so no line of it
can pass for a record of its own (a record starts with its timestamp in the first column).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

EXTRA_FIELDS = (
    "team",
    "command",
    "task_id",
    "request_id",
    "latency_ms",
    "outcome",
    "channel",
    "user",
    "operation",
)
# C0 and C1 controls, DEL, and the Unicode line and paragraph separators some viewers break on.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(value: object) -> str:
    """``str(value)`` with every control character written as a visible escape (``\\n``, ``\\x1b``)."""
    return _CONTROLS.sub(_escaped, str(value))


_TOKEN_PATTERN = re.compile(r"(xox[abposre]-[0-9A-Za-z-]+|xapp-[0-9A-Za-z-]+|Signature=[0-9a-f]{16,})")


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def redact(self, text: str) -> str:
        text = _TOKEN_PATTERN.sub("[redacted]", text)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                payload[name] = value
        if record.exc_text:
            payload["exc"] = record.exc_text
        # json escapes C0 controls itself; C1 controls (CSI is \x9b) and U+2028/9 it writes raw.
        return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(payload, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = f"{datetime.fromtimestamp(record.created, UTC):%Y-%m-%dT%H:%M:%S}Z"
        base = f"{when} {record.levelname:<7} {escape_controls(record.name)}: {escape_controls(record.getMessage())}"
        pairs = [
            f"{name}={escape_controls(getattr(record, name))}"
            for name in EXTRA_FIELDS
            if getattr(record, name, None) is not None
        ]
        line = " ".join([base, *pairs])
        if record.exc_text:
            line += "".join(f"\n    {escape_controls(part)}" for part in record.exc_text.split("\n"))
        return line


def make_handler(
    fmt: str = "text", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> logging.Handler:
    """The one handler taskbot logs through: redacted, one record per line (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(secrets))
    return handler


def configure(fmt: str = "text", level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    handler = make_handler(fmt, secrets)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every job added, run and ended at INFO: several lines per poll.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
