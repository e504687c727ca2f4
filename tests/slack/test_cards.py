"""Task cards: content from the API doc's example, honest status, and Block Kit limits for any input."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.devtools.simulator import SEED_TASK_BODY
from bot.messages import text
from bot.metastudio.models import MAX_EPOCH_MS, Task, TaskPage
from bot.slack.blocks import clean as clean_value
from bot.slack.cards import CardView, card_text, error_blocks, recent_list, status_emoji, task_card, truncate
from bot.slack.ids import ACTION_OPEN, ACTION_REFRESH, ACTION_WATCH

# The seed doc's example response, the same body the simulator serves for SEED_TASK_ID.
SEED_BODY = SEED_TASK_BODY
SEED = Task.model_validate(SEED_BODY)
BEGIN = datetime.fromtimestamp(1744276967, tz=UTC)
DATE_TOKEN = re.compile(r"<!date\^-?\d+\^\{[a-z_]+\}(?: \{[a-z_]+\})?\|[^<>|]*>")


def task(**changes: Any) -> Task:
    return Task.model_validate({**SEED_BODY, **changes})


def mrkdwn_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn string in the blocks: section text and fields, context elements."""
    found = []
    for block in blocks:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if obj and obj.get("type") == "mrkdwn":
                found.append(obj["text"])
    return found


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return found + [b["accessory"] for b in blocks if "accessory" in b]


def units(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


def assert_valid_blocks(blocks: list[dict[str, Any]]) -> None:
    """slack_sdk's own validators plus every Block Kit limit, counted both in code points and UTF-16."""
    assert 1 <= len(blocks) <= 50
    json.dumps(blocks)  # no surrogates or other unserialisable values
    for block in blocks:
        model = Block.parse(block)
        assert model is not None
        model.validate_json()
        assert model.to_dict() == block  # to_dict validates nested elements too, and nothing is dropped
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert 0 < units(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert 0 < units(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(0 < units(field["text"]) <= 2000 for field in block.get("fields", []))
        if block["type"] == "context":
            assert 1 <= len(block["elements"]) <= 10
            assert all(units(element["text"]) <= 3000 for element in block["elements"])
        if block["type"] == "actions":
            assert 1 <= len(block["elements"]) <= 25
    for button in buttons(blocks):
        assert 0 < units(button["text"]["text"]) <= 75
        assert 0 < units(button.get("value", "x")) <= 2000
        assert len(button["action_id"]) <= 255
    for mrkdwn in mrkdwn_texts(blocks):
        # Only our own date tokens may use Slack's control syntax: nothing user-provided can ping.
        assert "<" not in DATE_TOKEN.sub("", mrkdwn)
        assert ">" not in DATE_TOKEN.sub("", mrkdwn)


def section_texts(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(mrkdwn_texts(blocks))


# --- the seed task from the API doc ------------------------------------------------------------


def test_seed_card_shows_everything_the_api_returned() -> None:
    blocks = task_card(SEED, CardView(request_id="req-42"), now=BEGIN + timedelta(hours=1))
    assert_valid_blocks(blocks)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Imported Q&A pairs.", "emoji": True},
    }
    body = section_texts(blocks)
    assert ":white_check_mark: *Finished* (status code `0`)" in body
    assert "`██████████` 100%  (3 of 3)" in body
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*Total*\n3" in fields
    assert "*Succeeded*\n2" in fields
    assert "*Failed*\n:warning: 1" in fields
    assert "*Type*\n`0` (code; the API does not document its values)" in fields
    assert "*Resource*\n`knowledge-intent-question-create`" in fields
    assert "*Operator*\nadminUserAccount" in fields
    date = "<!date^1744276967^{date_short_pretty} {time}|2025-04-10 09:22 UTC>"
    assert f"*Started*\n{date}" in fields
    assert f"*Ended*\n{date}" in fields
    # begin == end in the doc's example: finished without measurable time, not "0 s" of work.
    assert "*Duration*\nunder 1 s" in fields
    context = blocks[-2]
    assert context["type"] == "context"
    line = context["elements"][0]["text"]
    for part in ("fd1c56acbb2c4b1aa24ba37df99f3129", "246748d3d76b4779aea38c201a284810", "req-42"):
        assert f"`{part}`" in line
    assert blocks[-1]["elements"] == [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Refresh", "emoji": True},
            "action_id": ACTION_REFRESH,
            "value": "fd1c56acbb2c4b1aa24ba37df99f3129",
        }
    ]


def test_seed_fallback_text_and_emoji() -> None:
    assert card_text(SEED) == "Imported Q&amp;A pairs.: Finished, 3 of 3 processed"
    assert status_emoji(SEED, frozenset()) == ":white_check_mark:"


def test_finished_card_has_no_watch_button() -> None:
    blocks = task_card(SEED, CardView(request_id=None), watch_button=True)
    assert [b["action_id"] for b in buttons(blocks)] == [ACTION_REFRESH]


def test_without_request_id_the_context_omits_it() -> None:
    line = task_card(SEED, CardView(request_id=None))[-2]["elements"][0]["text"]
    assert "request" not in line
    assert line.startswith("Task `fd1c56acbb2c4b1aa24ba37df99f3129` · user ")


def test_refreshed_at_shows_in_readers_timezone() -> None:
    refreshed = datetime(2025, 4, 10, 10, 0, 5, tzinfo=UTC)
    line = task_card(SEED, CardView(request_id="r", refreshed_at=refreshed))[-2]["elements"][0]["text"]
    assert line.endswith(" · Updated <!date^1744279205^{time_secs}|10:00:05 UTC>")


# --- status, progress and duration ----------------------------------------------------------


def test_running_task_shows_progress_duration_and_watch_button() -> None:
    running = task(end_time=None, total_count=3000, success_count=2300, failure_count=100, task_status=1)
    blocks = task_card(
        running,
        CardView(request_id="r"),
        watch_button=True,
        now=BEGIN + timedelta(hours=2, minutes=5, seconds=59),
    )
    assert_valid_blocks(blocks)
    body = section_texts(blocks)
    assert ":hourglass_flowing_sand: *Running* (status code `1`)" in body
    assert "`████████░░` 80%  (2,400 of 3,000)" in body
    assert "*Duration*\n2 h 05 min so far" in body
    assert "*Failed*\n:warning: 100" in body
    assert "*Ended*\n—" in body
    assert card_text(running) == "Imported Q&amp;A pairs.: Running, 2,400 of 3,000 processed"
    watch = buttons(blocks)[1]
    assert (watch["action_id"], watch["value"], watch["text"]["text"]) == (
        ACTION_WATCH,
        SEED.task_id,
        "Notify this channel when done",
    )


def test_progress_rounds_down_so_an_unfinished_task_never_shows_full() -> None:
    blocks = task_card(
        task(end_time=None, total_count=1000, success_count=999, failure_count=0), CardView(request_id=None)
    )
    assert "`█████████░` 99%  (999 of 1,000)" in section_texts(blocks)


def test_not_started_only_without_progress_and_begin_time() -> None:
    waiting = task(begin_time=None, end_time=None, success_count=0, failure_count=0, task_status="2")
    blocks = task_card(waiting, CardView(request_id=None), watch_button=True)
    body = section_texts(blocks)
    assert ":white_circle: *Not started* (status code `2`)" in body
    assert "*Duration*\n—" in body
    assert "*Failed*\n0" in body
    assert [b["action_id"] for b in buttons(blocks)] == [ACTION_REFRESH, ACTION_WATCH]
    started = task(end_time=None, success_count=0, failure_count=0, task_status="2")
    assert ":hourglass_flowing_sand: *Running*" in section_texts(
        task_card(started, CardView(request_id=None))
    )


def test_finished_comes_only_from_configured_codes_or_the_data() -> None:
    unknown = task(end_time=None, total_count=0, success_count=5, failure_count=0, task_status=7)
    assert "*Running* (status code `7`)" in section_texts(task_card(unknown, CardView(request_id=None)))
    finished = task_card(unknown, CardView(request_id=None, finished_codes=frozenset({"7"})))
    assert ":white_check_mark: *Finished* (status code `7`)" in section_texts(finished)
    assert status_emoji(unknown, frozenset({"7"})) == ":white_check_mark:"


def test_missing_status_code_is_said_not_invented() -> None:
    blocks = task_card(task(task_status=None), CardView(request_id=None))
    assert ":white_check_mark: *Finished* (no status code)" in section_texts(blocks)


def test_zero_total_says_progress_unknown() -> None:
    blocks = task_card(
        task(total_count=0, success_count=0, failure_count=0, end_time=None), CardView(request_id=None)
    )
    body = section_texts(blocks)
    assert text("progress_unknown") in body
    assert "%" not in body
    assert card_text(task(total_count=0, success_count=4, failure_count=0)).endswith(": Running, 4 processed")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.4, "under 1 s"),
        (43, "43 s"),
        (7 * 60 + 9, "7 min 09 s"),
        (2 * 3600 + 5 * 60 + 30, "2 h 05 min"),
        (3 * 86400 + 4 * 3600 + 59, "3 d 04 h"),
        (-30, "—"),
    ],
)
def test_finished_duration_is_humanised(seconds: float, shown: str) -> None:
    ended = task(end_time=SEED_BODY["begin_time"] + int(seconds * 1000), task_status=None)
    fields = [f["text"] for b in task_card(ended, CardView(request_id=None)) for f in b.get("fields", [])]
    assert f"*Duration*\n{shown}" in fields


def test_empty_name_falls_back_to_task_id() -> None:
    for name in (None, "", "  \n\t "):
        header = task_card(task(task_name=name), CardView(request_id=None))[0]["text"]["text"]
        assert header == "Task fd1c56acbb2c4b1aa24ba37df99f3129"


# --- escaping and truncation ---------------------------------------------------------------


def test_user_text_cannot_ping_or_link() -> None:
    hostile = task(
        task_name="<!channel> & <@U123|boss>",
        operator="<!here>",
        resource="<https://evil.example|click>",
        task_type="`<!everyone>`",
        user_id="<!subteam^S1>",
    )
    blocks = task_card(hostile, CardView(request_id="<!channel>"))
    assert_valid_blocks(blocks)
    body = section_texts(blocks)
    assert "&lt;!here&gt;" in body
    assert "`&lt;https://evil.example|click&gt;`" in body
    assert "`ˋ&lt;!everyone&gt;ˋ`" in body  # a backtick cannot close the code span early
    assert "request `&lt;!channel&gt;`" in body
    # The header is plain_text: Slack shows it literally, so it needs no escaping.
    assert blocks[0]["text"] == {"type": "plain_text", "text": "<!channel> & <@U123|boss>", "emoji": True}
    assert "&lt;!channel&gt; &amp; &lt;@U123|boss&gt;" in card_text(hostile)
    listed = recent_list(TaskPage(data=[hostile]), resource=None)
    assert "*&lt;!channel&gt; &amp; &lt;@U123|boss&gt;*" in section_texts(listed)


def test_error_blocks_escape_and_carry_request_id() -> None:
    blocks = error_blocks("Try `/task <task id>` & <!channel>", request_id="abc")
    assert_valid_blocks(blocks)
    assert blocks[0]["text"]["text"] == ":warning: Try `/task &lt;task id&gt;` &amp; &lt;!channel&gt;"
    assert blocks[1] == {"type": "context", "elements": [{"type": "mrkdwn", "text": "Request id: `abc`"}]}
    already_escaped = error_blocks(text("error_unknown_subcommand", word="&lt;!here&gt;"))
    assert "&lt;32-character task id&gt;" in already_escaped[0]["text"]["text"]
    assert "&amp;lt;" not in already_escaped[0]["text"]["text"]
    assert len(error_blocks("x" * 5000)) == 1
    assert_valid_blocks(error_blocks("x" * 5000))


def test_truncate() -> None:
    assert truncate("short", 5) == "short"
    assert truncate("abcdef", 5) == "abcd…"
    assert truncate("😀" * 10, 5) == "😀😀…"  # astral characters count as two UTF-16 units
    assert truncate("ab&amp;cd", 6, mrkdwn=True) == "ab…"
    assert truncate("ab&amp;cd", 8, mrkdwn=True) == "ab&amp;…"
    assert truncate("Q&A pairs", 4) == "Q&A…"


def test_control_characters_become_spaces() -> None:
    assert clean_value("a\nb\x00c\u2028d\x1b[31m  e\u202ef") == "a b c d [31m e f"


# --- the recent list -------------------------------------------------------------------------


def test_recent_list_shows_newest_tasks_with_open_buttons() -> None:
    second = task(
        task_id="0" * 32,
        task_name="Export",
        end_time=None,
        total_count=10,
        success_count=4,
        failure_count=0,
        task_status=1,
    )
    blocks = recent_list(
        TaskPage(count=57, data=[SEED, second]),
        resource="knowledge-intent-question-create",
        request_id="req-9",
    )
    assert_valid_blocks(blocks)
    assert blocks[0]["text"]["text"] == "Newest import/export tasks for knowledge-intent-question-create"
    first = blocks[1]["text"]["text"]
    assert first.startswith(
        ":white_check_mark: *Imported Q&amp;A pairs.*\n`fd1c56acbb2c4b1aa24ba37df99f3129`"
    )
    assert "Finished, code `0` · 3 of 3 processed · :warning: 1 failed · started <!date^1744276967^" in first
    assert "Running, code `1` · 4 of 10 processed · started" in blocks[2]["text"]["text"]
    assert "failed" not in blocks[2]["text"]["text"]
    assert [(b["action_id"], b["value"]) for b in buttons(blocks)] == [
        (ACTION_OPEN, SEED.task_id),
        (ACTION_OPEN, "0" * 32),
    ]
    assert (
        blocks[-1]["elements"][0]["text"]
        == "Showing 2 of 57 · Next ten: `/task recent page 2` · request `req-9`"
    )


def test_recent_list_caps_at_ten_and_handles_empty() -> None:
    many = [task(task_id=f"{i:032x}") for i in range(15)]
    blocks = recent_list(TaskPage(count=15, data=many), resource=None)
    assert_valid_blocks(blocks)
    assert blocks[0]["text"]["text"] == "Newest import/export tasks"
    assert len(buttons(blocks)) == 10
    empty = recent_list(TaskPage(), resource=None, request_id="r1")
    assert_valid_blocks(empty)
    assert empty[1]["text"]["text"] == text("recent_empty")
    assert not buttons(empty)
    assert empty[-1]["elements"][0]["text"] == "request `r1`"


# --- any task the API could send ------------------------------------------------------------

_huge = st.builds(
    lambda piece, n: piece * n,
    st.sampled_from(["x", "<!channel>", "&", "😀", "漢", "`*_", "\x00\n"]),
    st.integers(0, 10_000),
)
_texts = st.one_of(st.none(), st.text(max_size=40), _huge)
# Times a datetime can hold; later or negative ones are unreadable bodies (tests/metastudio/test_hostile.py).
_epoch = st.one_of(st.none(), st.integers(0, MAX_EPOCH_MS))
_code = st.one_of(st.none(), st.integers(-5, 10**12), st.text(max_size=20), _huge)
_count = st.one_of(st.integers(0, 20), st.integers(0, 10**12))

tasks = st.builds(
    lambda **fields: Task.model_validate(fields),
    task_id=st.one_of(st.from_regex(r"\A[0-9a-f]{32}\Z"), st.text(max_size=40), _huge),
    task_name=_texts,
    resource=_texts,
    task_type=_code,
    task_status=_code,
    operator=_texts,
    user_id=_texts,
    begin_time=_epoch,
    end_time=_epoch,
    total_count=_count,
    success_count=_count,
    failure_count=_count,
)
_views = st.builds(
    CardView,
    request_id=st.one_of(st.none(), st.text(max_size=40), _huge),
    finished_codes=st.frozensets(st.sampled_from(["0", "1", "2", "x"])),
    refreshed_at=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
)
_options = st.fixed_dictionaries(
    {
        "watch_button": st.booleans(),
        "now": st.datetimes(
            min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
        ),
    }
)
_fast = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(tasks, _views, _options)
def test_every_card_is_valid_block_kit(any_task: Task, view: CardView, options: dict[str, Any]) -> None:
    blocks = task_card(any_task, view, **options)
    assert_valid_blocks(blocks)
    status = blocks[1]["text"]["text"]
    if any_task.task_status is not None:
        assert "(status code `" in status  # the raw code, never a guessed meaning alone
    finished = any_task.is_finished(view.finished_codes)
    assert ("*Finished*" in status) == finished
    assert (ACTION_WATCH in [b["action_id"] for b in buttons(blocks)]) == (
        options["watch_button"] and not finished
    )
    assert len(card_text(any_task, view.finished_codes)) <= 300


@settings(_fast, max_examples=60)
@given(st.lists(tasks, min_size=10, max_size=12), st.one_of(st.none(), _texts), st.one_of(st.none(), _huge))
def test_every_recent_list_is_valid_block_kit(
    listed: list[Task], resource: str | None, request_id: str | None
) -> None:
    blocks = recent_list(TaskPage(count=len(listed), data=listed), resource=resource, request_id=request_id)
    assert_valid_blocks(blocks)
    assert [b.get("value", "") for b in buttons(blocks)] == [truncate(t.task_id, 2000) for t in listed[:10]]


# --- in Simplified Chinese ---------------------------------------------------------------------------

_zh_text = st.one_of(
    _texts,
    st.builds(
        lambda piece, n: piece * n,
        st.sampled_from(["客服知识库", "😀漢", "👩‍💻", "，。"]),
        st.integers(0, 3000),
    ),
)
zh_tasks = st.builds(
    lambda base, name, operator: Task.model_validate(
        {**base.model_dump(), "task_name": name, "operator": operator}
    ),
    tasks,
    _zh_text,
    _zh_text,
)


def test_seed_card_in_chinese() -> None:
    blocks = task_card(SEED, CardView(request_id="req-1", locale="zh-CN"))
    assert_valid_blocks(blocks)
    body = section_texts(blocks)
    assert ":white_check_mark: *已结束*（任务状态 `0`）" in body
    assert "*成功数*\n2" in body and "*失败数*\n:warning: 1" in body and "*操作人*\n" in body
    assert "`██████████` 100%（已处理 3 / 3）" in body
    assert [b["text"]["text"] for b in buttons(blocks)] == ["刷新"]
    assert card_text(SEED, locale="zh-CN").endswith("：已结束，已处理 3 / 3")
    assert text("button_refresh") == "Refresh"  # English stays the default


def test_chinese_duration_and_numbers() -> None:
    long = task(
        total_count=50_000, success_count=25_001, failure_count=0, end_time=SEED.begin_time + 5_400_000
    )
    body = section_texts(task_card(long, CardView(request_id=None, locale="zh-CN")))
    assert "*耗时*\n1 小时 30 分钟" in body
    assert "（已处理 25,001 / 50,000）" in body
    assert "50%" in body


@_fast
@given(zh_tasks, _views, _options)
def test_every_chinese_card_is_valid_block_kit(
    any_task: Task, view: CardView, options: dict[str, Any]
) -> None:
    blocks = task_card(any_task, replace(view, locale="zh-CN"), **options)
    assert_valid_blocks(blocks)
    assert units(card_text(any_task, view.finished_codes, locale="zh-CN")) <= 300


@settings(_fast, max_examples=40)
@given(st.lists(zh_tasks, min_size=10, max_size=12), st.one_of(st.none(), _zh_text))
def test_every_chinese_recent_list_is_valid_block_kit(listed: list[Task], resource: str | None) -> None:
    blocks = recent_list(TaskPage(count=len(listed), data=listed), resource=resource, locale="zh-CN")
    assert_valid_blocks(blocks)
    if not clean_value(resource):
        assert blocks[0]["text"]["text"] == "最新的导入导出任务"
