"""Typed view of MetaStudio's import/export task.

The doc declares every field a string, but the API (and its own example) sends numbers for
``begin_time``, ``end_time``, ``task_type`` and ``task_status``. The model accepts both and
normalises them, so the rest of the code never guesses.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

TASK_ID_PATTERN = re.compile(r"^[0-9a-fA-F]{32}$")


# Epoch milliseconds a datetime can hold (year 9999); anything later is not a time.
MAX_EPOCH_MS = 253_402_300_799_999
# Counts beyond what a JSON number holds exactly (2**53) are not counts a server could mean.
MAX_COUNT = 2**53


def _number(value: Any, what: str) -> float | int:
    """A finite JSON number or numeric string; anything else is a ``ValueError`` (never a crash).

    pydantic turns only ``ValueError``/``AssertionError`` into validation errors, so ``int(inf)``'s
    ``OverflowError`` or ``int({})``'s ``TypeError`` must never escape a validator.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} is a {type(value).__name__}, not a number")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            raise ValueError(f"{what} is too long to be a number")
        try:
            number: float | int = int(text)
        except ValueError:
            number = float(text)
    else:
        number = value
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"{what} is not a finite number")
    return number


def _epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from a number, a numeric string, or nothing (null, '', 0)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip():
        try:
            number = _number(value, "time")
        except ValueError:
            # An ISO-8601 timestamp is not what the doc promises, but it is unambiguous.
            text = value.strip()
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"not an epoch-milliseconds time: {text[:40]!r}") from exc
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            number = parsed.timestamp() * 1000
    else:
        number = _number(value, "time")
    if not 0 <= number <= MAX_EPOCH_MS:
        raise ValueError("time out of range")
    return int(number) or None


def _code(value: Any) -> str | None:
    """A status or type code as text, whether it arrived as a number or a string."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float):
        number = _number(value, "code")
        if isinstance(number, float) and number.is_integer():
            return str(int(number))
        return str(number)
    if not isinstance(value, str):
        raise ValueError(f"code is a {type(value).__name__}, not a string or number")
    return value.strip() or None


def _count(value: Any) -> int:
    """A count of items: a whole number from 0 to 2**53. Negative or fractional is not a count."""
    if value is None or value == "":
        return 0
    number = _number(value, "count")
    if isinstance(number, float) and not number.is_integer():
        raise ValueError("count is not a whole number")
    if not 0 <= number <= MAX_COUNT:
        raise ValueError("count out of range")
    return int(number)


EpochMs = Annotated[int | None, BeforeValidator(_epoch_ms)]
Code = Annotated[str | None, BeforeValidator(_code)]
Count = Annotated[int, BeforeValidator(_count)]


class Task(BaseModel):
    """One import/export task, as ``GET /v2/{project_id}/ies/task/{id}`` returns it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    task_id: str
    task_name: str | None = None
    resource: str | None = None
    task_type: Code = None
    task_status: Code = None
    operator: str | None = None
    user_id: str | None = None
    begin_time: EpochMs = None
    end_time: EpochMs = None
    total_count: Count = 0
    success_count: Count = 0
    failure_count: Count = 0

    @property
    def processed_count(self) -> int:
        return self.success_count + self.failure_count

    @property
    def progress(self) -> float | None:
        """Share of items processed, 0.0 to 1.0, or None when the total is unknown."""
        if self.total_count <= 0:
            return None
        return min(1.0, self.processed_count / self.total_count)

    @property
    def begin(self) -> datetime | None:
        return _to_datetime(self.begin_time)

    @property
    def end(self) -> datetime | None:
        return _to_datetime(self.end_time)

    def is_finished(self, finished_status_codes: frozenset[str] = frozenset()) -> bool:
        """Whether the task is done, judged only by what the API says.

        Status codes are undocumented, so a code counts only when the operator listed it.
        Otherwise the counts or a real end time must show it.
        """
        if self.task_status is not None and self.task_status in finished_status_codes:
            return True
        if self.total_count > 0 and self.processed_count >= self.total_count:
            return True
        return self.begin_time is not None and self.end_time is not None and self.end_time > self.begin_time


class TaskPage(BaseModel):
    """One page of ``GET /v2/{project_id}/ies/task``."""

    model_config = ConfigDict(extra="allow")

    offset: Count = 0
    limit: Count = 0
    count: Count = 0
    data: list[Task] = Field(default_factory=list)


def _to_datetime(epoch_ms: int | None) -> datetime | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def is_task_id(text: str) -> bool:
    return bool(TASK_ID_PATTERN.fullmatch(text))
