"""Who reads which language, over real sockets: the bot behind its HTTP server, the Slack
stand-in answering ``users.info`` with a locale per user, the simulator, SQLite files."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from bot import messages
from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack, demo_stack, is_alert
from bot.devtools.slack_standin import PostedMessage, SlackStandIn
from bot.slack import ids
from tests.support.waiting import eventually

ZH, EN = "U0ZHREADER", "U0ENREADER"
UNKNOWN_TASK = "deadbeefdeadbeefdeadbeefdeadbeef"


def _zh(key: str) -> str:
    return messages.text(key, "zh-CN")


def _en(key: str) -> str:
    return messages.text(key, "en")


async def _until_cached(stack: LocalStack, user_id: str) -> str:
    team = stack.slack.team_id
    return await eventually(
        lambda: stack.runtime.locales.cached(team, user_id), within=5, what=f"{user_id}'s locale learnt"
    )


async def _reply(stack: LocalStack, http: httpx.AsyncClient, text: str, user_id: str) -> PostedMessage:
    seen = len(stack.slack.messages)
    response = await stack.command(http, text, user_id=user_id)
    assert response.status_code == 200 and response.content == b""
    messages_ = await stack.slack.wait_for_messages(seen + 1, timeout=10)
    return messages_[seen]


async def test_a_zh_cn_reader_gets_help_errors_and_watching_in_chinese_an_en_us_one_english(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    stack.slack.locales.update({ZH: "zh-CN", EN: "en-US"})
    # Nothing may ask Slack before the ack: the very first help of an unseen user is English...
    first = (await stack.command(http, "help", user_id=ZH)).json()
    assert first["text"] == _en("usage")
    # ...and the look-up it started after the ack makes every later reply Chinese.
    assert await _until_cached(stack, ZH) == "zh-CN"
    assert (await stack.command(http, "help", user_id=ZH)).json()["text"] == _zh("usage")
    parse_error = (await stack.command(http, "frobnicate", user_id=ZH)).json()["text"]
    assert parse_error.endswith(_zh("usage")) and "frobnicate" in parse_error

    error = await _reply(stack, http, UNKNOWN_TASK, ZH)
    assert error.ephemeral and _zh("error_not_found") in error.payload["text"]
    watching = await _reply(stack, http, "watching", ZH)
    assert watching.ephemeral and _zh("watching_empty") in repr(watching.blocks)

    # The English reader in the same channel: English throughout, with no prefetch needed for
    # background replies (they resolve after the ack).
    error = await _reply(stack, http, UNKNOWN_TASK, EN)
    assert _en("error_not_found") in error.payload["text"]
    watching = await _reply(stack, http, "watching", EN)
    assert _en("watching_empty") in repr(watching.blocks) and _zh("watching_empty") not in repr(
        watching.blocks
    )
    assert await _until_cached(stack, EN) == "en"
    assert (await stack.command(http, "help", user_id=EN)).json()["text"] == _en("usage")
    # One users.info each, whatever the number of commands: the cache answers the rest.
    asked = [c.params.get("user") for c in stack.slack.calls_to("users.info")]
    assert sorted(asked) == [EN, ZH]


async def test_a_users_info_failure_falls_back_to_the_workspace_language_then_english(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    for setting, expected in (("follow", "en"), ("zh-CN", "zh-CN")):
        (tmp_path / setting).mkdir()
        async with demo_stack(tmp_path / setting, channel_language=setting) as stack:
            stack.slack.locales[ZH] = "zh-CN"
            stack.slack.fail_next("users.info", error="user_not_found")
            reply = await _reply(stack, http, "watching", ZH)
            assert reply.ephemeral
            assert messages.text("watching_empty", expected) in repr(reply.blocks)
            # The failure is remembered briefly, not retried on every command, and never an error.
            assert stack.runtime.locales.cached(stack.slack.team_id, ZH) == ""
            again = await _reply(stack, http, "watching", ZH)
            assert messages.text("watching_empty", expected) in repr(again.blocks)
            assert len(stack.slack.calls_to("users.info")) == 1


def _running(task_id: str, seconds: float) -> sim.SimTask:
    now = time.time()
    return sim.SimTask(
        task_id=task_id,
        task_name="客服知识库问答对全量导入",
        resource="knowledge-intent-question-create",
        total_count=2000,
        duration_seconds=seconds,
        begin_time_ms=round((now - 0.5) * 1000),
    )


async def test_the_channel_language_setting_changes_cards_and_alerts_not_private_replies(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    async with demo_stack(
        tmp_path, channel_language="zh-CN", poll_seconds=0.3, card_update_seconds=0.3
    ) as stack:
        stack.slack.locales[EN] = "en-US"
        task = _running("c1a55e1ec1a55e1ec1a55e1ec1a55e1e", 2.0)
        stack.simulator.add_task(task)
        card = await _reply(stack, http, task.task_id, EN)
        assert card.via == "chat.postMessage" and _zh("field_succeeded") in repr(card.blocks)
        seen = len(stack.slack.messages)
        await stack.click(http, ids.ACTION_WATCH, task.task_id, user_id=EN, message_ts=card.ts)
        messages_ = await stack.slack.wait_for_messages(seen + 1, timeout=10)
        confirmation = messages_[seen]
        # What only the asker sees stays in their language.
        assert confirmation.ephemeral and "I'll tell this channel" in confirmation.payload["text"]
        alerts_ = await stack.slack.wait_for(lambda ms: any(is_alert(m) for m in ms), timeout=15)
        alert = next(m for m in alerts_ if is_alert(m))
        assert "已结束" in alert.payload["text"] and "finished" not in alert.payload["text"]


async def test_without_the_setting_the_card_follows_the_person_who_asked(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    stack.slack.locales.update({ZH: "zh-CN", EN: "en-US"})
    zh_card = await _reply(stack, http, sim.SEED_TASK_ID, ZH)
    en_card = await _reply(stack, http, sim.SEED_TASK_ID, EN)
    assert _zh("field_succeeded") in repr(zh_card.blocks)
    assert _en("field_succeeded") in repr(en_card.blocks) and _zh("field_succeeded") not in repr(
        en_card.blocks
    )


async def test_a_live_card_started_in_chinese_stays_chinese_across_a_restart(
    tmp_path: Path, http: httpx.AsyncClient
) -> None:
    slack, simulator = SlackStandIn(), sim.Simulator()
    slack.locales[ZH] = "zh-CN"
    task = _running("5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e", 12.0)
    simulator.add_task(task)
    timers = {"poll_seconds": 0.3, "card_update_seconds": 0.3}
    async with demo_stack(tmp_path, simulator=simulator, slack=slack, **timers) as stack:
        card = await _reply(stack, http, task.task_id, ZH)
        seen = len(slack.messages)
        await stack.click(http, ids.ACTION_WATCH, task.task_id, user_id=ZH, message_ts=card.ts)
        await slack.wait_for_messages(seen + 1, timeout=10)
        await slack.wait_for(
            lambda ms: any(m.via == "chat.update" and m.ts == card.ts for m in ms), timeout=10
        )
    # A new process on the same SQLite file, whose users.info now says the reader is en-US: the
    # card keeps the language it was started in, from the subscriber row, not from a new look-up.
    slack.locales[ZH] = "en-US"
    restarted_at = len(slack.messages)
    async with demo_stack(tmp_path, simulator=simulator, slack=slack, **timers) as stack:
        assert stack.runtime.locales.cached(slack.team_id, ZH) is None
        done = await slack.wait_for(
            lambda ms: any(is_alert(m) for m in ms[restarted_at:]), timeout=task.duration_seconds + 15
        )
        after = done[restarted_at:]
        redraws = [m for m in after if m.via == "chat.update" and m.ts == card.ts]
        assert redraws, "the card was not redrawn after the restart"
        assert all(_zh("field_succeeded") in repr(m.blocks) for m in redraws)
        alert = next(m for m in after if is_alert(m))
        assert "已结束" in alert.payload["text"]


async def test_an_admin_sets_the_channel_language_in_app_home_and_it_is_audited(
    tmp_path: Path, sqlite_url: str
) -> None:
    import json

    from tests.install_support import (
        TASK_A,
        multi_stack,
        project_a,
    )
    from tests.install_support import view_text as shown
    from tests.support.clock import FakeClock

    admin, member = "U0ADMINL01", "U0MEMBERL1"
    clock = FakeClock()
    async with multi_stack(tmp_path, sqlite_url, {"A": project_a(clock)}) as stack:
        team = stack.workspace("T0TEAMLNG1", admin=admin, member=member)
        stack.slack.locales.update({admin: "zh-CN", member: "en-US"})
        assert (await team.install()).status_code == 200
        await team.connect(stack.projects["A"])
        # App Home follows the person: the admin's is Chinese, the member's English.
        view = await team.open_home(admin)
        assert _zh("home_language_header") in shown(view) and _zh("home_language_follow") in shown(view)
        assert _en("home_language_header") in shown(await team.open_home(member))

        async def choose(user: str, value: str) -> None:
            payload = {
                "type": "block_actions",
                "team": {"id": team.team_id, "domain": team.team_id.lower()},
                "user": {"id": user, "team_id": team.team_id},
                "api_app_id": "A0TASKBOT1",
                "trigger_id": "1.2.3",
                "container": {"type": "view", "view_id": view.get("id", "V0HOME")},
                "actions": [
                    {
                        "type": "static_select",
                        "action_id": ids.ACTION_CHANNEL_LANGUAGE,
                        "block_id": "b",
                        "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
                    }
                ],
            }
            assert (await team._post_form({"payload": json.dumps(payload)})).status_code == 200

        async def setting() -> str | None:
            return (await stack.runtime.workspaces.get_guardrails(team.team_id)).channel_language  # type: ignore[union-attr]

        # A member's forged choice is refused and changes nothing.
        await choose(member, "zh-CN")
        refusal = await team.wait_message(lambda m: m.channel == member, what="the refusal DM")
        assert refusal.payload["text"] == _en("admin_only")
        assert await setting() is None

        await choose(admin, "zh-CN")

        async def saved() -> bool:
            return await setting() == "zh-CN"

        await eventually(saved, what="the channel language saved")
        audit = await stack.runtime.workspaces.audit(team.team_id, limit=5)  # type: ignore[union-attr]
        assert audit[0].action == "language.updated" and audit[0].user_id == admin

        # The English member's card in the channel is now Chinese.
        seen = len(stack.slack.messages)
        assert (await team.command(TASK_A, channel="C0LANGUAGE", user=member)).status_code == 200
        card = await team.wait_message(after=seen, what="the card")
        assert _zh("field_succeeded") in repr(card.blocks)


async def test_a_slow_users_info_delays_a_reply_by_at_most_the_wait_budget(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    from bot.services.languages import PERSON_WAIT_SECONDS

    stack.slack.locales[ZH] = "zh-CN"
    stack.slack.users_info_delay = PERSON_WAIT_SECONDS + 1.5
    started = time.monotonic()
    first = await _reply(stack, http, "watching", ZH)
    assert time.monotonic() - started < PERSON_WAIT_SECONDS + 1.0
    assert _en("watching_empty") in repr(first.blocks)  # the fallback, not an error
    # The look-up went on in the background and was cached: the next reply is Chinese.
    assert await _until_cached(stack, ZH) == "zh-CN"
    second = await _reply(stack, http, "watching", ZH)
    assert _zh("watching_empty") in repr(second.blocks)
