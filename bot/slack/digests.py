"""Block Kit for digests: the scheduled summary a channel gets, and how its schedule reads.

Task names come from MetaStudio and are cleaned and escaped like every other outside text; the
message stays within Slack's 50 blocks however many tasks had failures.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from bot.db.digests import DigestRecord, DigestReport, DigestTask
from bot.messages import DEFAULT_LOCALE, text
from bot.messages.format import humanize, number, percent, tenths
from bot.slack.alerts import Message
from bot.slack.blocks import (
    MAX_NAME,
    MAX_NOTIFICATION,
    button,
    clean,
    context,
    escape,
    header,
    section,
    slack_date,
    truncate,
)
from bot.slack.ids import ACTION_OPEN

__all__ = ["MAX_FAILED_SHOWN", "digest_message", "schedule_text"]

MAX_FAILED_SHOWN: Final = 30
"""Header, period, summary, two titles, five slowest, the failed ones, "more", late: under 50 blocks."""


def schedule_text(digest: DigestRecord, locale: str = DEFAULT_LOCALE) -> str:
    """``every day at 09:00``: when the digest runs, in the words of ``locale``."""
    time = f"{digest.hour:02d}:{digest.minute:02d}"
    if digest.cadence == "weekly" and digest.weekday is not None:
        return text("digest_when_weekly", locale, day=text(f"weekday_{digest.weekday}", locale), time=time)
    return text(f"digest_when_{digest.cadence}", locale, time=time)


def digest_message(report: DigestReport, locale: str = DEFAULT_LOCALE) -> Message:
    blocks: list[dict[str, Any]] = [header(text("digest_header", locale))]
    if report.late:
        blocks.append(context(text("digest_late", locale)))
    period = text("digest_period", locale, since=slack_date(report.since), until=slack_date(report.until))
    blocks.append(context(period))
    if report.finished == 0:
        blocks.append(section(text("digest_nothing", locale)))
    else:
        rate = (
            percent(tenths(round(1000 * report.succeeded / report.items), locale), locale)
            if report.items
            else text("not_set", locale)
        )
        blocks.append(
            section(
                text(
                    "digest_summary",
                    locale,
                    finished=number(report.finished, locale),
                    with_failures=number(report.with_failures, locale),
                    items=number(report.items, locale),
                    rate=rate,
                )
            )
        )
    if report.slowest:
        blocks.append(section(text("digest_slowest", locale)))
        blocks.extend(_item(task, _slow_line(task, locale), locale) for task in report.slowest)
    if report.failed:
        blocks.append(section(text("digest_failed", locale)))
        blocks.extend(
            _item(task, _failed_line(task, locale), locale) for task in report.failed[:MAX_FAILED_SHOWN]
        )
        hidden = report.with_failures - min(len(report.failed), MAX_FAILED_SHOWN)
        if hidden > 0:
            blocks.append(context(text("digest_more_failed", locale, count=number(hidden, locale))))
    summary = text("digest_text", locale, finished=report.finished, with_failures=report.with_failures)
    return Message(truncate(summary, MAX_NOTIFICATION), blocks)


def _name(task: DigestTask) -> str:
    return truncate(escape(clean(task.task_name) or task.task_id), MAX_NAME, mrkdwn=True)


def _slow_line(task: DigestTask, locale: str) -> str:
    duration = humanize(timedelta(seconds=task.seconds or 0.0), locale)
    return text("digest_item_slow", locale, name=_name(task), duration=duration)


def _failed_line(task: DigestTask, locale: str) -> str:
    return text(
        "digest_item_failed",
        locale,
        name=_name(task),
        failures=number(task.failure_count, locale),
        total=number(task.total_count, locale),
    )


def _item(task: DigestTask, line: str, locale: str) -> dict[str, Any]:
    block = section(line)
    block["accessory"] = button(text("button_open", locale), ACTION_OPEN, task.task_id)
    return block
