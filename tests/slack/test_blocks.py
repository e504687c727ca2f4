"""The shared Block Kit builders: absent fields stay absent, and what they build is valid Block Kit."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.slack.blocks import MAX_BUTTON_VALUE, actions, button, compose


def test_compose_leaves_out_only_the_fields_that_are_none() -> None:
    built = compose("input", block_id="b", optional=False, element={"type": "x"}, hint=None, max_length=0)
    assert built == {
        "type": "input",
        "block_id": "b",
        "optional": False,
        "element": {"type": "x"},
        "max_length": 0,
    }


def test_a_button_without_value_or_style_has_neither_key() -> None:
    # Slack rejects an empty value or style; an absent one is allowed.
    built = button("Refresh", "refresh")
    assert set(built) == {"type", "text", "action_id"}
    assert Block.parse(actions(built)) is not None


def test_a_button_value_is_capped_and_its_style_kept() -> None:
    built = button("Watch", "watch", "x" * (MAX_BUTTON_VALUE + 50), style="primary")
    assert len(built["value"]) == MAX_BUTTON_VALUE and built["value"].endswith("…")
    assert built["style"] == "primary"
    parsed = Block.parse(actions(built))
    assert parsed is not None and parsed.to_dict()["elements"][0]["style"] == "primary"
