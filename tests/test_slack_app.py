"""The Bolt app behind its real HTTP server, driven the way Slack drives it."""

from __future__ import annotations

import logging
import sqlite3
import time

import httpx
import pytest
from sqlalchemy.engine import make_url

from bot import messages
from bot.devtools import simulator as sim
from bot.devtools.demo import LocalStack
from bot.devtools.slack_standin import sign_request
from bot.slack import ids


def _all_text(blocks: list[dict]) -> str:
    return repr(blocks)


async def test_task_command_acks_then_posts_card_in_channel(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    started = time.perf_counter()
    response = await stack.command(http, sim.SEED_TASK_ID)
    ack_seconds = time.perf_counter() - started
    assert response.status_code == 200
    assert response.content == b""
    assert ack_seconds < 1.0
    [card] = await stack.slack.wait_for_messages(1)
    assert card.via == "chat.postMessage"
    assert card.channel == "C0DEMO0001"
    text = _all_text(card.blocks)
    assert "Imported Q&A pairs." in text
    assert sim.SEED_TASK_ID in text
    assert ids.ACTION_REFRESH in text


async def test_ack_comes_before_the_cloud_call(stack: LocalStack, http: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    response = await stack.command(http, sim.SLOW_TASK_ID)
    ack_seconds = time.perf_counter() - started
    assert response.status_code == 200
    assert ack_seconds < 1.0, "the simulator answers this task after 2 s; the ack must not wait"
    await stack.slack.wait_for_messages(1, timeout=10)
    assert time.perf_counter() - started >= 2.0


async def test_private_channel_falls_back_to_response_url(stack: LocalStack, http: httpx.AsyncClient) -> None:
    await stack.command(http, sim.SEED_TASK_ID, channel_id="G0PRIVATE1")
    [message] = await stack.slack.wait_for_messages(1)
    assert message.via == "response_url"
    assert message.payload["response_type"] == "in_channel"
    assert "Imported Q&A pairs." in _all_text(message.blocks)
    assert [c.params["channel"] for c in stack.slack.calls_to("chat.postMessage")] == ["G0PRIVATE1"]


async def test_malformed_id_is_answered_in_the_ack_without_a_cloud_call(
    stack: LocalStack, http: httpx.AsyncClient
) -> None:
    response = await stack.command(http, "12345-not-a-task")
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert "is not a task id" in body["text"]
    assert not any(kind == "show" for kind, _ in stack.simulator.requests)


async def test_unknown_subcommand_and_help(stack: LocalStack, http: httpx.AsyncClient) -> None:
    unknown = (await stack.command(http, "frobnicate now")).json()
    assert "I don't know `frobnicate`" in unknown["text"]
    assert "/task recent" in unknown["text"]
    for text in ("", "help", "  HELP "):
        usage = (await stack.command(http, text)).json()
        assert usage["response_type"] == "ephemeral"
        assert "/task &lt;task id&gt;" in usage["text"]


async def test_unknown_task_gets_an_ephemeral_sentence(stack: LocalStack, http: httpx.AsyncClient) -> None:
    await stack.command(http, "deadbeefdeadbeefdeadbeefdeadbeef")
    [message] = await stack.slack.wait_for_messages(1)
    assert message.ephemeral
    assert "No task with that id" in message.text
    assert "Traceback" not in repr(message.payload)
    assert "Request id" in _all_text(message.blocks) or "request" in _all_text(message.blocks).lower()


async def test_cloud_errors_become_one_sentence(stack: LocalStack, http: httpx.AsyncClient) -> None:
    expected = {
        sim.MSS_TASK_IDS["MSS.000000004"]: "did not accept taskbot's credentials",
        sim.FORBIDDEN_TASK_ID: "may not read import/export tasks",
        sim.MALFORMED_TASK_ID: "could not read",
    }
    for task_id in expected:
        await stack.command(http, task_id)
    messages = await stack.slack.wait_for_messages(len(expected), timeout=15)
    texts = sorted(m.text for m in messages)
    for sentence in expected.values():
        assert any(sentence in text for text in texts), (sentence, texts)
    assert all(m.ephemeral for m in messages)


async def test_recent_lists_ten_tasks_with_open_buttons(stack: LocalStack, http: httpx.AsyncClient) -> None:
    await stack.command(http, "recent")
    [message] = await stack.slack.wait_for_messages(1)
    assert message.ephemeral
    buttons = [
        block["accessory"]
        for block in message.blocks
        if block.get("type") == "section" and block.get("accessory", {}).get("action_id") == ids.ACTION_OPEN
    ]
    assert len(buttons) == 10


async def test_recent_filters_by_resource(stack: LocalStack, http: httpx.AsyncClient) -> None:
    await stack.command(http, "recent knowledge-intent-question-export")
    [message] = await stack.slack.wait_for_messages(1)
    assert "knowledge-intent-question-export" in message.text
    [list_call] = [c for c in stack.simulator.requests if c[0] == "list"]
    assert list_call


async def test_refresh_updates_the_same_message(stack: LocalStack, http: httpx.AsyncClient) -> None:
    await stack.command(http, sim.RUNNING_TASK_ID)
    [card] = await stack.slack.wait_for_messages(1)
    response = await stack.click(http, ids.ACTION_REFRESH, sim.RUNNING_TASK_ID, message_ts=card.ts)
    assert response.status_code == 200
    messages = await stack.slack.wait_for_messages(2)
    update = messages[1]
    assert update.via == "chat.update"
    assert update.ts == card.ts
    assert update.channel == card.channel


async def test_open_button_posts_that_tasks_card(stack: LocalStack, http: httpx.AsyncClient) -> None:
    await stack.click(http, ids.ACTION_OPEN, sim.SEED_TASK_ID)
    [card] = await stack.slack.wait_for_messages(1)
    assert card.via == "chat.postMessage"
    assert "Imported Q&A pairs." in _all_text(card.blocks)


async def test_bad_signatures_get_401_and_no_reply(stack: LocalStack, http: httpx.AsyncClient) -> None:
    body, good_headers = stack.slack.slash_command(stack.signing_secret, sim.SEED_TASK_ID)
    url = f"{stack.bot_url}/slack/events"
    missing = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = {**good_headers, "X-Slack-Signature": "v0=" + "0" * 64}
    stale = sign_request(stack.signing_secret, body, int(time.time()) - 6 * 60)
    other_secret = sign_request("not-the-signing-secret", body)
    for headers in (missing, wrong, stale, other_secret):
        response = await http.post(url, content=body, headers=headers)
        assert response.status_code == 401
    assert stack.slack.messages == []
    assert not stack.simulator.requests


async def test_health_and_metrics(stack: LocalStack, http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{stack.bot_url}/healthz")).json() == {"ok": True}
    await stack.command(http, sim.SEED_TASK_ID)
    await stack.slack.wait_for_messages(1)
    metrics = (await http.get(f"{stack.bot_url}/metrics")).text
    assert 'taskbot_commands_total{command="showtask",outcome="ok"}' in metrics
    assert "taskbot_metastudio_call_seconds_bucket" in metrics
    assert 'taskbot_metastudio_calls_total{operation="show_task",outcome="ok"}' in metrics


async def test_a_failure_behind_a_button_is_one_sentence_and_logged(
    stack: LocalStack, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # A real fault, not a mock: the follow-up tables vanish under the running bot.
    database = make_url(stack.settings.database_url).database
    assert database
    with sqlite3.connect(database) as db:
        db.executescript("DROP TABLE deliveries; DROP TABLE subscribers;")
    caplog.set_level(logging.ERROR, logger="taskbot.services")

    response = await stack.click(http, ids.ACTION_UNWATCH, sim.RUNNING_TASK_ID)
    assert response.status_code == 200

    [reply] = await stack.slack.wait_for_messages(1, timeout=10)
    assert reply.via == "response_url" and reply.ephemeral
    assert reply.text == messages.text("error_internal")
    assert "Traceback" not in repr(reply.payload) and "subscribers" not in repr(reply.payload)
    assert any("background work" in record.getMessage() and record.exc_info for record in caplog.records)
