"""Numbers, percentages, durations and lists in the reader's language.

Invariants: every word and separator comes from the catalog (``format_*``, ``duration_*``,
``list_separator``), so a new language changes its catalog, not this module. Values are rounded
down, never up: a card never shows 100% or "1 h" before it is true. Times are not formatted
here: they stay Slack ``<!date^…>`` tokens, which each reader's client renders in their own locale
and timezone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta

from bot.messages import DEFAULT_LOCALE, text

_MAX_ROUGH_SECONDS = 1e6 * 86400


def number(value: int, locale: str = DEFAULT_LOCALE) -> str:
    """``25001`` as ``25,001`` (the separator is the catalog's ``format_thousands``)."""
    grouped = f"{value:,}"
    separator = text("format_thousands", locale)
    return grouped if separator == "," else grouped.replace(",", separator)


def tenths(count: int, locale: str = DEFAULT_LOCALE) -> str:
    """``count`` tenths as a decimal with the catalog's decimal mark: ``999`` is ``99.9``."""
    return f"{number(count // 10, locale)}{text('format_decimal', locale)}{count % 10}"


def percent(value: str, locale: str = DEFAULT_LOCALE) -> str:
    """An already formatted number as a percentage: ``99.9%``."""
    return text("format_percent", locale, value=value)


def join(items: Iterable[str], locale: str = DEFAULT_LOCALE) -> str:
    """Items of an enumeration: ``a, b`` in English, ``a、b`` in Chinese."""
    return text("list_separator", locale).join(items)


def humanize(span: timedelta, locale: str = DEFAULT_LOCALE) -> str:
    """A duration in at most two units: ``1 h 30 min``, ``1 小时 30 分钟``."""
    seconds = int(span.total_seconds())
    if seconds < 0:
        # Clock skew between MetaStudio and us: no honest duration to show.
        return text("not_set", locale)
    if seconds == 0:
        return text("duration_instant", locale)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return text("duration_days", locale, days=number(days, locale), hours=hours)
    if hours:
        return text("duration_hours", locale, hours=hours, minutes=minutes)
    if minutes:
        return text("duration_minutes", locale, minutes=minutes, seconds=secs)
    return text("duration_seconds", locale, seconds=secs)


def rough(seconds: float, locale: str = DEFAULT_LOCALE) -> str:
    """An estimate of time left, in whole minutes rounded up: ``25 min``, ``1 h 05 min``.

    Rounded up, not down like ``humanize``: an ETA that reads shorter than the estimate would
    promise the end too early.
    """
    if not math.isfinite(seconds):
        return text("not_set", locale)
    if seconds < 60:
        return text("eta_under_minute", locale)
    # Capped far beyond any real task, so an absurd rate cannot overflow timedelta.
    minutes = int(-(-min(seconds, _MAX_ROUGH_SECONDS) // 60))
    if minutes < 60:
        return text("eta_minutes", locale, minutes=minutes)
    return humanize(timedelta(minutes=minutes), locale)


def rate(items_per_second: float, locale: str = DEFAULT_LOCALE) -> str:
    """A throughput to one decimal, per second from 1 item/s up, else per minute: ``9.3 items/s``."""
    if items_per_second >= 1:
        return text("rate_per_second", locale, rate=tenths(int(items_per_second * 10), locale))
    return text("rate_per_minute", locale, rate=tenths(int(items_per_second * 600), locale))
