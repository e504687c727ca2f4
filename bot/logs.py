"""Logging setup: one line per event, text or JSON, never a secret.

Fields passed with ``extra={...}`` (team, command, task_id, request_id, latency_ms) become JSON
keys or ``key=value`` pairs. A redaction filter masks anything that looks like a Slack token,
an AK/SK signature header or a known secret value, as a last line of defence.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

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
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = f"{datetime.fromtimestamp(record.created, UTC):%Y-%m-%dT%H:%M:%S}Z {record.levelname:<7} {record.name}: {record.getMessage()}"
        pairs = [
            f"{name}={getattr(record, name)}"
            for name in EXTRA_FIELDS
            if getattr(record, name, None) is not None
        ]
        line = " ".join([base, *pairs])
        if record.exc_text:
            line += "\n" + record.exc_text
        return line


def configure(fmt: str = "text", level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler logs every job added, run and ended at INFO: several lines per poll.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
