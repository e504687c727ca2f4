"""Simulated import/export tasks: what they are, what they look like at a given moment, and how
they are read from JSON.

A task's state is a pure function of the clock, so answering a poll is one dict lookup and a
little arithmetic, whatever the number of tasks; nothing runs in the background.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast, get_args

FaultKind = Literal["slow", "throttle", "server_error", "malformed", "mss_error", "forbidden"]
Encoding = Literal["number", "string"]

FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
ENCODINGS: frozenset[str] = frozenset(get_args(Encoding))

# The Chinese doc's meaning of each business code; the simulator sends it as ``error_msg``.
MSS_MESSAGES: dict[str, str] = {
    "MSS.000000001": "失败",
    "MSS.000000002": "内部错误",
    "MSS.000000003": "非法参数",
    "MSS.000000004": "非法访问,未鉴权或者鉴权失败",
}

# Undocumented codes; these are the simulator's convention, not MetaStudio's promise.
STATUS_RUNNING = 1
STATUS_DONE = 2

DEFAULT_OPERATOR = "adminUserAccount"
DEFAULT_USER_ID = "246748d3d76b4779aea38c201a284810"

# The seed doc's example response, byte for byte in meaning (English edition).
SEED_TASK_BODY: Mapping[str, Any] = {
    "resource": "knowledge-intent-question-create",
    "task_name": "Imported Q&A pairs.",
    "begin_time": 1744276967708,
    "end_time": 1744276967708,
    "task_type": 0,
    "operator": "adminUserAccount",
    "total_count": 3,
    "success_count": 2,
    "failure_count": 1,
    "task_status": 0,
    "task_id": "fd1c56acbb2c4b1aa24ba37df99f3129",
    "user_id": "246748d3d76b4779aea38c201a284810",
}

BODY_FIELDS = (
    "resource",
    "task_name",
    "begin_time",
    "end_time",
    "task_type",
    "operator",
    "total_count",
    "success_count",
    "failure_count",
    "task_status",
    "task_id",
    "user_id",
)


class TaskFileError(ValueError):
    """A task file or task object that cannot be turned into tasks."""


@dataclass
class Fault:
    """A misbehaviour of the show call for one task id, applied after authentication.

    ``seconds`` is the delay for ``slow`` and the ``Retry-After`` value for ``throttle``.
    ``times`` limits the fault to the first N requests for that task; None means always.
    """

    kind: FaultKind
    seconds: float = 0.0
    code: str | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.seconds < 0:
            raise ValueError("fault seconds must not be negative")
        if self.times is not None and self.times < 0:
            raise ValueError("fault times must not be negative")
        if self.kind == "mss_error" and self.code not in MSS_MESSAGES:
            raise ValueError(f"mss_error needs code in {sorted(MSS_MESSAGES)}, got {self.code!r}")


@dataclass
class SimTask:
    """One task. Counts grow linearly from ``begin_time_ms`` for ``duration_seconds``.

    ``encoding`` picks how times and codes go on the wire: ``number`` sends ``begin_time``,
    ``end_time``, ``task_type`` and ``task_status`` as JSON numbers (like the doc's example);
    ``string`` sends them as strings (``"1744276967708"``, ``"2"``), as the doc's types table
    declares. None picks one from the task id (CRC-32 even: number, odd: string), so a large
    generated set holds both. ``static_body``, when set, is returned verbatim and the clock
    plays no part; build such a task with :meth:`SimTask.static`.
    """

    task_id: str
    task_name: str
    resource: str
    total_count: int
    duration_seconds: float
    begin_time_ms: int
    failure_rate: float = 0.0
    task_type: int | str = 0
    operator: str = DEFAULT_OPERATOR
    user_id: str = DEFAULT_USER_ID
    fault: Fault | None = None
    business_id: str | None = None
    encoding: Encoding | None = None
    static_body: Mapping[str, Any] | None = field(default=None, repr=False)
    stall_at_seconds: float | None = None
    """Seconds after begin when the counts freeze (a stall), or None for a steady task."""
    stall_seconds: float = 0.0
    """How long the counts stay frozen; part of ``duration_seconds``."""
    ends_early_at_seconds: float | None = None
    """Seconds after begin when the task ends early (as one failing halfway does): ``end_time`` is
    set then and the counts stay where they were. None: it ends when its counts complete."""

    def __post_init__(self) -> None:
        if self.stall_seconds < 0 or (
            self.stall_at_seconds is not None
            and not 0 <= self.stall_at_seconds <= self.duration_seconds - self.stall_seconds
        ):
            raise ValueError("a stall must lie inside the task's duration")
        if (
            self.ends_early_at_seconds is not None
            and not 0 <= self.ends_early_at_seconds < self.duration_seconds
        ):
            raise ValueError("an early end must come before the task's duration is over")
        if not self.task_id or "/" in self.task_id:
            raise ValueError(f"task_id must be a non-empty path segment, got {self.task_id!r}")
        if self.total_count < 0:
            raise ValueError("total_count must not be negative")
        if self.duration_seconds < 0:
            raise ValueError("duration_seconds must not be negative")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        if self.encoding is not None and self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {sorted(ENCODINGS)}")

    @classmethod
    def static(
        cls, body: Mapping[str, Any], *, fault: Fault | None = None, business_id: str | None = None
    ) -> SimTask:
        """A task that always answers ``body`` as is; its other fields only serve sorting and filtering."""
        try:
            begin_ms = int(body.get("begin_time") or 0)
        except (TypeError, ValueError):
            begin_ms = 0
        return cls(
            task_id=str(body["task_id"]),
            task_name=str(body.get("task_name", "")),
            resource=str(body.get("resource", "")),
            total_count=int(body.get("total_count") or 0),
            duration_seconds=0.0,
            begin_time_ms=begin_ms,
            task_type=body.get("task_type", 0),
            operator=str(body.get("operator", "")),
            user_id=str(body.get("user_id", "")),
            fault=fault,
            business_id=business_id,
            static_body=dict(body),
        )

    @property
    def wire_encoding(self) -> Encoding:
        if self.encoding is not None:
            return self.encoding
        return "number" if zlib.crc32(self.task_id.encode()) % 2 == 0 else "string"

    @property
    def end_time_ms(self) -> int:
        # A finished task's end is always after its begin, even for an instant task.
        seconds = self.duration_seconds if self.ends_early_at_seconds is None else self.ends_early_at_seconds
        return self.begin_time_ms + max(1, round(seconds * 1000))

    def is_done(self, now_ms: int) -> bool:
        return now_ms >= self.end_time_ms

    def body_at(self, now_ms: int) -> dict[str, Any]:
        """The detail body at ``now_ms`` (epoch milliseconds), fields in the doc's order."""
        if self.static_body is not None:
            return dict(self.static_body)
        end_ms = self.end_time_ms
        if now_ms >= end_ms and self.ends_early_at_seconds is None:
            processed = self.total_count
            done = True
        else:
            done = now_ms >= end_ms
            elapsed = max(0, min(now_ms, end_ms) - self.begin_time_ms)
            span = max(1, round(self.duration_seconds * 1000))
            if self.stall_at_seconds is not None and self.stall_seconds > 0:
                # Time inside the stall does not count: the counts freeze, then move on.
                stall_ms = round(self.stall_seconds * 1000)
                frozen = min(max(0, elapsed - round(self.stall_at_seconds * 1000)), stall_ms)
                elapsed, span = elapsed - frozen, max(1, span - stall_ms)
            processed = self.total_count * elapsed // span
        failures = int(processed * self.failure_rate)
        as_text = self.wire_encoding == "string"
        status = STATUS_DONE if done else STATUS_RUNNING
        return {
            "resource": self.resource,
            "task_name": self.task_name,
            "begin_time": str(self.begin_time_ms) if as_text else self.begin_time_ms,
            "end_time": (str(end_ms) if as_text else end_ms) if done else None,
            "task_type": _code(self.task_type, as_text),
            "operator": self.operator,
            "total_count": self.total_count,
            "success_count": processed - failures,
            "failure_count": failures,
            "task_status": str(status) if as_text else status,
            "task_id": self.task_id,
            "user_id": self.user_id,
        }


def _code(value: int | str, as_text: bool) -> int | str:
    if as_text:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


# --- JSON task objects -------------------------------------------------------------------------

_TASK_KEYS = frozenset(
    {
        "task_id",
        "task_name",
        "resource",
        "total_count",
        "duration_seconds",
        "begin_time_ms",
        "started_seconds_ago",
        "failure_rate",
        "task_type",
        "operator",
        "user_id",
        "fault",
        "business_id",
        "encoding",
        "static_body",
        "stall_at_seconds",
        "stall_seconds",
        "ends_early_at_seconds",
    }
)
_STATIC_KEYS = frozenset({"static_body", "fault", "business_id"})
_FAULT_KEYS = frozenset({"kind", "seconds", "code", "times"})


def fault_from_dict(data: Mapping[str, Any]) -> Fault:
    unknown = set(data) - _FAULT_KEYS
    if unknown:
        raise TaskFileError(f"unknown fault keys {sorted(unknown)}")
    try:
        return Fault(
            kind=cast(FaultKind, data["kind"]),
            seconds=float(data.get("seconds", 0.0)),
            code=data.get("code"),
            times=None if data.get("times") is None else int(data["times"]),
        )
    except KeyError as exc:
        raise TaskFileError("a fault needs 'kind'") from exc
    except (TypeError, ValueError) as exc:
        raise TaskFileError(f"invalid fault: {exc}") from exc


def task_from_dict(data: Mapping[str, Any], *, now: float) -> SimTask:
    """One task object of the JSON format (see the package docstring); ``now`` anchors relative times."""
    if not isinstance(data, Mapping):
        raise TaskFileError("a task must be a JSON object")
    unknown = set(data) - _TASK_KEYS
    if unknown:
        raise TaskFileError(f"unknown task keys {sorted(unknown)}")
    fault = fault_from_dict(data["fault"]) if data.get("fault") is not None else None
    business_id = data.get("business_id")
    if "static_body" in data:
        extra = set(data) - _STATIC_KEYS
        if extra:
            raise TaskFileError(f"a static task takes its fields from static_body; remove {sorted(extra)}")
        body = data["static_body"]
        if not isinstance(body, Mapping) or "task_id" not in body:
            raise TaskFileError("static_body must be an object with a task_id")
        return SimTask.static(body, fault=fault, business_id=business_id)
    if ("begin_time_ms" in data) == ("started_seconds_ago" in data):
        raise TaskFileError("give exactly one of begin_time_ms and started_seconds_ago")
    if "begin_time_ms" in data:
        begin_ms = int(data["begin_time_ms"])
    else:
        begin_ms = round((now - float(data["started_seconds_ago"])) * 1000)
    try:
        return SimTask(
            task_id=str(data["task_id"]),
            task_name=str(data["task_name"]),
            resource=str(data["resource"]),
            total_count=int(data["total_count"]),
            duration_seconds=float(data["duration_seconds"]),
            begin_time_ms=begin_ms,
            failure_rate=float(data.get("failure_rate", 0.0)),
            task_type=data.get("task_type", 0),
            operator=str(data.get("operator", DEFAULT_OPERATOR)),
            user_id=str(data.get("user_id", DEFAULT_USER_ID)),
            fault=fault,
            business_id=None if business_id is None else str(business_id),
            encoding=data.get("encoding"),
            stall_at_seconds=None
            if data.get("stall_at_seconds") is None
            else float(data["stall_at_seconds"]),
            stall_seconds=float(data.get("stall_seconds", 0.0)),
            ends_early_at_seconds=None
            if data.get("ends_early_at_seconds") is None
            else float(data["ends_early_at_seconds"]),
        )
    except KeyError as exc:
        raise TaskFileError(f"missing task key {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise TaskFileError(str(exc)) from exc


def tasks_from_json(items: Any, *, now: float) -> list[SimTask]:
    if not isinstance(items, list):
        raise TaskFileError("a task file holds a JSON list of task objects")
    tasks: list[SimTask] = []
    for index, item in enumerate(items):
        try:
            tasks.append(task_from_dict(item, now=now))
        except TaskFileError as exc:
            label = item.get("task_id", "?") if isinstance(item, Mapping) else "?"
            raise TaskFileError(f"task #{index} ({label}): {exc}") from exc
    return tasks


def read_task_file(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskFileError(f"{path}: not JSON: {exc}") from exc


@cache
def _demo_items() -> str:
    return (resources.files("bot") / "data" / "demo_tasks.json").read_text(encoding="utf-8")


def demo_tasks(now: float) -> list[SimTask]:
    """The built-in demo set (``bot/data/demo_tasks.json``), with times relative to ``now``."""
    return tasks_from_json(json.loads(_demo_items()), now=now)


# --- Bulk sets for benchmarks ------------------------------------------------------------------

_BULK_RESOURCES = (
    "knowledge-intent-question-create",
    "knowledge-intent-question-export",
    "knowledge-base-document-import",
)


def bulk_tasks(
    count: int,
    *,
    now: float,
    seed: int = 0,
    finish_within_seconds: float = 60.0,
    id_prefix: str = "b",
) -> list[SimTask]:
    """``count`` deterministic tasks, each finishing at a random moment in the next
    ``finish_within_seconds`` (so a poller sees every one of them change state)."""
    if len(id_prefix) >= 32 or any(c not in "0123456789abcdef" for c in id_prefix):
        raise ValueError("id_prefix must be lowercase hex, shorter than 32 characters")
    rng = random.Random(seed)
    tasks: list[SimTask] = []
    width = 32 - len(id_prefix)
    for index in range(count):
        duration = rng.uniform(finish_within_seconds, finish_within_seconds * 4)
        finishes_in = rng.uniform(0.0, finish_within_seconds)
        begin = now + finishes_in - duration
        resource = _BULK_RESOURCES[index % len(_BULK_RESOURCES)]
        tasks.append(
            SimTask(
                task_id=f"{id_prefix}{index:0{width}x}",
                task_name=f"Bulk task {index}",
                resource=resource,
                total_count=rng.randint(1, 20_000),
                duration_seconds=duration,
                begin_time_ms=round(begin * 1000),
                failure_rate=rng.choice((0.0, 0.0, 0.001, 0.02)),
                task_type=1 if resource.endswith("export") else 0,
            )
        )
    return tasks


def ordered(tasks: Iterable[SimTask]) -> list[SimTask]:
    """Newest ``begin_time`` first; ties broken by id so pages are stable."""
    return sorted(tasks, key=lambda task: (-task.begin_time_ms, task.task_id))
