"""When a digest runs and what it says: pure functions over the digest row and the listed tasks.

A digest's schedule is an APScheduler ``CronTrigger`` in the timezone of the person who set it,
so daylight-saving changes move the hour with the clock on the wall, as the trigger does. A run
covers the time since the previous run (or the last day or week for the first one). The report
it posts is computed once, when the run is recorded, and frozen in the delivery.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from bot.db.digests import DigestRecord, DigestReport, DigestTask
from bot.metastudio.models import Task

__all__ = [
    "MAX_FAILED_KEPT",
    "SLOWEST",
    "WEEKDAY_NAMES",
    "due_run",
    "known_timezone",
    "period_start",
    "summarize",
    "trigger_for",
]

WEEKDAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLOWEST: Final = 5
MAX_FAILED_KEPT: Final = 40
"""Tasks with failures a report keeps by name (a message shows what fits of them)."""
_LONGEST_GAP: Final = timedelta(days=8)
"""More than the longest time between two runs of any cadence (a week)."""


def known_timezone(name: str | None) -> str:
    """``name`` when it is an IANA timezone this machine knows, else ``UTC``."""
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def trigger_for(digest: DigestRecord) -> CronTrigger:
    if digest.cadence == "weekly" and digest.weekday is not None:
        days = WEEKDAY_NAMES[digest.weekday]
    elif digest.cadence == "weekdays":
        days = "mon-fri"
    else:
        days = "*"
    return CronTrigger(
        day_of_week=days,
        hour=digest.hour,
        minute=digest.minute,
        timezone=ZoneInfo(known_timezone(digest.timezone)),
    )


def due_run(digest: DigestRecord, now: datetime) -> datetime | None:
    """The latest fire time at or before ``now`` that no replica has recorded yet, if any.

    When the job runs on time this is the run it was fired for. Only the latest: a digest that
    missed three runs while every replica was down posts one late digest covering them all.
    """
    recorded = digest.last_run_at or digest.created_at
    trigger = trigger_for(digest)
    fire = trigger.get_next_fire_time(None, max(recorded, now - _LONGEST_GAP))
    missed: datetime | None = None
    while fire is not None and fire <= now:
        if fire > recorded:
            missed = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return missed


def period_start(digest: DigestRecord, fire_at: datetime) -> datetime:
    """Where a run's period begins: the previous run, or one day (a week, for ``weekly``) before."""
    if digest.last_run_at is not None and digest.last_run_at < fire_at:
        return digest.last_run_at
    return fire_at - timedelta(days=7 if digest.cadence == "weekly" else 1)


def summarize(
    tasks: Iterable[Task],
    *,
    since: datetime,
    until: datetime,
    finished_codes: frozenset[str],
    late: bool = False,
) -> DigestReport:
    """The report of the tasks that finished in ``[since, until)`` (each task counted once)."""
    start_ms, end_ms = since.timestamp() * 1000, until.timestamp() * 1000
    finished: dict[str, Task] = {}
    for task in tasks:
        if (
            task.is_finished(finished_codes)
            and task.end_time is not None
            and start_ms <= task.end_time < end_ms
        ):
            finished[task.task_id] = task
    named = [_named(task) for task in finished.values()]
    slowest = sorted((t for t in named if t.seconds is not None), key=lambda t: -(t.seconds or 0.0))
    failed = sorted((t for t in named if t.failure_count > 0), key=lambda t: -t.failure_count)
    return DigestReport(
        since=since,
        until=until,
        late=late,
        finished=len(finished),
        with_failures=len(failed),
        items=sum(task.total_count for task in finished.values()),
        succeeded=sum(task.success_count for task in finished.values()),
        slowest=slowest[:SLOWEST],
        failed=failed[:MAX_FAILED_KEPT],
    )


def _named(task: Task) -> DigestTask:
    seconds = None
    if task.begin_time is not None and task.end_time is not None:
        seconds = max(0.0, (task.end_time - task.begin_time) / 1000)
    return DigestTask(
        task_id=task.task_id,
        task_name=task.task_name,
        resource=task.resource,
        seconds=seconds,
        total_count=task.total_count,
        failure_count=task.failure_count,
    )
