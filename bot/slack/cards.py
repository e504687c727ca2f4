"""Block Kit cards for import/export tasks.

Status codes are undocumented, so a card never claims a meaning the API did not give: the raw
code is always shown next to the label, and "finished" comes only from ``Task.is_finished``.
A running card shows a rate and an ETA only with an honest basis (``bot.metastudio.progress``):
the average since ``begin_time`` for a card seen once, the smoothed rate of the polls for a
watched task's live card, which also shows the throughput trend and whether the task stalled.
Every card stays inside Block Kit's limits whatever the API sends, and user-provided text is
escaped so a task name like ``<!channel>`` cannot ping anyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bot.messages import DEFAULT_LOCALE, text
from bot.messages.format import humanize, number, percent, rate, rough
from bot.metastudio.models import Task, TaskPage
from bot.metastudio.progress import Estimate, Progress, estimate_once, sparkline
from bot.slack.blocks import (
    MAX_NAME,
    MAX_NOTIFICATION,
    MAX_VALUE,
    clean,
    slack_date,
    truncate,
)
from bot.slack.blocks import button as _button
from bot.slack.blocks import code as _code_text
from bot.slack.blocks import context as _context
from bot.slack.blocks import field as _field
from bot.slack.blocks import fields as _fields_of
from bot.slack.blocks import header as _header
from bot.slack.blocks import mrkdwn as _mrkdwn
from bot.slack.blocks import section as _section
from bot.slack.ids import ACTION_OPEN, ACTION_REFRESH, ACTION_WATCH

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_RECENT: Final = 10

# Readability caps, well under the hard limits, so one odd value cannot swamp a card.

_BAR_CELLS: Final = 10
_SEPARATOR: Final = " · "
_LOOSE_AMPERSAND: Final = re.compile(r"&(?!(?:amp|lt|gt);)")


def status_emoji(task: Task, finished_codes: frozenset[str], *, locale: str = DEFAULT_LOCALE) -> str:
    return text(f"emoji_{_state(task, finished_codes)}", locale)


def card_text(
    task: Task, finished_codes: frozenset[str] = frozenset(), *, locale: str = DEFAULT_LOCALE
) -> str:
    """The notification and fallback text of a card: name, status and counts on one line."""
    values = {
        "name": _mrkdwn(_title(task, locale), MAX_NAME),
        "status": text(f"status_{_state(task, finished_codes)}", locale),
        "processed": number(task.processed_count, locale),
        "total": number(task.total_count, locale),
    }
    line = text("card_text" if task.total_count > 0 else "card_text_no_total", locale, **values)
    return truncate(line, MAX_NOTIFICATION, mrkdwn=True)


@dataclass(frozen=True, slots=True)
class CardView:
    """How to draw a task's card, besides the task: one value for ``task_card`` and the live card.

    ``request_id`` is the MetaStudio request the task was read with (shown for support), or None.
    ``refreshed_at`` is when a refreshed or live card was read. ``progress`` is what a watch's
    polls have seen (live cards); without it the pace comes from ``begin_time``.
    ``resumed_after`` is the length in seconds of a stall that has ended.
    """

    request_id: str | None
    finished_codes: frozenset[str] = frozenset()
    refreshed_at: datetime | None = None
    locale: str = DEFAULT_LOCALE
    progress: Progress | None = None
    resumed_after: float | None = None


def task_card(
    task: Task, view: CardView, *, watch_button: bool = False, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The task's card: status with its raw code, progress, pace, counts, details, times and buttons."""
    locale = view.locale
    state = _state(task, view.finished_codes)
    now = now or datetime.now(UTC)
    lines = [_status_line(task, state, locale), _progress_line(task, locale)]
    if state == "running":
        lines += _pace_lines(task, now.timestamp(), view.progress, view.resumed_after, locale)
    buttons = [_button(text("button_refresh", locale), ACTION_REFRESH, task.task_id)]
    if watch_button and state != "finished":
        buttons.append(_button(text("button_watch", locale), ACTION_WATCH, task.task_id))
    return [
        _header(_title(task, locale)),
        _section("\n".join(lines)),
        _fields_of(
            _field("field_total", locale, number(task.total_count, locale)),
            _field("field_type", locale, _type(task.task_type, locale)),
            _field("field_succeeded", locale, number(task.success_count, locale)),
            _field("field_resource", locale, _code_or_unset(task.resource, locale)),
            _field("field_failed", locale, _failed(task.failure_count, locale)),
            _field("field_operator", locale, _mrkdwn(task.operator, MAX_VALUE) or text("not_set", locale)),
        ),
        _fields_of(
            _field("field_started", locale, _date_or_unset(_moment(task.begin_time), locale)),
            _field(
                "field_ended",
                locale,
                _date_or_unset(_moment(task.end_time) if state == "finished" else None, locale),
            ),
            _field("field_duration", locale, _duration(task, state, now, locale)),
        ),
        _context(_context_line(task, view.request_id, view.refreshed_at, locale)),
        {"type": "actions", "elements": buttons},
    ]


def recent_list(
    page: TaskPage,
    *,
    resource: str | None,
    finished_codes: frozenset[str] = frozenset(),
    request_id: str | None = None,
    locale: str = DEFAULT_LOCALE,
    page_number: int = 1,
    resources: tuple[str, ...] = (),
    paging_ignored: bool = False,
) -> list[dict[str, Any]]:
    """The newest tasks, one section each with an Open button; at most ``MAX_RECENT`` of them.

    ``page_number`` N shows the N-th ten; when more exist, the context says how to see the next.
    ``paging_ignored`` (the server sent page 1 again) shows a sentence instead of a wrong page.
    """
    name = clean(resource)
    header = text("recent_header_resource", locale, resource=name) if name else text("recent_header", locale)
    blocks: list[dict[str, Any]] = [_header(header)]
    if paging_ignored:
        blocks.append(_section(text("recent_paging_ignored", locale)))
        return blocks
    tasks = page.data[:MAX_RECENT]
    if not tasks:
        blocks.append(_section(text("recent_empty", locale)))
    for task in tasks:
        blocks.append(_recent_item(task, finished_codes, locale))
    notes = []
    count = max(page.count, len(page.data))
    first = (page_number - 1) * MAX_RECENT
    if tasks and page_number == 1:
        notes.append(text("recent_context", locale, shown=len(tasks), count=number(count, locale)))
    elif tasks:
        notes.append(
            text(
                "recent_page_context",
                locale,
                page=page_number,
                first=number(first + 1, locale),
                last=number(first + len(tasks), locale),
                count=number(count, locale),
            )
        )
    if tasks and count > first + len(tasks):
        # Each resource followed by a space, so the command reads "/task recent a b page 2".
        words = "".join(f"{_code(r)} " for r in resources)
        notes.append(text("recent_more", locale, resources=words, page=page_number + 1))
    if request_id:
        notes.append(text("context_request", locale, request_id=_code(request_id)))
    if notes:
        blocks.append(_context(_SEPARATOR.join(notes)))
    return blocks


def error_blocks(
    message: str, *, request_id: str | None = None, locale: str = DEFAULT_LOCALE
) -> list[dict[str, Any]]:
    """One warning section for a catalog message.

    Catalog text may already hold ``&lt;`` escapes; those stay, while any raw ``<``, ``>`` or ``&``
    (say from a value formatted into the message) is escaped, so nothing in it can ping.
    """
    safe = _LOOSE_AMPERSAND.sub("&amp;", message).replace("<", "&lt;").replace(">", "&gt;")
    blocks = [_section(text("error_card", locale, message=safe))]
    if request_id:
        blocks.append(_context(text("error_request_id", locale, request_id=_code(request_id))))
    return blocks


# --- card parts ----------------------------------------------------------------------------


def _state(task: Task, finished_codes: frozenset[str]) -> str:
    if task.is_finished(finished_codes):
        return "finished"
    if task.processed_count == 0 and task.begin_time is None:
        return "not_started"
    return "running"


def _title(task: Task, locale: str) -> str:
    return clean(task.task_name) or text("card_title_fallback", locale, task_id=clean(task.task_id))


def _status_line(task: Task, state: str, locale: str) -> str:
    values = {"emoji": text(f"emoji_{state}", locale), "label": text(f"status_{state}", locale)}
    if task.task_status is None:
        return text("status_no_code", locale, **values)
    return text("status_with_code", locale, code=_code(task.task_status), **values)


def _progress_line(task: Task, locale: str) -> str:
    progress = task.progress
    if progress is None:
        return text("progress_unknown", locale)
    # Rounded down, so a card never shows 100% or a full bar before every item is processed.
    whole = int(progress * 100)
    filled = int(progress * _BAR_CELLS)
    return text(
        "progress_line",
        locale,
        bar="█" * filled + "░" * (_BAR_CELLS - filled),
        percent=percent(str(whole), locale),
        processed=number(task.processed_count, locale),
        total=number(task.total_count, locale),
    )


def _pace_lines(
    task: Task, now: float, progress: Progress | None, resumed_after: float | None, locale: str
) -> list[str]:
    """ETA and rate, or the stall; for a live card also the trend and a stall that ended."""
    begin = task.begin_time / 1000 if task.begin_time is not None else None
    once = estimate_once(now=now, begin=begin, processed=task.processed_count, total=task.total_count)
    if progress is None:
        return _eta_line(once, locale)
    lines: list[str] = []
    if progress.stalled:
        assert progress.stalled_since is not None
        values = {
            "duration": rough(now - progress.stalled_since, locale),
            "processed": number(task.processed_count, locale),
            "total": number(task.total_count, locale),
        }
        key = "stalled_line" if task.total_count > 0 else "stalled_line_no_total"
        lines.append(text(key, locale, **values))
    else:
        # Until two polls have shown a change, the average since begin_time is the only basis.
        smoothed = progress.eta(task.total_count) if progress.rate is not None else once
        lines += _eta_line(smoothed, locale)
        if resumed_after is not None:
            lines.append(text("resumed_line", locale, duration=rough(resumed_after, locale)))
    spark = sparkline(progress.history)
    if spark:
        lines.append(text("trend_line", locale, spark=spark))
    return lines


def _eta_line(estimate: Estimate | None, locale: str) -> list[str]:
    if estimate is None:
        return []
    return [
        text("pace_line", locale, eta=rough(estimate.remaining, locale), rate=rate(estimate.rate, locale))
    ]


def _type(code: str | None, locale: str) -> str:
    # The API reference only says "Task type": show the code, never a guessed meaning.
    return text("type_code", locale, code=_code(code)) if clean(code) else text("not_set", locale)


def _failed(count: int, locale: str) -> str:
    return (
        text("field_failed_value", locale, count=number(count, locale))
        if count > 0
        else number(count, locale)
    )


def _duration(task: Task, state: str, now: datetime, locale: str) -> str:
    begin = _moment(task.begin_time)
    if begin is None or state == "not_started":
        return text("not_set", locale)
    if state == "finished":
        end = _moment(task.end_time)
        return humanize(end - begin, locale) if end is not None else text("not_set", locale)
    return text("duration_so_far", locale, duration=humanize(now - begin, locale))


def _context_line(task: Task, request_id: str | None, refreshed_at: datetime | None, locale: str) -> str:
    parts = [text("context_task", locale, task_id=_code(task.task_id))]
    if clean(task.user_id):
        parts.append(text("context_user", locale, user_id=_code(task.user_id)))
    if request_id:
        parts.append(text("context_request", locale, request_id=_code(request_id)))
    if refreshed_at is not None:
        parts.append(
            text("context_updated", locale, time=slack_date(refreshed_at, "{time_secs}", "%H:%M:%S UTC"))
        )
    return _SEPARATOR.join(parts)


def _recent_item(task: Task, finished_codes: frozenset[str], locale: str) -> dict[str, Any]:
    state = _state(task, finished_codes)
    label = text(f"status_{state}", locale)
    status = (
        text("recent_status", locale, label=label, code=_code(task.task_status))
        if task.task_status is not None
        else text("recent_status_no_code", locale, label=label)
    )
    line = text(
        "recent_line",
        locale,
        emoji=text(f"emoji_{state}", locale),
        name=_mrkdwn(_title(task, locale), MAX_NAME),
        task_id=_code(task.task_id),
        status=status,
        processed=number(task.processed_count, locale),
        total=number(task.total_count, locale) if task.total_count > 0 else text("not_set", locale),
    )
    extras = []
    if task.failure_count > 0:
        extras.append(text("recent_failed", locale, count=number(task.failure_count, locale)))
    begin = _moment(task.begin_time)
    if begin is not None:
        extras.append(text("recent_started", locale, date=_date(begin)))
    section = _section(_SEPARATOR.join([line, *extras]))
    section["accessory"] = _button(text("button_open", locale), ACTION_OPEN, task.task_id)
    return section


# --- value formatting -------------------------------------------------------------------------


def _code(value: str | None) -> str:
    return _code_text(value)


def _code_or_unset(value: str | None, locale: str) -> str:
    return f"`{_code(value)}`" if clean(value) else text("not_set", locale)


def _moment(epoch_ms: int | None) -> datetime | None:
    """The instant, or None when absent or beyond what a datetime can hold."""
    if epoch_ms is None:
        return None
    try:
        return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _date(moment: datetime) -> str:
    return slack_date(moment, "{date_short_pretty} {time}", "%Y-%m-%d %H:%M UTC")


def _date_or_unset(moment: datetime | None, locale: str) -> str:
    return _date(moment) if moment is not None else text("not_set", locale)


# --- blocks ----------------------------------------------------------------------------------
