"""Catalog discipline: same keys and placeholders in every language, Chinese typography, no user-facing
literal outside the catalog, and the Slack locale tag -> catalog mapping."""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot import messages
from bot.messages import CATALOGS, EN, LANGUAGES, placeholders, resolve, text
from bot.messages import format as fmt

ROOT = Path(__file__).resolve().parent.parent
BUILDERS = [
    ROOT / "bot" / name
    for name in (
        "slack/cards.py",
        "slack/alerts.py",
        "slack/home.py",
        "slack/modals.py",
        "slack/cloud_errors.py",
        "services/parsing.py",
    )
]
TRANSLATIONS = [locale for locale in CATALOGS if locale != "en"]
CJK = "\u3400-\u9fff\uf900-\ufaff"
ZH = CATALOGS["zh-CN"]


# --- same shape in every language ----------------------------------------------------------------


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_every_catalog_has_exactly_the_english_keys(locale: str) -> None:
    keys = set(CATALOGS[locale])
    assert sorted(set(EN) - keys) == [], "missing"
    assert sorted(keys - set(EN)) == [], "not in English"


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_every_translation_has_the_english_placeholders(locale: str) -> None:
    wrong = {
        key: (sorted(placeholders(EN[key])), sorted(placeholders(value)))
        for key, value in CATALOGS[locale].items()
        if placeholders(value) != placeholders(EN[key])
    }
    assert wrong == {}


def test_placeholders_ignore_format_specs_but_see_names() -> None:
    assert placeholders("{hours} h {minutes:02d} min") == {"hours", "minutes"}
    assert placeholders("{a}{b}") != placeholders("{a}")


@pytest.mark.parametrize("locale", list(CATALOGS))
def test_every_entry_formats_with_its_placeholders(locale: str) -> None:
    for key, template in CATALOGS[locale].items():
        values = {name: 1 for name in placeholders(template)}
        assert text(key, locale, **values)  # a stray brace or a bad spec raises here


def test_every_catalog_module_is_registered_and_every_registration_has_a_module() -> None:
    modules = {p.stem for p in (ROOT / "bot" / "messages").glob("*.py")} - {"__init__", "format"}
    assert modules == set(LANGUAGES.values())
    assert tuple(LANGUAGES) == messages.SUPPORTED


def test_text_defaults_to_english_and_accepts_any_tag() -> None:
    assert text("button_refresh") == "Refresh"
    assert text("button_refresh", "zh-CN") == "刷新"
    assert text("button_refresh", locale="zh") == "刷新"
    assert text("button_refresh", "ja-JP") == "Refresh"
    with pytest.raises(KeyError):
        text("no_such_key", "zh-CN")


# --- what the Chinese reads like -----------------------------------------------------------------

_HALF_WIDTH_NEXT_TO_CJK = re.compile(rf"[{CJK}][,.;:?!()]|[,;:?!(][{CJK}]")
# Slack renders *bold* and `code` only at word boundaries: glued to a Chinese character they show raw.
_SPAN = re.compile(r"\*[^*\n]+\*|`[^`\n]+`")


def glued_spans(value: str) -> list[str]:
    cjk = re.compile(rf"[{CJK}]")
    return [
        m.group()
        for m in _SPAN.finditer(value)
        if cjk.fullmatch(value[m.start() - 1 : m.start()] or "x")
        or cjk.fullmatch(value[m.end() : m.end() + 1] or "x")
    ]


def test_chinese_sentences_use_full_width_punctuation() -> None:
    entity = re.compile(r"&[a-z]+;")  # &lt; and friends are mrkdwn escapes, not punctuation
    assert {k: v for k, v in ZH.items() if _HALF_WIDTH_NEXT_TO_CJK.search(entity.sub(" ", v))} == {}
    assert _HALF_WIDTH_NEXT_TO_CJK.search("已结束, 请重试")


def test_chinese_keeps_mrkdwn_markers_apart_from_characters() -> None:
    assert {k: glued_spans(v) for k, v in ZH.items() if glued_spans(v)} == {}
    assert glued_spans("任务`x`已结束") == ["`x`"]


def test_chinese_uses_the_console_terms() -> None:
    assert ZH["field_succeeded"] == "*成功数*"
    assert ZH["field_failed"] == "*失败数*"
    assert ZH["field_operator"] == "*操作人*"
    assert "导入导出任务" in ZH["recent_header"]
    assert "任务状态" in ZH["status_with_code"]


def test_mss_errors_use_the_chinese_references_descriptions() -> None:
    # The Chinese seed: MSS.000000001 失败, ...002 内部错误, ...003 非法参数, ...004 非法访问，未鉴权或者鉴权失败.
    assert "“失败”" in ZH["error_mss_failed"]
    assert "“内部错误”" in ZH["error_mss_internal"]
    assert "“非法参数”" in ZH["error_mss_invalid_parameter"]
    assert "未鉴权或者鉴权失败" in ZH["error_auth"]


def test_ids_and_commands_stay_in_code_spans() -> None:
    for key in ("unwatch_done", "error_invalid_task_id", "alert_not_found", "context_task"):
        assert "`{task_id}`" in ZH[key], key
    assert "`/task help`" in ZH["usage"]


# --- numbers, durations, lists -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "en", "zh"),
    [
        (0, "under 1 s", "不到 1 秒"),
        (42, "42 s", "42 秒"),
        (65, "1 min 05 s", "1 分钟 5 秒"),
        (5400, "1 h 30 min", "1 小时 30 分钟"),
        (3 * 86400 + 7200, "3 d 02 h", "3 天 2 小时"),
        (-5, "—", "—"),
    ],
)
def test_durations_in_both_languages(seconds: int, en: str, zh: str) -> None:
    assert fmt.humanize(timedelta(seconds=seconds)) == en
    assert fmt.humanize(timedelta(seconds=seconds), "zh-CN") == zh


def test_numbers_percentages_and_lists() -> None:
    assert f"{fmt.number(25_001, 'zh-CN')} / {fmt.number(50_000, 'zh-CN')}" == "25,001 / 50,000"
    assert fmt.tenths(999, "zh-CN") == "99.9"
    assert fmt.tenths(10_000) == "1,000.0"
    assert fmt.percent("50", "zh-CN") == "50%"
    assert fmt.join(["a", "b"]) == "a, b"
    assert fmt.join(["a", "b"], "zh-CN") == "a、b"


# --- Slack locale tags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("zh-CN", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh_CN", "zh-CN"),
        ("ZH-cn", "zh-CN"),
        ("zh-SG", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh-Hans-HK", "zh-CN"),
        # Traditional script (CLDR likely subtags): no catalog yet, and zh-Hant's CLDR parent is root.
        ("zh-TW", "en"),
        ("zh-HK", "en"),
        ("zh-MO", "en"),
        ("zh-Hant", "en"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("ja-JP", "en"),
        ("", "en"),
        (None, "en"),
        ("x", "en"),
        ("zh-" + "x" * 100, "en"),
    ],
)
def test_slack_locale_tags_map_to_catalogs(tag: str | None, locale: str) -> None:
    assert resolve(tag) == locale


# --- no user-facing literal outside the catalog ------------------------------------------------------

# Literals with letters that are not prose: Slack syntax, escapes, and the UTC fallback of a
# <!date^…> token that only clients unable to render dates show.
_ALLOWED: frozenset[str] = frozenset(
    {
        "&amp;", "&lt;", "&gt;", "<!date^", "<!subteam^",
        "{date_short_pretty} {time}", "^{date_short_pretty} {time}|", "{time_secs}",
        "%Y-%m-%d %H:%M UTC", "%H:%M:%S UTC", "%Y-%m-%d %H:%M", " UTC>",
        "Cc", "Cs", "Zl", "Zp",  # unicodedata categories
        "0123456789abcdefABCDEF",  # hex digits
    }
)  # fmt: skip
_IDENTIFIER = re.compile(r"[a-z0-9_.:/\-]*|[A-Z][A-Z0-9_]*")  # Block Kit vocabulary, ids, constants


def stray_literals(source: str) -> list[str]:
    """String literals that read like prose: what a builder should have taken from the catalog."""
    tree = ast.parse(source)
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(id(node.value))  # docstrings, attribute docstrings
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "compile"
        ):
            skip.update(id(arg) for arg in node.args)  # regular expressions
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            skip.update(id(name) for name in ast.walk(node.value))  # exported names
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            value = node.value
            if (
                re.search(rf"[A-Za-z{CJK}]", value)
                and value not in _ALLOWED
                and not _IDENTIFIER.fullmatch(value)
            ):
                found.append(f"line {node.lineno}: {value!r}")
    return found


@pytest.mark.parametrize("path", BUILDERS, ids=lambda p: p.name)
def test_builders_take_every_word_from_the_catalog(path: Path) -> None:
    assert stray_literals(path.read_text(encoding="utf-8")) == []


def test_the_scan_catches_prose() -> None:
    source = 'def f():\n    """Doc."""\n    return {"type": "plain_text", "text": "Refresh"}, f"Task {x}", "任务"\n'
    assert sorted(stray_literals(source)) == ["line 3: 'Refresh'", "line 3: 'Task '", "line 3: '任务'"]


def test_the_scan_passes_exported_names() -> None:
    assert stray_literals('__all__ = ["ConnectionInput"]\nNAME = "Refresh"\n') == ["line 2: 'Refresh'"]
