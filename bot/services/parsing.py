"""Parsing of ``/task`` text into a typed command. Pure: no I/O, so it is fuzzed directly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot import messages
from bot.db.digests import CADENCES, Cadence
from bot.followups.digest_schedule import WEEKDAY_NAMES
from bot.metastudio.models import is_task_id
from bot.slack.blocks import quoted

_ECHO_LIMIT = 40
_QUOTES = "`'\"‘’“”<>"
_LOOKS_LIKE_ID = re.compile(r"^[0-9A-Za-z_-]{12,}$")
MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class _NoArguments:
    """A command without arguments: its class is all it says, so any two of a class are equal."""


class Help(_NoArguments):
    """``help``, ``-h``, ``--help``, ``?`` or nothing."""


@dataclass(frozen=True, slots=True)
class ShowTask:
    task_id: str


@dataclass(frozen=True, slots=True)
class Recent:
    resources: tuple[str, ...] = ()
    page: int = 1
    """``page N``: the N-th ten, newest first."""


@dataclass(frozen=True, slots=True)
class Watch:
    task_id: str


@dataclass(frozen=True, slots=True)
class Unwatch:
    task_id: str


class Watching(_NoArguments):
    """``watching``: the channel's watches and subscriptions."""


@dataclass(frozen=True, slots=True)
class Subscribe:
    resources: tuple[str, ...] = ()
    only_failed: bool = False
    """``failed``: only tasks that had failures."""
    operator: str | None = None
    """``by:<operator>``: only that operator's tasks."""


class Unsubscribe(_NoArguments):
    """``unsubscribe``: the channel's subscription ends."""


class DigestShow(_NoArguments):
    """``digest``: show the channel's digest setting."""


class DigestOff(_NoArguments):
    """``digest off``: the channel's digest stops."""


@dataclass(frozen=True, slots=True)
class DigestSet:
    """``digest daily|weekdays|weekly <day> HH:MM [quiet]``, in the setter's timezone."""

    cadence: Cadence
    hour: int
    minute: int
    weekday: int | None = None
    """0 = Monday … 6 = Sunday, for ``weekly``."""
    quiet: bool = False
    """Skip a run in which nothing finished."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """Text that is not a command; ``message`` is the one sentence to show the user."""

    message: str


Command = (
    Help
    | ShowTask
    | Recent
    | Watch
    | Unwatch
    | Watching
    | Subscribe
    | Unsubscribe
    | DigestShow
    | DigestOff
    | DigestSet
    | Invalid
)

_CLOCK_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


def _strip_quotes(word: str) -> str:
    return word.strip(_QUOTES)


def parse(text: str | None, *, locale: str = messages.DEFAULT_LOCALE) -> Command:
    """The command in ``text``; an ``Invalid`` carries its sentence in ``locale``."""
    words = [w for w in (_strip_quotes(w) for w in (text or "").split()) if w]
    if not words or (len(words) == 1 and words[0].lower() in {"help", "-h", "--help", "?"}):
        return Help()
    head, rest = words[0], words[1:]
    keyword = head.lower()
    if keyword == "subscribe":
        return _subscribe(rest, locale)
    if keyword == "digest":
        return _digest([w.lower() for w in rest], locale)
    if keyword == "recent":
        page = 1
        if len(rest) >= 2 and rest[-2].lower() == "page":
            if not rest[-1].isdigit() or not 1 <= int(rest[-1]) <= MAX_PAGE:
                return Invalid(messages.text("error_recent_page", locale, max=MAX_PAGE))
            page, rest = int(rest[-1]), rest[:-2]
        resources = tuple(dict.fromkeys(r for word in rest for r in word.split(",") if r))
        return Recent(resources, page=page)
    if keyword in ("watching", "unsubscribe"):
        if rest:
            return Invalid(messages.text("error_takes_no_arguments", locale, word=keyword))
        return Watching() if keyword == "watching" else Unsubscribe()
    if keyword in ("watch", "unwatch"):
        if len(rest) != 1:
            return Invalid(messages.text("error_needs_task_id", locale, word=keyword))
        if not is_task_id(rest[0]):
            return Invalid(
                messages.text("error_invalid_task_id", locale, task_id=quoted(rest[0], _ECHO_LIMIT))
            )
        task_id = rest[0].lower()
        return Watch(task_id) if keyword == "watch" else Unwatch(task_id)
    if is_task_id(head):
        if rest:
            return Invalid(messages.text("error_too_many_arguments", locale, task_id=head))
        return ShowTask(head.lower())
    if _LOOKS_LIKE_ID.match(head) or all(ch in "0123456789abcdefABCDEF" for ch in head):
        return Invalid(messages.text("error_invalid_task_id", locale, task_id=quoted(head, _ECHO_LIMIT)))
    return Invalid(messages.text("error_unknown_subcommand", locale, word=quoted(head, _ECHO_LIMIT)))


def _subscribe(words: list[str], locale: str) -> Command:
    """``subscribe [resource …] [failed] [by:<operator>]``: filters are keywords, the rest resources."""
    resources: list[str] = []
    only_failed = False
    operator: str | None = None
    for word in words:
        if word.lower() == "failed":
            only_failed = True
        elif word.lower().startswith("by:"):
            name = word[3:]
            if not name or (operator is not None and operator != name):
                return Invalid(messages.text("error_subscribe_operator", locale))
            operator = name
        else:
            resources.extend(r for r in word.split(",") if r)
    return Subscribe(tuple(dict.fromkeys(resources)), only_failed=only_failed, operator=operator)


def _digest(words: list[str], locale: str) -> Command:
    """``digest``, ``digest off``, ``digest daily|weekdays HH:MM [quiet]``, ``digest weekly <day> HH:MM [quiet]``."""
    if not words:
        return DigestShow()
    if words == ["off"]:
        return DigestOff()
    quiet = words[-1] == "quiet"
    if quiet:
        words = words[:-1]
    word, *rest = words
    cadence = next((c for c in CADENCES if c == word), None)
    weekday: int | None = None
    if cadence == "weekly" and rest and rest[0][:3] in WEEKDAY_NAMES:
        weekday = WEEKDAY_NAMES.index(rest[0][:3])
        rest = rest[1:]
    match = _CLOCK_TIME.match(rest[0]) if len(rest) == 1 else None
    if cadence is None or match is None or (cadence == "weekly") != (weekday is not None):
        return Invalid(messages.text("error_digest_usage", locale))
    return DigestSet(
        cadence,
        hour=int(match.group(1)),
        minute=int(match.group(2)),
        weekday=weekday,
        quiet=quiet,
    )
