"""``bot.slack.ids`` is the one home of the ids Slack sends back: unique, and all that handlers use.

The manifest's side of the rule (function callback ids and the command) is in ``tests/test_manifest.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, cast

from slack_bolt.async_app import AsyncApp

from bot.slack import ids
from handlers import register_all

# Values two constants share on purpose: the Test connection actions block and its one button
# (block ids and action ids are separate namespaces in Slack).
SHARED: frozenset[frozenset[str]] = frozenset({frozenset({"BLOCK_TEST", "ACTION_TEST_CONNECTION"})})


class Registrations:
    """Stands in for Bolt's app and records what each ``register`` listens on, by kind."""

    def __init__(self) -> None:
        self.seen: defaultdict[str, list[Any]] = defaultdict(list)

    def __getattr__(self, kind: str) -> Callable[[Any], Callable[[Any], Any]]:
        def on(key: Any) -> Callable[[Any], Any]:
            self.seen[kind].append(key)
            return lambda listener: listener

        return on


def declared() -> dict[str, str]:
    """Every id in the module by its name: the constants, and each modal input's block and action id."""
    found = {name: value for name in ids.__all__ if isinstance(value := getattr(ids, name), str)}
    for member in [*ids.ConnectionInput, *ids.GuardrailsInput]:
        found[f"{type(member).__name__}.{member.name}"] = member.value
        found[f"{type(member).__name__}.{member.name}.action_id"] = member.action_id
    return found


def test_no_two_ids_share_a_value_unless_deliberately() -> None:
    by_value: defaultdict[str, set[str]] = defaultdict(set)
    for name, value in declared().items():
        by_value[value].add(name)
    # So every action id, a button's or an input's, is unique across the app: Bolt matches on it alone.
    shared = {frozenset(names) for names in by_value.values() if len(names) > 1}
    assert shared == SHARED


def test_the_listened_on_groups_hold_every_constant_of_their_kind() -> None:
    names = declared()
    assert set(ids.ACTIONS) == {value for name, value in names.items() if name.startswith("ACTION_")}
    assert len(ids.ACTIONS) == len(set(ids.ACTIONS))
    assert set(ids.VIEWS) == {ids.CONNECTION_MODAL, ids.GUARDRAILS_MODAL}
    assert set(ids.FUNCTIONS) == {ids.GET_TASK, ids.WAIT_FOR_TASK}
    assert ids.COMMANDS == (ids.COMMAND_TASK,)


def test_handlers_register_on_exactly_the_declared_ids() -> None:
    app = Registrations()
    register_all(cast(AsyncApp, app))
    # A listener of another kind (a shortcut, an options load) needs its id declared and checked here.
    assert set(app.seen) == {"action", "view", "function", "command", "event"}
    assert sorted(app.seen["action"]) == sorted(ids.ACTIONS)
    assert sorted(app.seen["view"]) == sorted(ids.VIEWS)
    assert sorted(app.seen["function"]) == sorted(ids.FUNCTIONS)
    assert sorted(app.seen["command"]) == sorted(ids.COMMANDS)
    # Event types are Slack's own names, not ids of ours.
    assert set(app.seen["event"]).isdisjoint(declared().values())
