"""The catalogs of user-facing text, one module per language, and which one a Slack locale gets.

Invariants:
- ``en`` is the reference: every catalog has exactly its keys and, per key, the same placeholder
  names (tests/test_messages.py). A key missing from a catalog still falls back to English, so a
  half-finished translation can never raise.
- Adding a language is one new module beside ``en.py`` (a ``CATALOG`` dict) plus one line in
  ``LANGUAGES``; nothing else changes: ``resolve`` matches Slack tags to it by language and script.
- ``resolve`` is pure and total: any string (or None) gives a key of ``LANGUAGES``.
- It imports nothing of ours: every layer above may use the catalogs, and none is needed to
  read them.

Locale matching follows CLDR (the data behind ICU and Babel): a tag's script is inferred with
CLDR's likely subtags (``zh`` and ``zh-CN``/``zh-SG`` are Hans, ``zh-TW``/``zh-HK``/``zh-MO`` are
Hant), and a catalog serves a tag only when language *and* script agree. CLDR's parent of
``zh-Hant`` is root, not ``zh``, so Traditional-Chinese readers get English until a Traditional
catalog exists; they are not handed a script they did not choose (docs/languages.md).
"""

from __future__ import annotations

import importlib
import string
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

LANGUAGES: Final[Mapping[str, str]] = {
    # catalog id (a Slack locale tag) -> module in this package
    "en": "en",
    "zh-CN": "zh_cn",
}
DEFAULT_LOCALE: Final = "en"

CATALOGS: Final[Mapping[str, Mapping[str, str]]] = {
    locale: importlib.import_module(f"{__name__}.{module}").CATALOG for locale, module in LANGUAGES.items()
}
SUPPORTED: Final[tuple[str, ...]] = tuple(LANGUAGES)
EN: Final[Mapping[str, str]] = CATALOGS[DEFAULT_LOCALE]

# CLDR likely subtags for the languages written in more than one script; every other language has
# one script here, so language alone decides.
_DEFAULT_SCRIPT: Final[Mapping[str, str]] = {"zh": "hans"}
_SCRIPT_BY_REGION: Final[Mapping[str, Mapping[str, str]]] = {"zh": {"tw": "hant", "hk": "hant", "mo": "hant"}}
_MAX_TAG: Final = 35  # RFC 5646 suggests 35 characters suffice for any sensible tag


def text(key: str, /, locale: str = DEFAULT_LOCALE, **values: Any) -> str:
    """The catalog entry ``key`` for ``locale`` (any tag, see ``resolve``), formatted with ``values``.

    Raises KeyError for a key English does not have: that is a bug in the caller, not a language gap.
    """
    template = CATALOGS[resolve(locale)].get(key) or EN[key]
    return template.format(**values) if values else template


def catalog(locale: str | None) -> Mapping[str, str]:
    """The whole catalog ``locale`` resolves to."""
    return CATALOGS[resolve(locale)]


def placeholders(template: str) -> frozenset[str]:
    """The ``str.format`` field names in ``template`` (format specs such as ``:02d`` aside)."""
    return frozenset(
        name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name
    )


@lru_cache(maxsize=512)
def resolve(tag: str | None) -> str:
    """The catalog id for a Slack locale tag (``en-US``, ``zh-CN``, ``zh_TW``, ``zh-Hant``, …).

    An exact catalog id wins; otherwise the first catalog with the same language and script;
    otherwise English. Case and ``_``/``-`` do not matter.
    """
    if not tag or len(tag) > _MAX_TAG:
        return DEFAULT_LOCALE
    wanted = _parse(tag)
    if wanted is None:
        return DEFAULT_LOCALE
    normal = tag.strip().replace("_", "-").lower()
    for locale in LANGUAGES:
        if locale.lower() == normal:
            return locale
    for locale in LANGUAGES:
        parsed = _parse(locale)
        if parsed is not None and parsed[:2] == wanted[:2]:
            return locale
    return DEFAULT_LOCALE


def _parse(tag: str) -> tuple[str, str, str] | None:
    """(language, script, region), lower case, with the script filled in from CLDR likely subtags."""
    parts = tag.strip().replace("_", "-").lower().split("-")
    language = parts[0]
    if not (2 <= len(language) <= 3 and language.isalpha()):
        return None
    script = region = ""
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha() and not script and not region:
            script = part
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            region = region or part
    if not script:
        script = _SCRIPT_BY_REGION.get(language, {}).get(region) or _DEFAULT_SCRIPT.get(language, "")
    return language, script, region
