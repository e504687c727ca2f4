"""The task model against the API doc's own examples and the shapes the API really sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.metastudio.models import Task, TaskPage, is_task_id

# The "Example Responses" (status 200) of the API doc, verbatim from its English and Chinese
# editions (/work/shared/seeds/show-task-api.{en,zh}.txt; 响应示例, 状态码 200).
EXAMPLES = Path(__file__).parent / "data" / "show-task-api"
SEED_EN = (EXAMPLES / "example-response.en.json").read_text(encoding="utf-8")
SEED_ZH = (EXAMPLES / "example-response.zh.json").read_text(encoding="utf-8")

SEED_ID = "fd1c56acbb2c4b1aa24ba37df99f3129"


@pytest.mark.parametrize(("body", "name"), [(SEED_EN, "Imported Q&A pairs."), (SEED_ZH, "导入问答对")])
def test_seed_examples_parse(body: str, name: str) -> None:
    task = Task.model_validate_json(body.encode("utf-8"))
    assert task.task_id == SEED_ID
    assert task.task_name == name
    assert task.resource == "knowledge-intent-question-create"
    assert task.operator == "adminUserAccount"
    assert task.user_id == "246748d3d76b4779aea38c201a284810"
    assert task.task_type == "0"
    assert task.task_status == "0"
    assert (task.total_count, task.success_count, task.failure_count) == (3, 2, 1)
    assert task.begin_time == task.end_time == 1744276967708
    assert task.begin == datetime(2025, 4, 10, 9, 22, 47, 708000, tzinfo=UTC)
    assert task.processed_count == 3
    assert task.progress == 1.0


def test_seed_is_finished_by_counts_although_begin_equals_end() -> None:
    task = Task.model_validate_json(SEED_EN)
    assert task.begin_time == task.end_time
    assert task.is_finished()
    # Without the counts the equal begin and end times alone would not make it finished.
    assert not task.model_copy(update={"success_count": 1, "failure_count": 0}).is_finished()


def test_list_response_parses() -> None:
    first = json.loads(SEED_EN)
    second = {
        **first,
        "task_id": "0" * 32,
        "task_name": "导入问答对",
        "begin_time": "1744276967708",
        "end_time": None,
        "task_status": "1",
        "task_type": 1,
        "success_count": 0,
        "failure_count": 0,
    }
    page = TaskPage.model_validate_json(
        json.dumps({"offset": 0, "limit": 10, "count": 2, "data": [first, second]})
    )
    assert (page.offset, page.limit, page.count) == (0, 10, 2)
    assert [t.task_id for t in page.data] == [SEED_ID, "0" * 32]
    assert page.data[1].begin_time == 1744276967708
    assert page.data[1].end_time is None
    assert page.data[1].task_type == "1"
    assert not page.data[1].is_finished()


def test_empty_list_response() -> None:
    page = TaskPage.model_validate({"count": 0, "data": []})
    assert page.data == [] and page.count == 0


def test_list_item_without_task_id_is_rejected() -> None:
    with pytest.raises(ValidationError):
        TaskPage.model_validate({"data": [{"task_name": "x"}]})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1744276967708, 1744276967708),
        (1744276967708.0, 1744276967708),
        ("1744276967708", 1744276967708),
        (" 1744276967708 ", 1744276967708),
        (None, None),
        ("", None),
        (0, None),
        ("0", None),
        ("2025-04-10T09:22:47.708Z", 1744276967708),
    ],
)
def test_times_accept_number_numeric_string_and_null(raw: Any, expected: int | None) -> None:
    task = Task.model_validate({"task_id": SEED_ID, "begin_time": raw, "end_time": raw})
    assert task.begin_time == expected
    assert task.end_time == expected


@pytest.mark.parametrize("raw", ["yesterday", [1], {"ms": 1}])
def test_times_reject_garbage(raw: Any) -> None:
    with pytest.raises(ValidationError):
        Task.model_validate({"task_id": SEED_ID, "begin_time": raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0, "0"), ("0", "0"), (2, "2"), ("2", "2"), (2.0, "2"), ("SUCCESS", "SUCCESS"), (None, None)],
)
def test_type_and_status_accept_number_or_string(raw: Any, expected: str | None) -> None:
    task = Task.model_validate({"task_id": SEED_ID, "task_type": raw, "task_status": raw})
    assert task.task_type == expected
    assert task.task_status == expected


def test_missing_counts_default_to_zero_and_progress_is_unknown() -> None:
    task = Task.model_validate({"task_id": SEED_ID})
    assert (task.total_count, task.success_count, task.failure_count) == (0, 0, 0)
    assert task.progress is None
    assert not task.is_finished()


@pytest.mark.parametrize(
    ("fields", "finished"),
    [
        ({"total_count": 3, "success_count": 3}, True),
        ({"total_count": 3, "success_count": 2, "failure_count": 1}, True),
        ({"total_count": 3, "failure_count": 3}, True),
        ({"total_count": 3, "success_count": 1, "failure_count": 1}, False),
        # A total of 0 says nothing: 0 of 0 processed is not "done".
        ({"total_count": 0, "success_count": 0}, False),
        ({"begin_time": 1000, "end_time": 2000}, True),
        ({"begin_time": 1000, "end_time": 1000}, False),
        ({"begin_time": 2000, "end_time": 1000}, False),
        ({"begin_time": None, "end_time": 2000}, False),
        ({"begin_time": 1000, "end_time": None}, False),
    ],
)
def test_is_finished_rules(fields: dict[str, Any], finished: bool) -> None:
    assert Task.model_validate({"task_id": SEED_ID, **fields}).is_finished() is finished


def test_is_finished_by_configured_status_only() -> None:
    running = Task.model_validate(
        {"task_id": SEED_ID, "task_status": 2, "total_count": 5, "success_count": 1}
    )
    assert not running.is_finished()
    assert not running.is_finished(frozenset({"3"}))
    assert running.is_finished(frozenset({"2", "3"}))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (SEED_ID, True),
        (SEED_ID.upper(), True),
        ("", False),
        (SEED_ID + "0", False),
        (SEED_ID[:-1], False),
        (SEED_ID + "\n", False),
        ("../x", False),
        (SEED_ID[:-1] + "g", False),
        ("fd1c56acbb2c4b1aa24ba37df99f312?x=1", False),
        ("٠" * 32, False),  # Arabic-Indic zeros are digits to \d, not to the API
    ],
)
def test_is_task_id(text: str, ok: bool) -> None:
    assert is_task_id(text) is ok


task_ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)
epoch = st.one_of(st.none(), st.integers(min_value=1, max_value=4_102_444_800_000))
count = st.integers(min_value=0, max_value=1_000_000)
code = st.one_of(
    st.none(), st.integers(min_value=0, max_value=99).map(str), st.sampled_from(["SUCCESS", "FAILED"])
)
text = st.one_of(st.none(), st.text(max_size=40))


@st.composite
def task_bodies(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "task_id": draw(task_ids),
        "task_name": draw(text),
        "resource": draw(text),
        "operator": draw(text),
        "user_id": draw(text),
        "task_type": draw(code),
        "task_status": draw(code),
        "begin_time": draw(epoch),
        "end_time": draw(epoch),
        "total_count": draw(count),
        "success_count": draw(count),
        "failure_count": draw(count),
    }


@given(task_bodies())
def test_round_trip_through_json(body: dict[str, Any]) -> None:
    task = Task.model_validate(body)
    again = Task.model_validate_json(task.model_dump_json())
    assert again == task
    assert again.model_dump() == body


@given(task_bodies(), st.booleans())
def test_numbers_and_strings_parse_alike(body: dict[str, Any], as_numbers: bool) -> None:
    # The doc says strings, the example sends numbers: both spellings must mean the same task.
    variant = dict(body)
    for key in ("begin_time", "end_time"):
        if variant[key] is not None:
            variant[key] = str(variant[key])
    for key in ("task_type", "task_status"):
        if as_numbers and variant[key] is not None and variant[key].isdigit():
            variant[key] = int(variant[key])
    assert Task.model_validate(variant) == Task.model_validate(body)


@given(task_bodies())
def test_finished_by_counts_matches_the_rule(body: dict[str, Any]) -> None:
    task = Task.model_validate(body)
    by_counts = (
        body["total_count"] > 0 and body["success_count"] + body["failure_count"] >= body["total_count"]
    )
    by_times = (
        body["begin_time"] is not None
        and body["end_time"] is not None
        and body["end_time"] > body["begin_time"]
    )
    assert task.is_finished() is (by_counts or by_times)
