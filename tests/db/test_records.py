"""Each table's record (what callers see) against its row (what the database holds).

A record is a frozen copy of its row made by ``bot.db.base.record_of``: every field the record
does not compute (a parsed payload, a derived flag) is the row's attribute of that name, and its
type must take the row's values as they are (a ``Literal`` status typed on both sides, say).
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from datetime import UTC, datetime
from typing import Any, Literal, Union

import pytest

from bot.db.base import Base, record_of
from bot.db.deliveries import DeliveryRecord, DeliveryRow
from bot.db.digests import DigestRecord, DigestRow
from bot.db.feeds import FeedRecord, FeedRow
from bot.db.followups import ActiveWatch, SubscriberRecord, SubscriberRow, WatchRecord, WatchRow
from bot.db.workspaces import AuditEntry, AuditRow, Connection, ConnectionRow, Guardrails, GuardrailsRow

PAIRS: list[tuple[type[Base], type[Any], set[str]]] = [
    (WatchRow, WatchRecord, {"snapshot"}),
    (WatchRow, ActiveWatch, {"snapshot", "subscribers"}),
    (SubscriberRow, SubscriberRecord, set()),
    (DeliveryRow, DeliveryRecord, {"snapshot", "report"}),
    (DigestRow, DigestRecord, set()),
    (FeedRow, FeedRecord, {"resources", "only_failed", "operator"}),
    (ConnectionRow, Connection, {"kind", "has_secret"}),
    (GuardrailsRow, Guardrails, {"channels"}),
    (AuditRow, AuditEntry, set()),
]


def row_types(row: type[Base]) -> dict[str, Any]:
    """The Python type of every ``Mapped[...]`` attribute of ``row`` and its mixins."""
    found: dict[str, Any] = {}
    for cls in reversed(row.__mro__):
        if not cls.__module__.startswith("bot.db."):
            continue
        namespace = vars(sys.modules[cls.__module__])
        for name, annotation in vars(cls).get("__annotations__", {}).items():
            resolved = eval(annotation, namespace) if isinstance(annotation, str) else annotation
            if typing.get_origin(resolved) is not None and typing.get_origin(resolved).__name__ == "Mapped":
                found[name] = typing.get_args(resolved)[0]
    return found


def members(annotation: Any) -> set[Any]:
    """The values a type admits, as a set of types and ``Literal`` values: ``str | None`` is {str, None}."""
    if annotation is None or annotation is type(None):
        return {None}
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return set().union(*(members(arg) for arg in typing.get_args(annotation)))
    if origin is Literal:
        return {("literal", value) for value in typing.get_args(annotation)}
    return {annotation}


def takes(record_type: Any, row_type: Any) -> bool:
    """Whether a record field of ``record_type`` holds every value of a column of ``row_type``."""
    return members(row_type) <= members(record_type)


@pytest.mark.parametrize(
    ("row", "record", "computed"), PAIRS, ids=lambda value: getattr(value, "__name__", "")
)
def test_a_record_copies_only_columns_its_type_can_hold(
    row: type[Base], record: type[Any], computed: set[str]
) -> None:
    columns = row_types(row)
    hints = typing.get_type_hints(record)
    fields = {field.name for field in dataclasses.fields(record)}
    assert computed <= fields, "a computed name is not a field of the record"
    copied = fields - computed
    assert copied <= set(columns), f"{record.__name__} fields its row lacks: {sorted(copied - set(columns))}"
    wrong = {name: (columns[name], hints[name]) for name in copied if not takes(hints[name], columns[name])}
    assert wrong == {}, f"{record.__name__} fields that cannot hold the row's values: {wrong}"


def test_a_record_is_frozen() -> None:
    for _, record, _ in PAIRS:
        assert record.__dataclass_params__.frozen, record.__name__  # type: ignore[attr-defined]


def test_the_type_check_sees_a_narrower_or_different_field() -> None:
    assert takes(Literal["a", "b"], Literal["a"])
    assert takes(str | None, str)
    assert not takes(str, str | None)
    assert not takes(Literal["a"], str)
    assert not takes(Literal["a"], Literal["a", "b"])
    assert not takes(int, str)


def test_record_of_refuses_a_field_its_row_lacks() -> None:
    @dataclasses.dataclass(frozen=True)
    class Drifted:
        task_id: str
        renamed_status: str

    row = WatchRow(
        team_id="T1",
        task_id="a" * 32,
        status="active",
        created_at=datetime.now(UTC),
        expires_at=datetime.now(UTC),
    )
    with pytest.raises(AttributeError, match="renamed_status"):
        record_of(Drifted, row)
    assert record_of(Drifted, row, renamed_status="computed") == Drifted("a" * 32, "computed")
