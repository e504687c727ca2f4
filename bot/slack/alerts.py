"""Block Kit for follow-ups: the completion alert, the notices that end a watch, the list of what a
channel watches, and the live card of a watched task.

Each builder returns ``Message(text, blocks)``: ``text`` is the notification and fallback line,
``blocks`` what the channel sees. Everything a user provided (task names, resources) is cleaned
and escaped, so a name like ``<!channel>`` cannot ping anyone; the only mention is the person
who asked for the follow-up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from bot.db.feeds import FeedRecord
from bot.db.followups import ChannelWatch
from bot.messages import DEFAULT_LOCALE, text
from bot.messages.format import humanize, join, number, rough, tenths
from bot.metastudio.models import Task
from bot.slack.blocks import (
    MAX_FIELD,
    MAX_NAME,
    MAX_NOTIFICATION,
    MAX_VALUE,
    clean,
    escape,
    slack_date,
    truncate,
)
from bot.slack.blocks import button as _button
from bot.slack.blocks import code as _code_text
from bot.slack.blocks import context as _context
from bot.slack.blocks import field as _field
from bot.slack.blocks import md as _md
from bot.slack.blocks import mrkdwn as _mrkdwn
from bot.slack.blocks import section as _section
from bot.slack.cards import CardView, card_text, task_card
from bot.slack.delivery import CANNOT_POST
from bot.slack.ids import ACTION_OPEN, ACTION_UNSUBSCRIBE, ACTION_UNWATCH

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


# --- the completion alert ---------------------------------------------------------------------


def completion_alert(
    task: Task,
    *,
    user_id: str | None,
    finished_codes: frozenset[str] = frozenset(),
    feed: bool = False,
    locale: str = DEFAULT_LOCALE,
) -> Message:
    """The one message that tells a channel a task finished: counts, rate, duration, failures.

    ``user_id`` (whoever asked) is mentioned; a feed announcement mentions nobody.
    """
    mention = _mention(user_id)
    name = _name(task, locale)
    failed = task.failure_count
    headline = text(
        "alert_finished", locale, mention=mention, emoji=text("emoji_finished", locale), name=name
    )
    # The failure count is shown once, in its field: the headline says only that it finished.
    total = task.total_count if task.total_count > 0 else task.processed_count
    fields = [
        _field(
            "field_succeeded",
            locale,
            text(
                "alert_succeeded_value",
                locale,
                succeeded=number(task.success_count, locale),
                total=number(total, locale),
            ),
        ),
        _field(
            "field_failed",
            locale,
            text("alert_failed_value", locale, count=number(failed, locale))
            if failed > 0
            else number(0, locale),
        ),
        _field("alert_field_rate", locale, _rate(task, locale)),
        _field("field_duration", locale, _duration(task, locale)),
    ]
    context = [text("context_task", locale, task_id=_code_text(task.task_id))]
    if task.task_status is not None:
        context.append(text("alert_context_status", locale, code=_code_text(task.task_status)))
    if feed:
        context.append(text("alert_context_feed", locale))
    blocks: list[dict[str, Any]] = [
        _section(headline),
        {"type": "section", "fields": [_md(f, MAX_FIELD) for f in fields]},
        _context(_SEPARATOR.join(context)),
        {"type": "actions", "elements": [_button(text("button_open", locale), ACTION_OPEN, task.task_id)]},
    ]
    key = "alert_finished_text_failed" if failed > 0 else "alert_finished_text"
    notification = text(
        key,
        locale,
        mention=mention,
        name=name,
        succeeded=number(task.success_count, locale),
        total=number(total, locale),
        failed=number(failed, locale),
    )
    return Message(truncate(notification, MAX_NOTIFICATION, mrkdwn=True), blocks)


def success_rate(task: Task) -> float | None:
    """Succeeded share of the items (0..1), or None when nothing was counted."""
    total = max(task.total_count, task.processed_count)
    if total <= 0:
        return None
    return task.success_count / total


def _rate(task: Task, locale: str) -> str:
    rate = success_rate(task)
    if rate is None:
        return text("not_set", locale)
    # Rounded down to 0.1%, so a task with failures never reads as 100%.
    return text("alert_rate_value", locale, percent=tenths(int(rate * 1000), locale))


# --- notices that end a watch -----------------------------------------------------------------


def expired_notice(
    task_id: str,
    *,
    user_id: str | None,
    hours: float,
    last_seen: Task | None = None,
    locale: str = DEFAULT_LOCALE,
) -> Message:
    mention = _mention(user_id)
    name = (
        _name(last_seen, locale)
        if last_seen is not None
        else text("card_title_fallback", locale, task_id=_mrkdwn(task_id, MAX_VALUE))
    )
    line = text(
        "alert_expired", locale, mention=mention, name=name, task_id=_code_text(task_id), hours=f"{hours:g}"
    )
    if last_seen is not None:
        if last_seen.total_count > 0:
            last = text(
                "alert_expired_last",
                locale,
                processed=number(last_seen.processed_count, locale),
                total=number(last_seen.total_count, locale),
            )
        else:
            last = text(
                "alert_expired_last_no_total", locale, processed=number(last_seen.processed_count, locale)
            )
        line += "\n" + last
    blocks = [
        _section(line),
        {"type": "actions", "elements": [_button(text("button_open", locale), ACTION_OPEN, task_id)]},
    ]
    return Message(truncate(_first_line(line), MAX_NOTIFICATION, mrkdwn=True), blocks)


def not_found_notice(task_id: str, *, user_id: str | None, locale: str = DEFAULT_LOCALE) -> Message:
    line = text("alert_not_found", locale, mention=_mention(user_id), task_id=_code_text(task_id))
    return Message(truncate(line, MAX_NOTIFICATION, mrkdwn=True), [_section(line)])


def cannot_post_dm(*, channel_id: str, task_id: str | None, error: str, locale: str = DEFAULT_LOCALE) -> str:
    """The one sentence the requester gets by DM when taskbot can no longer post in a channel."""
    reason = (
        text(f"slack_reason_{error}", locale) if error in CANNOT_POST else text("slack_reason_other", locale)
    )
    channel = f"<#{channel_id}>" if _SLACK_ID.fullmatch(channel_id) else text("alert_that_channel", locale)
    if task_id is None:
        return text("dm_cannot_post_feed", locale, channel=channel, reason=reason)
    return text("dm_cannot_post_watch", locale, channel=channel, reason=reason, task_id=_code_text(task_id))


# --- what a channel follows -------------------------------------------------------------------


def watching_list(
    watches: Sequence[ChannelWatch],
    feed: FeedRecord | None,
    *,
    digest: str | None = None,
    locale: str = DEFAULT_LOCALE,
) -> Message:
    """The channel's watched tasks (each with a Stop button), its project feed and its digest
    (``digest``: the line that says when it runs), if any."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": text("watching_header", locale), "emoji": True},
        }
    ]
    if feed is None:
        blocks.append(_context(text("watching_no_feed", locale)))
    else:
        resources = [clean(r) for r in feed.resources if clean(r)]
        if resources:
            names = join((f"`{_code_text(r)}`" for r in resources), locale)
            line = text("watching_feed_resources", locale, resources=names)
        else:
            line = text("watching_feed_all", locale)
        filters = feed_filters(feed.only_failed, feed.operator, locale=locale)
        section = _section(f"{line}\n{filters}" if filters else line)
        section["accessory"] = _button(
            text("button_unsubscribe", locale), ACTION_UNSUBSCRIBE, feed.channel_id
        )
        blocks.append(section)
    if digest:
        blocks.append(_context(digest))
    blocks.append({"type": "divider"})
    if not watches:
        blocks.append(_section(text("watching_empty", locale)))
    for watch in watches[:MAX_LISTED]:
        section = _section(
            text(
                "watching_item",
                locale,
                task_id=_code_text(watch.task_id),
                mention=_mention(watch.user_id).strip() or text("not_set", locale),
                since=slack_date(watch.created_at),
                until=slack_date(watch.expires_at),
            )
        )
        section["accessory"] = _button(text("button_unwatch", locale), ACTION_UNWATCH, watch.task_id)
        blocks.append(section)
    if len(watches) > MAX_LISTED:
        blocks.append(
            _context(text("watching_more", locale, count=number(len(watches) - MAX_LISTED, locale)))
        )
    summary = text("watching_text", locale, count=number(len(watches), locale))
    return Message(summary, blocks)


def feed_filters(only_failed: bool, operator: str | None, *, locale: str = DEFAULT_LOCALE) -> str:
    """The feed's filters besides resources as one sentence, or empty when it has none."""
    parts = []
    if only_failed:
        parts.append(text("feed_filter_failed", locale))
    if operator and clean(operator):
        parts.append(text("feed_filter_operator", locale, operator=_code_text(operator)))
    return text("feed_filters", locale, filters=join(parts, locale)) if parts else ""


# --- the live card ----------------------------------------------------------------------------


def watched_card(task: Task, view: CardView) -> Message:
    """The task's card while a channel watches it: the usual card plus a "watching" note, and the
    pace, trend and stall state from the watch's polls.

    Once the task is finished the note goes: the card then shows the final state only.
    """
    blocks = task_card(task, view, now=view.refreshed_at)
    if not task.is_finished(view.finished_codes):
        note = _context(text("watching_note", view.locale))
        actions_at = next((i for i, b in enumerate(blocks) if b.get("type") == "actions"), len(blocks))
        blocks.insert(actions_at, note)
    return Message(card_text(task, view.finished_codes, locale=view.locale), blocks)


def stall_notice(task: Task, *, stalled_for: float, locale: str = DEFAULT_LOCALE) -> Message:
    """The one notice of a stall, posted in the card's thread: how long, and where it is stuck."""
    values = {
        "name": _name(task, locale),
        "duration": rough(stalled_for, locale),
        "processed": number(task.processed_count, locale),
        "total": number(task.total_count, locale),
    }
    line = text("stall_notice" if task.total_count > 0 else "stall_notice_no_total", locale, **values)
    return Message(truncate(line, MAX_NOTIFICATION, mrkdwn=True), [_section(line)])


# --- formatting -------------------------------------------------------------------------------


def _mention(user_id: str | None) -> str:
    """``<@U…> `` for a real Slack user id, else nothing: the mention is the only ping we send."""
    if user_id and _SLACK_ID.fullmatch(user_id):
        return f"<@{user_id}> "
    return ""


def _name(task: Task, locale: str) -> str:
    title = clean(task.task_name) or text("card_title_fallback", locale, task_id=clean(task.task_id))
    return truncate(escape(title), MAX_NAME, mrkdwn=True)


def _first_line(value: str) -> str:
    return value.split("\n", 1)[0]


def _duration(task: Task, locale: str) -> str:
    if task.begin_time is None or task.end_time is None:
        return text("not_set", locale)
    return humanize(timedelta(milliseconds=task.end_time - task.begin_time), locale)
