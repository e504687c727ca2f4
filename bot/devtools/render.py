"""Slack messages as terminal text, so the demo shows what a channel would see.

Covers what taskbot posts: header, section (text, two-column fields, button accessory),
divider, context and actions blocks, plus mrkdwn's bold, code, links, mentions and dates.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Final

# The emoji codes taskbot's cards use, and a few common ones.
EMOJI: Final[dict[str, str]] = {
    "white_check_mark": "✅",
    "hourglass_flowing_sand": "⏳",
    "white_circle": "⚪",
    "warning": "⚠️",
    "x": "❌",
    "bell": "🔔",
    "arrows_counterclockwise": "🔄",
    "information_source": "ℹ️",
    "mag": "🔍",
    "tada": "🎉",
    "eyes": "👀",
    "satellite_antenna": "📡",
}

_BOLD = ("\x1b[1m", "\x1b[22m")
_CODE = ("\x1b[36m", "\x1b[39m")
_DIM = ("\x1b[2m", "\x1b[22m")
_BUTTON_STYLES: Final = {"primary": ("\x1b[32m", "\x1b[39m"), "danger": ("\x1b[31m", "\x1b[39m")}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TOKEN = re.compile(r"<([^<>\n]*)>")
_CODE_SPAN = re.compile(r"```(.+?)```|`([^`\n]+)`", re.DOTALL)
_BOLD_SPAN = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")
_FIELD_COLUMN_MAX: Final = 44
_RULE_WIDTH: Final = 40


def render_message(message: dict[str, Any], *, color: bool = False) -> str:
    """Readable terminal text of a Slack message payload as taskbot posts it."""
    style = _Style(color)
    parts: list[str] = []
    meta = _meta(message)
    if meta:
        parts.append(style.wrap(meta, _DIM))
    blocks = message.get("blocks") or []
    if blocks:
        parts.extend(text for text in (_block(block, style) for block in blocks) if text)
    elif message.get("text"):
        # With blocks present, ``text`` is only the notification fallback, which Slack hides.
        parts.append(mrkdwn(str(message["text"]), style))
    return "\n\n".join(parts)


def mrkdwn(source: str, style: _Style | None = None) -> str:
    """Slack mrkdwn as terminal text: tokens resolved, bold and code styled, emoji shown."""
    style = style or _Style(False)
    resolved = _TOKEN.sub(lambda match: _token(match.group(1)), _printable(source))
    pieces: list[str] = []
    last = 0
    for match in _CODE_SPAN.finditer(resolved):
        pieces.append(_inline(resolved[last : match.start()], style))
        code = _unescape(match.group(1) if match.group(1) is not None else match.group(2))
        pieces.append(style.wrap(code, _CODE) if style.color else f"`{code}`")
        last = match.end()
    pieces.append(_inline(resolved[last:], style))
    return "".join(pieces)


def plain(source: str) -> str:
    """A plain_text object's text: no mrkdwn, but emoji codes still show as emoji."""
    return _emoji(_printable(source))


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def wrap(self, text: str, codes: tuple[str, str]) -> str:
        return f"{codes[0]}{text}{codes[1]}" if self.color and text else text


def _meta(message: dict[str, Any]) -> str:
    notes = []
    if message.get("channel"):
        notes.append(f"to {message['channel']}")
    if message.get("thread_ts"):
        notes.append(f"in thread {message['thread_ts']}")
        if message.get("reply_broadcast"):
            notes.append("also sent to the channel")
    if message.get("response_type") == "ephemeral":
        notes.append("only visible to you")
    if message.get("replace_original"):
        notes.append("replaces the original message")
    return f"── {' · '.join(notes)} ──" if notes else ""


def _block(block: dict[str, Any], style: _Style) -> str:
    renderer = _RENDERERS.get(str(block.get("type")))
    return renderer(block, style) if renderer else style.wrap(f"[{block.get('type')} block]", _DIM)


def _header(block: dict[str, Any], style: _Style) -> str:
    title = _text_object(block.get("text"), style)
    return f"{style.wrap(title, _BOLD)}\n{'═' * min(max(_width(title), 3), 80)}"


def _section(block: dict[str, Any], style: _Style) -> str:
    lines = _text_object(block.get("text"), style).split("\n") if block.get("text") else []
    accessory = block.get("accessory")
    if accessory and accessory.get("type") == "button":
        button = _button(accessory, style)
        if lines:
            lines[0] = f"{lines[0]}   {button}"
        else:
            lines.append(button)
    fields = [_text_object(field, style) for field in block.get("fields") or []]
    if fields:
        if lines:
            lines.append("")
        lines.extend(_columns(fields))
    return "\n".join(lines)


def _columns(fields: list[str]) -> Iterable[str]:
    """Fields two to a row, as Slack lays them out; the left column padded to one width."""
    left_width = min(_FIELD_COLUMN_MAX, max(_width(line) for f in fields[::2] for line in f.split("\n")))
    for index in range(0, len(fields), 2):
        left = fields[index].split("\n")
        right = fields[index + 1].split("\n") if index + 1 < len(fields) else []
        for row in range(max(len(left), len(right))):
            cell = left[row] if row < len(left) else ""
            other = right[row] if row < len(right) else ""
            yield f"{cell}{' ' * (left_width - _width(cell))}    {other}".rstrip() if other else cell
        if index + 2 < len(fields):
            yield ""


def _context(block: dict[str, Any], style: _Style) -> str:
    elements = block.get("elements") or []
    texts = [
        _text_object(element, style)
        if element.get("type") in ("mrkdwn", "plain_text")
        else f"[image: {element.get('alt_text', '')}]"
        for element in elements
    ]
    return style.wrap("  ".join(texts), _DIM)


def _actions(block: dict[str, Any], style: _Style) -> str:
    return "  ".join(_button(element, style) for element in block.get("elements") or [])


def _divider(block: dict[str, Any], style: _Style) -> str:
    return style.wrap("─" * _RULE_WIDTH, _DIM)


def _button(element: dict[str, Any], style: _Style) -> str:
    if element.get("type") != "button":
        return f"[ {element.get('type')} ]"
    label = f"[ {plain(str((element.get('text') or {}).get('text', '')))} ]"
    codes = _BUTTON_STYLES.get(str(element.get("style")))
    return style.wrap(label, codes) if codes else label


def _text_object(obj: dict[str, Any] | None, style: _Style) -> str:
    if not obj:
        return ""
    source = str(obj.get("text", ""))
    return mrkdwn(source, style) if obj.get("type") == "mrkdwn" else plain(source)


_RENDERERS: Final[dict[str, Callable[[dict[str, Any], _Style], str]]] = {
    "header": _header,
    "section": _section,
    "context": _context,
    "actions": _actions,
    "divider": _divider,
}


def _token(inner: str) -> str:
    """What Slack shows for ``<...>``: a date's fallback, a mention's name, a link's label."""
    head, _, label = inner.partition("|")
    if head.startswith("!date^"):
        return label or head
    if head.startswith("!subteam^"):
        return label or "@group"
    if head.startswith("!"):
        return f"@{head[1:]}"
    if head.startswith("@"):
        return f"@{label or head[1:]}"
    if head.startswith("#"):
        return f"#{label or head[1:]}"
    return f"{label} ({head})" if label else head


def _inline(text: str, style: _Style) -> str:
    bolded = _BOLD_SPAN.sub(lambda match: style.wrap(match.group(1), _BOLD), text)
    return _unescape(_emoji(bolded))


def _emoji(text: str) -> str:
    return _EMOJI_CODE.sub(lambda match: EMOJI.get(match.group(1), match.group(0)), text)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _printable(text: str) -> str:
    """No terminal control sequences from message content: only our own styling reaches the tty."""
    return "".join(c if c == "\n" or unicodedata.category(c) != "Cc" else " " for c in text)


def _width(text: str) -> int:
    """Terminal columns: wide (East Asian, emoji) characters take two, styling takes none."""
    visible = _ANSI.sub("", text)
    return sum(
        2 if unicodedata.east_asian_width(c) in ("W", "F") else 0 if unicodedata.combining(c) else 1
        for c in visible
    )
