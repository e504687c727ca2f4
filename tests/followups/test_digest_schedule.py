"""Digest schedules and reports: the cron trigger in the setter's timezone, missed runs, figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.db.digests import DigestRecord
from bot.followups.digest_schedule import (
    due_run,
    known_timezone,
    period_start,
    summarize,
    trigger_for,
)
from bot.metastudio.models import Task
from bot.services.parsing import DigestOff, DigestSet, DigestShow, Invalid, parse


def _digest(**changes: object) -> DigestRecord:
    values: dict[str, object] = {
        "id": 1,
        "team_id": "T1",
        "channel_id": "C1",
        "user_id": "U1",
        "cadence": "daily",
        "weekday": None,
        "hour": 9,
        "minute": 0,
        "timezone": "America/New_York",
        "quiet": False,
        "locale": "en",
        "created_at": datetime(2026, 3, 1, tzinfo=UTC),
        "last_run_at": None,
    }
    values.update(changes)
    return DigestRecord(**values)  # type: ignore[arg-type]


def _ended(
    task_id: str, at: datetime, *, ran_ms: int, total: int, failed: int = 0, name: str | None = None
) -> Task:
    """A task that ran for ``ran_ms`` and ended at ``at``, ``failed`` of its ``total`` items failed."""
    return Task(
        task_id=task_id,
        task_name=name,
        begin_time=_ms(at) - ran_ms,
        end_time=_ms(at),
        total_count=total,
        success_count=total - failed,
        failure_count=failed,
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_the_commands_parse_in_any_case_and_bad_ones_get_one_sentence() -> None:
    assert parse("digest") == DigestShow()
    assert parse("digest OFF") == DigestOff()
    assert parse("digest daily 09:00") == DigestSet("daily", hour=9, minute=0)
    assert parse("digest weekdays 7:30 quiet") == DigestSet("weekdays", hour=7, minute=30, quiet=True)
    assert parse("digest weekly Monday 18:05") == DigestSet("weekly", hour=18, minute=5, weekday=0)
    assert parse("digest weekly sun 00:00") == DigestSet("weekly", hour=0, minute=0, weekday=6)
    for wrong in (
        "digest hourly 09:00",
        "digest daily 25:00",
        "digest weekly 09:00",
        "digest daily mon 09:00",
    ):
        result = parse(wrong)
        assert isinstance(result, Invalid) and "/task digest daily 09:00" in result.message, wrong
    zh = parse("digest daily 9", locale="zh-CN")
    assert isinstance(zh, Invalid) and "无法识别" in zh.message


def test_a_daily_digest_keeps_its_wall_clock_hour_across_the_dst_change() -> None:
    trigger = trigger_for(_digest())
    before = trigger.get_next_fire_time(None, datetime(2026, 3, 7, 12, tzinfo=UTC))
    after = trigger.get_next_fire_time(before, before + timedelta(seconds=1))
    # New York moves to daylight time on 2026-03-08: 09:00 is 14:00 UTC before, 13:00 UTC after.
    assert before == datetime(2026, 3, 7, 14, tzinfo=UTC)
    assert after == datetime(2026, 3, 8, 13, tzinfo=UTC)
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=23)


def test_weekdays_skip_the_weekend_and_weekly_runs_on_its_day() -> None:
    weekdays = trigger_for(_digest(cadence="weekdays", timezone="UTC"))
    friday = datetime(2026, 12, 4, 9, tzinfo=UTC)
    assert weekdays.get_next_fire_time(friday, friday + timedelta(seconds=1)) == datetime(
        2026, 12, 7, 9, tzinfo=UTC
    )
    weekly = trigger_for(_digest(cadence="weekly", weekday=2, timezone="Asia/Shanghai"))
    assert weekly.get_next_fire_time(None, friday) == datetime(2026, 12, 9, 1, tzinfo=UTC)


def test_an_unknown_timezone_falls_back_to_utc() -> None:
    assert known_timezone("Mars/Olympus") == "UTC"
    assert known_timezone("") == "UTC"
    assert known_timezone("Asia/Shanghai") == "Asia/Shanghai"


def test_only_the_latest_missed_run_is_owed_and_none_once_it_is_recorded() -> None:
    digest = _digest(timezone="UTC", last_run_at=datetime(2026, 12, 1, 9, tzinfo=UTC))
    now = datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert due_run(digest, now) == datetime(2026, 12, 4, 9, tzinfo=UTC)
    recorded = _digest(timezone="UTC", last_run_at=datetime(2026, 12, 4, 9, tzinfo=UTC))
    assert due_run(recorded, now) is None
    # A digest set after today's hour owes nothing for today.
    fresh = _digest(timezone="UTC", created_at=datetime(2026, 12, 4, 9, 30, tzinfo=UTC))
    assert due_run(fresh, now) is None


def test_a_run_covers_the_time_since_the_last_one_or_a_day_or_a_week() -> None:
    fire = datetime(2026, 12, 7, 9, tzinfo=UTC)
    assert period_start(_digest(), fire) == fire - timedelta(days=1)
    assert period_start(_digest(cadence="weekly", weekday=0), fire) == fire - timedelta(days=7)
    last = datetime(2026, 12, 4, 9, tzinfo=UTC)
    assert period_start(_digest(last_run_at=last), fire) == last


def test_the_report_counts_only_tasks_that_finished_in_the_period() -> None:
    since, until = datetime(2026, 12, 6, 9, tzinfo=UTC), datetime(2026, 12, 7, 9, tzinfo=UTC)
    inside = since + timedelta(hours=2)
    tasks = [
        _ended("a" * 32, inside, ran_ms=1000, total=10, name="fast"),
        _ended("b" * 32, inside, ran_ms=3_600_000, total=100, failed=10, name="slow"),
        # Ended before the period, still running, and ended after it: not counted.
        _ended("c" * 32, since - timedelta(milliseconds=1), ran_ms=4999, total=1),
        Task(task_id="d" * 32, begin_time=_ms(inside), total_count=50, success_count=3),
        _ended("e" * 32, until, ran_ms=0, total=1),
    ]
    report = summarize(tasks + tasks[:1], since=since, until=until, finished_codes=frozenset())
    assert (report.finished, report.with_failures, report.items, report.succeeded) == (2, 1, 110, 100)
    assert [t.task_name for t in report.slowest] == ["slow", "fast"]
    assert [t.task_id for t in report.failed] == ["b" * 32]
    assert report.slowest[0].seconds == 3600.0
