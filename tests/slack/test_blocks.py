"""The shared Block Kit builders: absent fields stay absent, and what they build is valid Block Kit."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from bot.slack.blocks import MAX_BUTTON_VALUE, actions, button, compose, quoted


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


def test_quoted_outside_text_is_one_inert_line_that_cannot_break_its_code_span() -> None:
    assert quoted("<!channel> `x`\n\u202e&", 40) == "&lt;!channel&gt; ˋxˋ &amp;"
    assert quoted("\x00\u202e \t", 40) == "?"  # nothing printable left: never an empty span
    assert quoted(None, 40) == "?"


def test_quoted_caps_what_is_sent_without_splitting_an_escape() -> None:
    shown = quoted("a" * 36 + "&&&&", 40)
    assert shown == "a" * 36 + "…" and len(quoted("<" * 100, 40)) <= 40
