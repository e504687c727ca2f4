"""The terminal renderer shows what a Slack channel would see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings

from bot.devtools.render import render_message
from bot.metastudio.models import Task, TaskPage
from bot.slack.cards import CardView, card_text, error_blocks, recent_list, task_card
from tests.test_cards import BEGIN, SEED, task, tasks


def seed_message() -> dict[str, object]:
    return {
        "channel": "C123",
        "text": card_text(SEED),
        "blocks": task_card(SEED, CardView(request_id="req-42")),
    }


def test_seed_card_reads_like_slack() -> None:
    out = render_message(seed_message())
    assert out.startswith("── to C123 ──\n\nImported Q&A pairs.\n═══════════════════\n")
    assert "✅ Finished (status code `0`)" in out
    assert "`██████████` 100%  (3 of 3)" in out
    assert "2025-04-10 09:22 UTC" in out
    assert "[ Refresh ]" in out
    assert "⚠️ 1" in out
    assert (
        "Task `fd1c56acbb2c4b1aa24ba37df99f3129` · user `246748d3d76b4779aea38c201a284810` · request `req-42`"
        in out
    )
    for raw in ("<!date", ":white_check_mark:", "*Finished*", "&amp;", "\x1b["):
        assert raw not in out
    # The fallback text is only for notifications: Slack does not show it next to blocks.
    assert "3 of 3 processed" not in out


def test_fields_sit_in_two_aligned_columns() -> None:
    lines = render_message(seed_message()).split("\n")
    row = lines.index("Total        Type")
    assert lines[row + 1] == "3            `0` (code; the API does not document its values)"
    assert "Succeeded    Resource" in lines
    wide = {
        "blocks": [
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Total*\n漢字漢字"},
                    {"type": "mrkdwn", "text": "*B*\nb"},
                ],
            }
        ]
    }
    # Wide characters take two columns, so the right column still lines up.
    assert render_message(wide).split("\n") == ["Total       B", "漢字漢字    b"]


def test_color_uses_ansi_bold_and_styles() -> None:
    out = render_message(seed_message(), color=True)
    assert "\x1b[1mFinished\x1b[22m" in out
    assert "\x1b[1mImported Q&A pairs.\x1b[22m" in out
    assert "\x1b[36m0\x1b[39m" in out  # code spans in colour instead of backticks


def test_running_card_with_watch_button() -> None:
    running = task(end_time=None, total_count=3000, success_count=2300, failure_count=100, task_status=1)
    message = {
        "response_type": "ephemeral",
        "blocks": task_card(
            running, CardView(request_id=None), watch_button=True, now=BEGIN + timedelta(seconds=44)
        ),
    }
    out = render_message(message)
    assert out.startswith("── only visible to you ──")
    assert "⏳ Running (status code `1`)" in out
    assert "`████████░░` 80%  (2,400 of 3,000)" in out
    assert "43 s so far" in out
    assert out.endswith("[ Refresh ]  [ Notify this channel when done ]")


def test_recent_list_and_errors() -> None:
    hostile = task(task_id="0" * 32, task_name="<!channel> & co")
    out = render_message({"blocks": recent_list(TaskPage(count=2, data=[SEED, hostile]), resource="faq")})
    assert out.startswith("Newest import/export tasks for faq\n")
    assert "✅ Imported Q&A pairs.   [ Open ]" in out
    assert "✅ <!channel> & co   [ Open ]" in out  # escaped in Slack, shown literally here
    assert "Showing 2 of 2" in out
    error = render_message({"blocks": error_blocks("Try `/task <task id>`", request_id="abc")})
    assert error == "⚠️ Try `/task <task id>`\n\nRequest id: `abc`"


def test_mrkdwn_tokens_in_plain_text_messages() -> None:
    message = {
        "text": "Hi <@U123> and <!here>: see <https://x.example|the docs> or <#C9|general>, "
        "at <!date^1744276967^{time}|09:22 UTC>. &lt;b&gt; *done* :tada: :unknown_code:"
    }
    assert render_message(message) == (
        "Hi @U123 and @here: see the docs (https://x.example) or #general, "
        "at 09:22 UTC. <b> done 🎉 :unknown_code:"
    )


def test_message_content_cannot_drive_the_terminal() -> None:
    out = render_message({"text": "evil \x1b[2J\x07 name"}, color=True)
    assert "\x1b" not in out
    assert "\x07" not in out


def test_unknown_blocks_and_dividers_are_visible() -> None:
    out = render_message(
        {"blocks": [{"type": "divider"}, {"type": "image", "image_url": "https://x", "alt_text": "x"}]}
    )
    assert out == "─" * 40 + "\n\n[image block]"


def test_refreshed_card_shows_update_time() -> None:
    blocks = task_card(
        Task.model_validate(SEED.model_dump()),
        CardView(request_id=None, refreshed_at=datetime(2025, 4, 10, 10, 0, 5, tzinfo=UTC)),
    )
    assert render_message({"blocks": blocks}).split("\n")[-3].endswith(" · Updated 10:00:05 UTC")


@settings(max_examples=40, deadline=None)
@given(tasks)
def test_any_card_renders_cleanly(any_task: Task) -> None:
    message: dict[str, Any] = {"blocks": task_card(any_task, CardView(request_id="r"), watch_button=True)}
    for color in (False, True):
        out = render_message(message, color=color)
        assert "<!date" not in out
        assert "[ Refresh ]" in out
        assert ("\x1b" in out) == color  # only our own styling
