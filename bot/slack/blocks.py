"""Block Kit's limits and the small builders every message is made of.

Every text that reaches Slack goes through ``truncate`` (counted in UTF-16 units, which is
never less than Python's count, so a text fits however Slack counts) and every value a task
or a user supplies goes through ``clean`` and ``escape`` first, so no name can inject mrkdwn,
mentions or direction overrides. ``cards``, ``alerts`` and ``home`` build on these; none of
them defines its own limits or block shapes.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any, Final

from slack_sdk.models.blocks import ButtonElement, HeaderBlock, InputBlock, Option, SectionBlock
from slack_sdk.models.blocks.block_elements import InputInteractiveElement
from slack_sdk.models.views import View

from bot.messages import text

__all__ = [
    "MAX_BUTTON_TEXT",
    "MAX_BUTTON_VALUE",
    "MAX_FIELD",
    "MAX_HEADER",
    "MAX_NAME",
    "MAX_NOTIFICATION",
    "MAX_SECTION_TEXT",
    "MAX_VALUE",
    "actions",
    "button",
    "clean",
    "code",
    "compose",
    "context",
    "escape",
    "field",
    "fields",
    "header",
    "md",
    "mrkdwn",
    "option",
    "plain",
    "quoted",
    "section",
    "slack_date",
    "truncate",
]

# Slack's own limits, as slack_sdk's Block Kit models (which the tests validate every view with)
# know them, so a cap here and that validation cannot disagree.
MAX_HEADER: Final[int] = HeaderBlock.text_max_length
MAX_SECTION_TEXT: Final[int] = SectionBlock.text_max_length
MAX_FIELDS: Final[int] = SectionBlock.fields_max_length
MAX_BUTTON_TEXT: Final[int] = ButtonElement.text_max_length
MAX_BUTTON_VALUE: Final[int] = ButtonElement.value_max_length
MAX_VIEW_TITLE: Final[int] = View.title_max_length
MAX_LABEL: Final[int] = InputBlock.label_max_length
MAX_HINT: Final[int] = InputBlock.hint_max_length
MAX_PLACEHOLDER: Final[int] = InputInteractiveElement.placeholder_max_length
MAX_OPTION_TEXT: Final[int] = Option.label_max_length
# Slack's documented limits that slack_sdk does not check (https://api.slack.com/reference/block-kit).
MAX_FIELD: Final = 2000
MAX_CONTEXT_TEXT: Final = 2000
# Ours: how much of one value a message shows.
MAX_NAME: Final = 150
MAX_VALUE: Final = 200
MAX_NOTIFICATION: Final = 300
# No message shows more than a few hundred characters of one value: skip work on the rest.
MAX_RAW: Final = 1000

ELLIPSIS: Final = "…"
# Direction overrides could make a name read differently from what it is.
_BIDI_CONTROLS: Final = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def truncate(value: str, limit: int, *, mrkdwn: bool = False) -> str:
    """``value`` cut to at most ``limit`` characters, ending in an ellipsis when cut.

    With ``mrkdwn`` a cut never splits an escape like ``&amp;``.
    """
    if _units(value) <= limit:
        return value
    budget = limit - _units(ELLIPSIS)
    end = 0
    for char in value:
        budget -= _units(char)
        if budget < 0:
            break
        end += 1
    cut = value[:end]
    if mrkdwn:
        amp = cut.rfind("&", max(0, end - 4))
        if amp != -1 and ";" not in cut[amp:]:
            cut = cut[:amp]
    return cut + ELLIPSIS


def _units(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


def clean(value: str | None) -> str:
    """One line of printable text: control characters become spaces, runs of spaces collapse."""
    if not value:
        return ""
    chars = (
        " " if c in _BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c
        for c in value[:MAX_RAW]
    )
    return " ".join("".join(chars).split())


def escape(value: str) -> str:
    """Text safe inside mrkdwn: Slack parses only ``&``, ``<`` and ``>`` as control characters."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(value: str | None, limit: int) -> str:
    """A supplied value as inert mrkdwn of at most ``limit`` characters."""
    return truncate(escape(clean(value)), limit, mrkdwn=True)


def code(value: str | None, limit: int = MAX_VALUE) -> str:
    """A value for inside a backtick span (``mrkdwn`` of it): a backtick in the value would end
    the span early, so it becomes the look-alike ``ˋ``."""
    return mrkdwn(value, limit).replace("`", "ˋ")


def quoted(value: str | None, limit: int) -> str:
    """Outside text (what someone typed, what a server said) quoted back in a catalog sentence:
    ``code`` of it, or ``?`` when nothing printable is left, so a span never shows up empty."""
    return code(value, limit) or "?"


def slack_date(
    moment: datetime, token: str = "{date_short_pretty} {time}", fallback: str = "%Y-%m-%d %H:%M UTC"
) -> str:
    """A date every reader sees in their own timezone and locale; the fallback is UTC for old clients."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"<!date^{int(utc.timestamp())}^{token}|{utc.strftime(fallback)}>"


def compose(kind: str, **fields: Any) -> dict[str, Any]:
    """A Block Kit object of type ``kind`` with the fields that are not None.

    None means absent: Slack rejects a null (and an empty ``value`` or ``initial_value``) where an
    absent optional field just takes its default, so a builder passes None for "not set".
    """
    return {"type": kind} | {name: value for name, value in fields.items() if value is not None}


def option(label: str, value: str) -> dict[str, Any]:
    """One choice of a select menu or a radio group."""
    return {"text": plain(label, MAX_OPTION_TEXT), "value": value}


def plain(value: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(value, limit), "emoji": True}


def md(value: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(value, limit, mrkdwn=True)}


def header(title: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(title, MAX_HEADER)}


def section(body: str) -> dict[str, Any]:
    return {"type": "section", "text": md(body, MAX_SECTION_TEXT)}


def field(label_key: str, locale: str, value: str) -> str:
    """One labelled field: the catalog's label over the value."""
    return f"{text(label_key, locale)}\n{value}"


def fields(*values: str) -> dict[str, Any]:
    return {"type": "section", "fields": [md(value, MAX_FIELD) for value in values[:MAX_FIELDS]]}


def context(line: str) -> dict[str, Any]:
    return {"type": "context", "elements": [md(line, MAX_SECTION_TEXT)]}


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def button(label: str, action_id: str, value: str = "", *, style: str | None = None) -> dict[str, Any]:
    return compose(
        "button",
        text=plain(label, MAX_BUTTON_TEXT),
        action_id=action_id,
        value=truncate(value, MAX_BUTTON_VALUE) if value else None,
        style=style or None,
    )
