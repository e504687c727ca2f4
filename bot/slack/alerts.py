"""Block Kit for follow-ups: the completion alert, the notices that end a watch, the list of what a
channel watches, and the live card of a watched task.

Each builder returns ``Message(text, blocks)``: ``text`` is the notification and fallback line,
``blocks`` what the channel sees. Everything a user provided (task names, resources) is cleaned
and escaped, so a name like ``<!channel>`` cannot ping anyone; the only mention is the person
who asked for the follow-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from bot.db.followups import ChannelWatch, FeedRecord
from bot.messages import text
from bot.metastudio.models import Task
from bot.slack.cards import ACTION_OPEN, card_text, clean, escape, humanize, number, task_card, truncate

ACTION_UNWATCH: Final = "task_unwatch"
"""Button on the "watching" list; its value is the task id."""
ACTION_UNSUBSCRIBE: Final = "feed_unsubscribe"
"""Button on the "watching" list that ends the channel's project feed; its value is the channel id."""

MAX_SECTION_TEXT: Final = 3000
MAX_FIELD: Final = 2000
MAX_BUTTON_TEXT: Final = 75
MAX_NOTIFICATION: Final = 300
MAX_NAME: Final = 150
MAX_VALUE: Final = 200
# A list message keeps well under Slack's 50 blocks: header, feed, divider, items, more, context.
MAX_LISTED: Final = 40

# Slack user and channel ids are upper-case letters and digits; anything else is not mentioned.
_SLACK_ID: Final = re.compile(r"^[A-Z0-9]{2,32}$")
_SEPARATOR: Final = " · "


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    blocks: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def task_from_snapshot(snapshot: Mapping[str, Any] | None) -> Task | None:
    """The task a delivery was queued with, or None when there is none or it no longer parses."""
    if not snapshot:
        return None
    try:
        return Task.model_validate(dict(snapshot))
    except ValidationError:
        return None


# --- the completion alert ---------------------------------------------------------------------


def completion_alert(
    task: Task, *, user_id: str | None, finished_codes: frozenset[str] = frozenset(), feed: bool = False
) -> Message:
    """The one message that tells a channel a task finished: counts, rate, duration, failures.

    ``user_id`` (whoever asked) is mentioned; a feed announcement mentions nobody.
    """
    mention = _mention(user_id)
    name = _name(task)
    failed = task.failure_count
    headline = text("alert_finished", mention=mention, emoji=text("emoji_finished"), name=name)
    if failed > 0:
        headline += "\n" + text("alert_failed_warning", count=number(failed))
    total = task.total_count if task.total_count > 0 else task.processed_count
    fields = [
        _field(
            "field_succeeded",
            text("alert_succeeded_value", succeeded=number(task.success_count), total=number(total)),
        ),
        _field(
            "field_failed", text("alert_failed_value", count=number(failed)) if failed > 0 else number(0)
        ),
        _field("alert_field_rate", _rate(task)),
        _field("field_duration", _duration(task)),
    ]
    context = [text("context_task", task_id=_code(task.task_id))]
    if task.task_status is not None:
        context.append(text("alert_context_status", code=_code(task.task_status)))
    if feed:
        context.append(text("alert_context_feed"))
    blocks: list[dict[str, Any]] = [
        _section(headline),
        {"type": "section", "fields": [_md(f, MAX_FIELD) for f in fields]},
        _context(_SEPARATOR.join(context)),
        {"type": "actions", "elements": [_button(text("button_open"), ACTION_OPEN, task.task_id)]},
    ]
    key = "alert_finished_text_failed" if failed > 0 else "alert_finished_text"
    notification = text(
        key,
        mention=mention,
        name=name,
        succeeded=number(task.success_count),
        total=number(total),
        failed=number(failed),
    )
    return Message(truncate(notification, MAX_NOTIFICATION, mrkdwn=True), blocks)


def success_rate(task: Task) -> float | None:
    """Succeeded share of the items (0..1), or None when nothing was counted."""
    total = max(task.total_count, task.processed_count)
    if total <= 0:
        return None
    return task.success_count / total


def _rate(task: Task) -> str:
    rate = success_rate(task)
    if rate is None:
        return text("not_set")
    # Rounded down to 0.1%, so a task with failures never reads as 100%.
    tenths = int(rate * 1000)
    return text("alert_rate_value", percent=f"{tenths // 10}.{tenths % 10}")


# --- notices that end a watch -----------------------------------------------------------------


def expired_notice(
    task_id: str, *, user_id: str | None, hours: float, last_seen: Task | None = None
) -> Message:
    mention = _mention(user_id)
    name = (
        _name(last_seen) if last_seen is not None else text("card_title_fallback", task_id=_plain_id(task_id))
    )
    line = text("alert_expired", mention=mention, name=name, task_id=_code(task_id), hours=f"{hours:g}")
    if last_seen is not None:
        if last_seen.total_count > 0:
            last = text(
                "alert_expired_last",
                processed=number(last_seen.processed_count),
                total=number(last_seen.total_count),
            )
        else:
            last = text("alert_expired_last_no_total", processed=number(last_seen.processed_count))
        line += "\n" + last
    blocks = [
        _section(line),
        {"type": "actions", "elements": [_button(text("button_open"), ACTION_OPEN, task_id)]},
    ]
    return Message(truncate(_first_line(line), MAX_NOTIFICATION, mrkdwn=True), blocks)


def not_found_notice(task_id: str, *, user_id: str | None) -> Message:
    line = text("alert_not_found", mention=_mention(user_id), task_id=_code(task_id))
    return Message(truncate(line, MAX_NOTIFICATION, mrkdwn=True), [_section(line)])


def cannot_post_dm(*, channel_id: str, task_id: str | None, error: str) -> str:
    """The one sentence the requester gets by DM when taskbot can no longer post in a channel."""
    reason = text(f"slack_reason_{error}") if error in _REASONS else text("slack_reason_other")
    channel = f"<#{channel_id}>" if _SLACK_ID.fullmatch(channel_id) else text("alert_that_channel")
    if task_id is None:
        return text("dm_cannot_post_feed", channel=channel, reason=reason)
    return text("dm_cannot_post_watch", channel=channel, reason=reason, task_id=_code(task_id))


_REASONS: Final = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


# --- what a channel follows -------------------------------------------------------------------


def watching_list(watches: Sequence[ChannelWatch], feed: FeedRecord | None) -> Message:
    """The channel's watched tasks (each with a Stop button) and its project feed, if any."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text("watching_header"), "emoji": True}}
    ]
    if feed is None:
        blocks.append(_context(text("watching_no_feed")))
    else:
        resources = [clean(r) for r in feed.resources if clean(r)]
        if resources:
            names = ", ".join(f"`{_code(r)}`" for r in resources)
            line = text("watching_feed_resources", resources=names)
        else:
            line = text("watching_feed_all")
        section = _section(line)
        section["accessory"] = _button(text("button_unsubscribe"), ACTION_UNSUBSCRIBE, feed.channel_id)
        blocks.append(section)
    blocks.append({"type": "divider"})
    if not watches:
        blocks.append(_section(text("watching_empty")))
    for watch in watches[:MAX_LISTED]:
        section = _section(
            text(
                "watching_item",
                task_id=_code(watch.task_id),
                mention=_mention(watch.user_id).strip() or text("not_set"),
                since=_slack_date(watch.created_at),
                until=_slack_date(watch.expires_at),
            )
        )
        section["accessory"] = _button(text("button_unwatch"), ACTION_UNWATCH, watch.task_id)
        blocks.append(section)
    if len(watches) > MAX_LISTED:
        blocks.append(_context(text("watching_more", count=number(len(watches) - MAX_LISTED))))
    summary = text("watching_text", count=number(len(watches)))
    return Message(summary, blocks)


# --- the live card ----------------------------------------------------------------------------


def watched_card(
    task: Task,
    *,
    request_id: str | None,
    finished_codes: frozenset[str] = frozenset(),
    refreshed_at: datetime | None = None,
) -> Message:
    """The task's card while a channel watches it: the usual card plus a "watching" note.

    Once the task is finished the note goes: the card then shows the final state only.
    """
    blocks = task_card(task, request_id=request_id, finished_codes=finished_codes, refreshed_at=refreshed_at)
    if not task.is_finished(finished_codes):
        note = _context(text("watching_note"))
        actions_at = next((i for i, b in enumerate(blocks) if b.get("type") == "actions"), len(blocks))
        blocks.insert(actions_at, note)
    return Message(card_text(task, finished_codes), blocks)


# --- formatting -------------------------------------------------------------------------------


def _mention(user_id: str | None) -> str:
    """``<@U…> `` for a real Slack user id, else nothing: the mention is the only ping we send."""
    if user_id and _SLACK_ID.fullmatch(user_id):
        return f"<@{user_id}> "
    return ""


def _name(task: Task) -> str:
    title = clean(task.task_name) or text("card_title_fallback", task_id=clean(task.task_id))
    return truncate(escape(title), MAX_NAME, mrkdwn=True)


def _plain_id(task_id: str) -> str:
    return truncate(escape(clean(task_id)), MAX_VALUE, mrkdwn=True)


def _code(value: str | None) -> str:
    return truncate(escape(clean(value)), MAX_VALUE, mrkdwn=True).replace("`", "ˋ")


def _first_line(value: str) -> str:
    return value.split("\n", 1)[0]


def _duration(task: Task) -> str:
    if task.begin_time is None or task.end_time is None:
        return text("not_set")
    return humanize(timedelta(milliseconds=task.end_time - task.begin_time))


def _slack_date(moment: datetime) -> str:
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (
        f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{utc.strftime('%Y-%m-%d %H:%M UTC')}>"
    )


def _field(label_key: str, value: str) -> str:
    return f"{text(label_key)}\n{value}"


def _md(value: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(value, limit, mrkdwn=True)}


def _section(body: str) -> dict[str, Any]:
    return {"type": "section", "text": _md(body, MAX_SECTION_TEXT)}


def _context(line: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_md(line, MAX_SECTION_TEXT)]}


def _button(label: str, action_id: str, value: str) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": truncate(label, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id,
    }
    if value:
        button["value"] = truncate(value, 2000)
    return button
