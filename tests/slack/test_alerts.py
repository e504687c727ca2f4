"""Block Kit of follow-ups: the completion alert, the notices, the watching list, the live card."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.db.feeds import FeedRecord
from bot.db.followups import ChannelWatch
from bot.metastudio.models import Task
from bot.slack import alerts, ids
from bot.slack.cards import CardView

TASK_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"
BEGIN = 1_744_276_900_000


def finished(**overrides: Any) -> Task:
    body: dict[str, Any] = {
        "task_id": TASK_ID,
        "task_name": "Imported Q&A pairs.",
        "resource": "knowledge-intent-question-create",
        "total_count": 1200,
        "success_count": 1197,
        "failure_count": 3,
        "task_status": 2,
        "begin_time": BEGIN,
        "end_time": BEGIN + 61_000,
    }
    body.update(overrides)
    return Task.model_validate(body)


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for block in blocks:
        found += [e for e in block.get("elements", []) if e.get("type") == "button"]
        if block.get("accessory", {}).get("type") == "button":
            found.append(block["accessory"])
    return found


def test_completion_alert_has_counts_rate_duration_mention_and_open_button() -> None:
    message = alerts.completion_alert(finished(), user_id="U0ASKER01")
    text = all_text(message.blocks)
    assert message.text.startswith("<@U0ASKER01> ")
    assert "<@U0ASKER01>" in message.blocks[0]["text"]["text"]
    assert "1,197 of 1,200" in text
    assert "99.7%" in text  # 1197/1200 = 99.75%, rounded down
    assert "1 min 01 s" in text
    assert "status code `2`" in text
    (button,) = buttons(message.blocks)
    assert button["action_id"] == ids.ACTION_OPEN
    assert button["value"] == TASK_ID


def test_failures_stand_out() -> None:
    message = alerts.completion_alert(finished(), user_id="U0ASKER01")
    headline = message.blocks[0]["text"]["text"]
    assert ":warning: *3*" in all_text(message.blocks[1:2])
    assert "3 failed" in message.text
    # Said once, in its field: the headline used to repeat it (issue 12).
    assert "3" not in headline.replace("U0ASKER01", "")
    assert all_text(message.blocks).count(":warning:") == 1


def test_no_failures_no_warning_and_full_rate() -> None:
    message = alerts.completion_alert(finished(success_count=1200, failure_count=0), user_id="U0ASKER01")
    assert ":warning:" not in all_text(message.blocks)
    assert "100.0%" in all_text(message.blocks)
    assert "failed" not in message.text


def test_rate_never_rounds_up_to_100_with_a_failure() -> None:
    task = finished(total_count=100_000, success_count=99_999, failure_count=1)
    assert "99.9%" in all_text(alerts.completion_alert(task, user_id=None).blocks)


def test_feed_alert_mentions_nobody_and_says_feed() -> None:
    message = alerts.completion_alert(finished(), user_id=None, feed=True)
    assert "<@" not in message.text
    assert "<@" not in all_text(message.blocks)
    assert "project feed" in all_text(message.blocks)


def test_hostile_names_cannot_ping() -> None:
    task = finished(task_name="<!channel> & <@U999> `x`")
    message = alerts.completion_alert(task, user_id="not a user id")
    text = all_text(message.blocks) + message.text
    assert "<!channel>" not in text
    assert "<@U999>" not in text
    assert "&lt;!channel&gt;" in text


def test_unknown_total_and_times() -> None:
    task = Task.model_validate({"task_id": TASK_ID, "success_count": 0, "failure_count": 0})
    text = all_text(alerts.completion_alert(task, user_id=None).blocks)
    assert "—" in text  # no rate, no duration


def test_expired_notice_with_last_seen_counts() -> None:
    last = finished(end_time=None, success_count=400, failure_count=0, task_status=1)
    message = alerts.expired_notice(TASK_ID, user_id="U0ASKER01", hours=24, last_seen=last)
    text = all_text(message.blocks)
    assert "<@U0ASKER01>" in text
    assert "24 h" in text
    assert "400 of 1,200" in text
    assert TASK_ID in text
    assert "\n" not in message.text


def test_expired_notice_without_snapshot() -> None:
    message = alerts.expired_notice(TASK_ID, user_id=None, hours=0.5)
    assert "0.5 h" in message.text
    assert TASK_ID in message.text


def test_not_found_notice() -> None:
    message = alerts.not_found_notice(TASK_ID, user_id="U0ASKER01")
    assert message.text.startswith("<@U0ASKER01> ")
    assert "no longer finds" in message.text


def test_cannot_post_dm_is_one_sentence_naming_the_channel() -> None:
    sentence = alerts.cannot_post_dm(channel_id="C0GONE0001", task_id=TASK_ID, error="channel_not_found")
    assert "<#C0GONE0001>" in sentence
    assert TASK_ID in sentence
    assert sentence.count(". ") == 0 and sentence.endswith(".")
    feed = alerts.cannot_post_dm(channel_id="C0GONE0001", task_id=None, error="is_archived")
    assert "archived" in feed and "feed" in feed
    odd = alerts.cannot_post_dm(channel_id="<!here>", task_id=None, error="weird_error")
    assert "<!here>" not in odd


def test_watching_list_with_feed_and_watches() -> None:
    until = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    watches = [
        ChannelWatch(
            task_id=f"{i:032x}",
            user_id="U0ASKER01",
            created_at=until,
            subscriber_id=i,
            watch_id=i,
            expires_at=until,
            message_ts=None,
        )
        for i in range(45)
    ]
    feed = FeedRecord(
        id=1,
        team_id="T1",
        channel_id="C0CHAN0001",
        user_id="U0ASKER01",
        resources=("knowledge-intent-question-create",),
        created_at=until,
        status="active",
    )
    message = alerts.watching_list(watches, feed)
    assert len(message.blocks) <= 50
    text = all_text(message.blocks)
    assert "knowledge-intent-question-create" in text
    assert "5 more" in text
    assert "<!date^" in text
    actions = [b["action_id"] for b in buttons(message.blocks)]
    assert actions.count(ids.ACTION_UNWATCH) == alerts.MAX_LISTED
    assert actions.count(ids.ACTION_UNSUBSCRIBE) == 1


def test_watching_list_empty() -> None:
    message = alerts.watching_list([], None)
    text = all_text(message.blocks)
    assert "not watching any task" in text
    assert "No project feed" in text
    assert buttons(message.blocks) == []


def test_watched_card_shows_note_until_finished() -> None:
    running = finished(end_time=None, success_count=100, failure_count=0, task_status=1)
    refreshed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    live = alerts.watched_card(running, CardView(request_id="req-1", refreshed_at=refreshed))
    assert "Watching" in all_text(live.blocks)
    assert live.blocks[-1]["type"] == "actions"
    assert "03:04:05" in all_text(live.blocks)
    final = alerts.watched_card(finished(), CardView(request_id=None, refreshed_at=refreshed))
    assert "Watching" not in all_text(final.blocks)


# --- in Simplified Chinese ---------------------------------------------------------------------------


def test_chinese_completion_alert_and_notices() -> None:
    task = finished(
        task_name="客服知识库问答对全量导入😀", total_count=50_000, success_count=25_001, failure_count=2
    )
    alert = alerts.completion_alert(task, user_id="U0ASKER01", locale="zh-CN")
    body = all_text(alert.blocks)
    assert "*客服知识库问答对全量导入😀* 已结束。" in body
    assert (
        "*成功数*\\n25,001 / 50,000" in body and "*成功率*\\n50.0%" in body and "*耗时*\\n1 分钟 1 秒" in body
    )
    assert alert.text == "<@U0ASKER01> 客服知识库问答对全量导入😀 已结束：成功 25,001 / 50,000，失败 2"
    assert [b["text"]["text"] for b in buttons(alert.blocks)] == ["查看"]
    expired = alerts.expired_notice(TASK_ID, user_id=None, hours=24, last_seen=task, locale="zh-CN")
    assert "24 小时后任务仍未结束" in expired.text and "已处理 25,003 / 50,000" in all_text(expired.blocks)
    assert "已找不到该任务" in alerts.not_found_notice(TASK_ID, user_id=None, locale="zh-CN").text
    dm = alerts.cannot_post_dm(channel_id="C0ABC", task_id=None, error="is_archived", locale="zh-CN")
    assert dm.startswith("我无法在 <#C0ABC> 发布消息，原因是该频道已归档")


def test_chinese_alerts_with_huge_emoji_names_stay_within_limits() -> None:
    from slack_sdk.models.blocks import Block

    name = "客服😀👩‍💻" * 2000
    messages_ = [
        alerts.completion_alert(finished(task_name=name), user_id="U0ASKER01", locale="zh-CN"),
        alerts.expired_notice(
            TASK_ID, user_id="U0ASKER01", hours=24, last_seen=finished(task_name=name), locale="zh-CN"
        ),
        alerts.watched_card(
            finished(task_name=name, end_time=None), CardView(request_id="r", locale="zh-CN")
        ),
    ]
    for message in messages_:
        assert len(message.text.encode("utf-16-le")) // 2 <= 300
        for block in message.blocks:
            model = Block.parse(block)
            assert model is not None
            model.validate_json()
            for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
                if obj and obj.get("type") == "mrkdwn":
                    assert len(obj["text"].encode("utf-16-le")) // 2 <= 3000
