"""``taskbot demo`` as a real process: every step answers, and the watch plays out to its alert."""

from __future__ import annotations

import re
import time

from bot.devtools.demo import WATCHED_STALL_SECONDS, WATCHED_TASK_ID
from tests.support.cli import clean_env, run_cli

# The watched task now stalls for WATCHED_STALL_SECONDS (issue 12), which the demo waits out.
DEMO_BUDGET_SECONDS = 20.0 + WATCHED_STALL_SECONDS


async def test_demo_shows_a_watch_from_card_to_alert() -> None:
    started = time.monotonic()
    code, text, err = await run_cli("demo", "--no-color", env=clean_env(), timeout=DEMO_BUDGET_SECONDS + 10)
    elapsed = time.monotonic() - started
    assert code == 0, text + err
    assert elapsed < DEMO_BUDGET_SECONDS, f"the demo took {elapsed:.1f} s"
    assert "no message arrived" not in text and "did not arrive" not in text
    assert "Traceback" not in text + err

    # The same finished task for an en-US and a zh-CN reader: a private reply in each language,
    # and the card the Chinese reader asked for, in the channel's language (follow: theirs).
    languages = text[text.index("The same task for two readers") : text.index(f"/task {WATCHED_TASK_ID}")]
    assert "has already finished, so there is nothing to watch" in languages
    assert "已经结束，无需关注" in languages
    card = languages[languages.index("the card is for the channel") :]
    assert "(chat.postMessage, in C0DEMO0001)" in card and "成功数" in card

    watch_part = text[text.index(f"/task {WATCHED_TASK_ID}") :]
    # The card, the ephemeral confirmation, then at least one live redraw of the same card.
    assert "[ Notify this channel when done ]" in watch_part
    assert "I'll tell this channel when Import of 6,000 FAQ pairs finishes" in watch_part
    live = watch_part.index("Watching: this channel is told when the task finishes")
    # The alert: a reply in the card's thread, broadcast, mentioning the requester, with the counts.
    alert = watch_part.index("The completion alert:")
    assert live < alert
    # The live card's ETA, rate and trend, then one stall notice in the thread, the card marking
    # the stall and, once it moves, noting that it ended.
    before_alert = watch_part[:alert]
    assert re.search(r"≈ .+ left · [\d,.]+ items/s", before_alert)
    assert re.search(r"Trend `[▁▂▃▄▅▆▇█]{2,}`", before_alert)
    assert before_alert.count("A stall notice, in the card's thread:") == 1
    assert re.search(r"no progress for .+, stuck at [\d,]+ of 6,000\.", before_alert)
    assert before_alert.index("Stalled: no progress") < before_alert.index("Moving again after a stall")
    alert_text = watch_part[alert:]
    assert re.search(r"in thread \d+\.\d+ · also sent to the channel", alert_text)
    assert "@U0DEMOUSER ✅ Import of 6,000 FAQ pairs finished." in alert_text
    assert "5,970 of 6,000" in alert_text and "99.5%" in alert_text and "[ Open ]" in alert_text
    # After the alert the card is redrawn in its final state, without the "Watching" note.
    final_card = alert_text[alert_text.index("(chat.update") :]
    assert "✅ Finished" in final_card and "Watching" not in final_card
    assert text.rstrip().endswith("Every request above was signed and sent over a real socket.")
    # Workflow Builder steps: get_task answers with the event's token; the wait_for_task started
    # with the watch completes once the task finished, with the workspace's token.
    steps = text[text.index("A Workflow Builder step reads a task") :]
    assert "the step did not complete" not in steps
    waited = steps[steps.index("alongside the watch goes on") :]
    assert steps.count("(functions.completeSuccess, with the event's own token)") == 1
    assert "(functions.completeSuccess, with the workspace's bot token)" in waited
    assert "total_count: 6000" in waited and "success_rate: 99.5" in waited
    # A digest: set in the user's timezone, then its owed run posted once, marked late.
    digest = text[text.index("asks for a daily summary of finished tasks") :]
    assert "gets a digest of finished tasks every day at 09:00 (UTC)" in digest
    assert digest.count("Import/export digest") == 1 and "This digest is late" in digest
    assert "· took " in digest and "[ Open ]" in digest
