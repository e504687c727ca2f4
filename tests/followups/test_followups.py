"""The follow-up engine end to end: the MetaStudio simulator and the Slack stand-in on real loopback
sockets, the follow-up tables on a SQLite file (and on PostgreSQL for the exactly-once tests)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.aio.ratelimit import Priority, PriorityRateLimiter
from bot.config import Settings
from bot.db.base import Database
from bot.db.deliveries import DeliveryRecord, DeliveryStore, TaskSnapshot
from bot.db.followups import FollowUpStore
from bot.devtools.simulator import (
    Fault,
    SimTask,
    Simulator,
)
from bot.devtools.slack_standin import DEMO_BOT_TOKEN, DEMO_TEAM_ID, PostedMessage, SlackStandIn
from bot.followups import DELIVERY_EVENT, FollowUps
from bot.followups.polling import PollPolicy
from bot.followups.scheduler import Scheduler
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.models import Task
from bot.servers import serve_asgi
from bot.slack.alerts import Message
from bot.slack.clients import request_retry_handlers
from bot.slack.poster import Poster, SlackPoster
from tests.support.clock import FakeClock
from tests.support.credentials import aksk
from tests.support.waiting import eventually

TEAM = DEMO_TEAM_ID
CHANNELS = ("C0CHAN0001", "C0CHAN0002", "C0CHAN0003")
TASK_ID = "c0ffee00c0ffee00c0ffee00c0ffee01"
MISSING_ID = "deadbeefdeadbeefdeadbeefdeadbeef"
NO_CARD = "C0NOCARD01"
POLL = 0.05


def sim_task(
    task_id: str = TASK_ID, *, duration: float = 1.0, started_ago: float = 0.1, **kw: Any
) -> SimTask:
    values: dict[str, Any] = {
        "task_name": f"Import {task_id[-4:]}",
        "resource": "knowledge-intent-question-create",
        "total_count": 1200,
        "failure_rate": 0.01,
    }
    values.update(kw)
    return SimTask(
        task_id=task_id,
        duration_seconds=duration,
        begin_time_ms=round((time.time() - started_ago) * 1000),
        **values,
    )


@dataclass
class Stack:
    sim: Simulator
    slack: SlackStandIn
    sim_url: str
    database_url: str
    metastudio: MetaStudioClient
    slack_client: AsyncWebClient
    engines: list[FollowUps] = field(default_factory=list)
    databases: list[Database] = field(default_factory=list)

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "poll_seconds": POLL,
            "max_poll_seconds": 0.5,
            "card_update_seconds": 0.2,
            "feed_poll_seconds": 0.1,
            "api_rate": 500.0,
            "watch_max_hours": 1.0,
        }
        values.update(overrides)
        return Settings(**values)

    async def storage(self) -> FollowUpStore:
        database = Database(self.database_url)
        await database.create_all()
        self.databases.append(database)
        return FollowUpStore(database)

    async def slack_for(self, team_id: str) -> AsyncWebClient:
        assert team_id == TEAM
        return self.slack_client

    async def followups(
        self,
        *,
        start: bool = True,
        limiter: PriorityRateLimiter | None = None,
        policy: PollPolicy | None = None,
        clock: Callable[[], float] = time.time,
        poster: Poster | None = None,
        **overrides: Any,
    ) -> FollowUps:
        storage = await self.storage()

        async def metastudio_for(team_id: str) -> MetaStudioClient:
            assert team_id == TEAM
            return self.metastudio

        engine = FollowUps(
            self.settings(**overrides),
            storage,
            metastudio_for=metastudio_for,
            poster=poster or SlackPoster(self.slack_for),
            limiter=limiter,
            policy=policy,
            clock=clock,
        )
        self.engines.append(engine)
        if start:
            await engine.start()
        return engine

    async def post_card(self, channel: str, task_id: str = TASK_ID) -> str:
        response = await self.slack_client.chat_postMessage(channel=channel, text=f"card of {task_id}")
        return str(response["ts"])

    def alerts(self, task_id: str = TASK_ID) -> list[PostedMessage]:
        """Delivered follow-up messages about ``task_id`` (anything posted with our metadata)."""
        return [
            m
            for m in self.slack.messages
            if m.via == "chat.postMessage"
            and (m.payload.get("metadata") or {}).get("event_type") == DELIVERY_EVENT
            and task_id in json.dumps(m.payload)
        ]

    def updates(self, ts: str) -> list[PostedMessage]:
        return [m for m in self.slack.messages if m.via == "chat.update" and m.ts == ts]

    def final_card(self, ts: str) -> bool:
        """Whether the card's latest redraw shows the task finished."""
        updates = self.updates(ts)
        return bool(updates) and "Finished" in json.dumps(updates[-1].blocks)


@pytest.fixture
async def stack(sqlite_url: str) -> AsyncIterator[Stack]:
    async with _stack(sqlite_url) as built:
        yield built


@pytest.fixture
async def any_db_stack(database_url: str) -> AsyncIterator[Stack]:
    async with _stack(database_url) as built:
        yield built


class _stack:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._exit: list[Callable[[], Awaitable[Any]]] = []

    async def __aenter__(self) -> Stack:
        sim = Simulator(tasks=[])
        slack = SlackStandIn()
        self._sim_server = serve_asgi(sim.app)
        self._slack_server = serve_asgi(slack.app)
        sim_url = await self._sim_server.__aenter__()
        slack.base_url = await self._slack_server.__aenter__()
        credentials = aksk()
        # No client-side retries: the follow-up engine's own backoff is what is under test.
        metastudio = MetaStudioClient(endpoint=sim_url, credentials=credentials, max_retries=0)
        slack_client = AsyncWebClient(
            token=DEMO_BOT_TOKEN, base_url=slack.api_url, retry_handlers=request_retry_handlers()
        )
        self.built = Stack(sim, slack, sim_url, self.database_url, metastudio, slack_client)
        return self.built

    async def __aexit__(self, *exc: object) -> None:
        for engine in self.built.engines:
            await engine.stop(grace=2)
        for database in self.built.databases:
            await database.dispose()
        await self.built.metastudio.aclose()
        # Both servers drain at once: uvicorn notices should_exit only every 0.1 s.
        await asyncio.gather(
            self._slack_server.__aexit__(None, None, None), self._sim_server.__aexit__(None, None, None)
        )


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.name == "taskbot.followups" and r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def settled(engine: FollowUps, *jobs: str) -> None:
    """Wait until none of ``jobs`` is armed or running and no delivery is owed.

    Every wait of the follow-ups is a scheduler job, and a delivery is posted before it is
    recorded sent: from here on only work already in flight can still reach Slack, and
    ``engine.stop()`` lets that finish. An absence checked then holds for good, however slow
    the machine, instead of for as long as a test cared to sleep.
    """

    async def idle() -> bool:
        if any(engine.scheduler.busy(job) for job in jobs):
            return False
        return not await engine.deliveries.pending_deliveries()

    await eventually(idle, what=f"{', '.join(jobs) or 'the outbox'} idle, with nothing owed")


async def scheduler_passed(scheduler: Scheduler, seconds: float) -> None:
    """Arm a job ``seconds`` from now on ``scheduler`` and wait for its run.

    APScheduler submits every job that is due, earliest first, before a later one's run starts,
    and the runs start in that order: by now any job due before this one has been submitted
    (``busy``) and has started. A job that has not is one that was not due.
    """
    ran = asyncio.Event()

    async def mark() -> None:
        ran.set()

    job = f"probe:{id(ran)}"
    scheduler.every(job, mark, 3600.0, first=seconds)
    try:
        await asyncio.wait_for(ran.wait(), seconds + 10)
    finally:
        scheduler.cancel(job)


def longest_wait(engine: FollowUps) -> float:
    """No poll, feed poll or delivery retry of ``engine`` is armed further ahead than this: each
    waits at most the policy's ceiling (a feed, at most its own interval if longer), plus jitter."""
    ceiling = max(engine.policy.ceiling, engine.settings.feed_poll_seconds)
    return ceiling * (1 + engine.policy.jitter)


# --- watching one task -------------------------------------------------------------------------


async def test_three_channels_one_poll_each_told_once(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="taskbot.followups")
    # Running until the test finishes it below: every watch() is in before the task can end.
    stack.sim.add_task(sim_task(duration=3600, total_count=100_000))
    limiter = PriorityRateLimiter(rate=500)
    engine = await stack.followups(limiter=limiter, max_poll_seconds=0.25)
    cards = {channel: await stack.post_card(channel) for channel in CHANNELS}
    began = time.monotonic()
    for number, channel in enumerate(CHANNELS):
        result = await engine.watch(
            team_id=TEAM,
            task_id=TASK_ID,
            channel_id=channel,
            user_id=f"U0USER000{number}",
            message_ts=cards[channel],
        )
        assert result.created
    again = await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0USER0000")
    assert not again.created
    await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=NO_CARD, user_id="U0USER0009")
    await eventually(lambda: engine.polls >= 3, what="three polls of the running task")
    # The task ends now: 1,200 items, 1% of them failed.
    stack.sim.add_task(sim_task(duration=0.5, started_ago=1.0))

    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 4, timeout=8)
    # The poll that saw the task finished closed the watch: every poll is behind us.
    elapsed = time.monotonic() - began
    await stack.slack.wait_for(lambda _: all(stack.final_card(ts) for ts in cards.values()), timeout=3)
    # No poll left to close the watch again, every delivery recorded, the work in flight done:
    # a duplicate would be in the stand-in by now.
    await settled(engine, f"watch:{result.watch.id}")
    await engine.stop()

    alerts = stack.alerts()
    assert sorted(m.channel or "" for m in alerts) == sorted((*CHANNELS, NO_CARD))
    # Without a card the alert goes to the channel itself.
    (plain,) = [m for m in alerts if m.channel == NO_CARD]
    assert "thread_ts" not in plain.payload
    assert not [m for m in stack.slack.messages if m.via == "chat.update" and m.channel == NO_CARD]
    for number, channel in enumerate(CHANNELS):
        (alert,) = [m for m in alerts if m.channel == channel]
        # Default alert_mode: a reply in the card's thread, also sent to the channel.
        assert alert.payload["thread_ts"] == cards[channel]
        assert alert.payload["reply_broadcast"] is True
        assert alert.text.startswith(f"<@U0USER000{number}> ")
        blocks = json.dumps(alert.blocks)
        assert "1,188 of 1,200" in blocks  # 1% of 1,200 failed
        assert ":warning: *12*" in blocks
        final = stack.updates(cards[channel])[-1]
        assert "Watching" not in json.dumps(final.blocks)

    # One poll per interval for the task, not one per channel. An hour to go: each poll plans
    # the next one a whole ceiling later (less its jitter), so one poller cannot poll more often
    # than this, however slow the machine; three would, from their first polls on.
    polls = stack.sim.requests[("show", TASK_ID)]
    assert polls == engine.polls
    shortest = engine.policy.ceiling * (1 - engine.policy.jitter)
    assert polls <= 1 + elapsed / shortest, (polls, elapsed)
    assert limiter.granted[Priority.POLL] == polls
    deliveries = await engine.deliveries.pending_deliveries()
    assert deliveries == []
    watches, feed = await engine.watching(team_id=TEAM, channel_id=CHANNELS[0])
    assert watches == [] and feed is None
    no_errors_logged(caplog)


@pytest.mark.parametrize("mode", ["thread", "channel"])
async def test_alert_mode(stack: Stack, mode: str) -> None:
    stack.sim.add_task(sim_task(duration=0.4))
    engine = await stack.followups(alert_mode=mode)
    card = await stack.post_card(CHANNELS[0])
    result = await engine.watch(
        team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01", message_ts=card
    )
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=5)
    await settled(engine, f"watch:{result.watch.id}")
    await engine.stop()
    (alert,) = stack.alerts()
    if mode == "thread":
        assert alert.payload["thread_ts"] == card
        assert not alert.payload.get("reply_broadcast")
    else:
        assert "thread_ts" not in alert.payload
    assert "<@U0ASKER01>" in alert.text


class RecordingPoster(SlackPoster):
    """The Slack poster, noting each card update it sends and the follow-ups' time of sending."""

    def __init__(
        self, client_for: Callable[[str], Awaitable[AsyncWebClient]], clock: Callable[[], float]
    ) -> None:
        super().__init__(client_for)
        self._clock = clock
        self.updates: list[tuple[float, Message]] = []

    async def update(self, team_id: str, channel_id: str, ts: str, message: Message) -> None:
        self.updates.append((self._clock(), message))
        await super().update(team_id, channel_id, ts, message)


async def test_live_card_updates_respect_card_update_seconds(stack: Stack) -> None:
    """A moving task's card is redrawn once card_update_seconds have passed since its last
    redraw, never sooner.

    The engine and the simulator share a clock that only the test moves, a step at a time, each
    once a whole poll has seen the last: the redraws' times are exact on any machine, however
    few polls a loaded one manages.
    """
    wait, step = 0.5, 0.125  # binary fractions: the clock's sums and differences are exact
    clock = FakeClock(float(int(time.time())))
    stack.sim.clock = clock
    stack.sim.add_task(sim_task(duration=60, started_ago=2, total_count=100_000))
    poster = RecordingPoster(stack.slack_for, clock)
    engine = await stack.followups(clock=clock, poster=poster, card_update_seconds=wait, max_poll_seconds=0.1)
    card = await stack.post_card(CHANNELS[0])
    await engine.watch(
        team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01", message_ts=card
    )
    sent = poster.updates

    async def a_whole_poll() -> None:
        """One poll begun since the clock last moved has ended (the next one has begun)."""
        polls = engine.polls
        await eventually(lambda: engine.polls >= polls + 2, what="a whole poll at this time")

    # The first poll draws the card at once.
    await eventually(lambda: sent, what="the first live card")
    for _ in range(4 * round(wait / step)):
        clock.advance(step)
        if clock.now - sent[-1][0] >= wait:
            await eventually(lambda: sent[-1][0] == clock.now, what="the live card now due")
        else:
            # A redraw that poll began shows in the gaps checked below.
            await a_whole_poll()
    times = [at for at, _ in sent]
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == [wait] * 4
    live = [json.dumps(message.blocks) for _, message in sent]
    assert all("Watching" in blocks and "Updated" in blocks for blocks in live)
    # The counts on successive live cards move forward.
    assert len({json.dumps(message.blocks[1]) for _, message in sent}) == len(sent)
    # Slack got each of them, in order.
    await eventually(lambda: len(stack.updates(card)) == len(sent), what="every live card in Slack")
    assert [json.dumps(u.blocks) for u in stack.updates(card)] == live

    clock.advance(60)  # the task is over
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=6)
    # The card is redrawn in its final state right after the alert.
    await stack.slack.wait_for(lambda _: stack.final_card(card), timeout=3)


async def test_unwatch(stack: Stack) -> None:
    stack.sim.add_task(sim_task(duration=0.8))
    engine = await stack.followups()
    await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
    result = await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[1], user_id="U0ASKER02")
    assert await engine.unwatch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0])
    assert not await engine.unwatch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0])
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=5)
    # The close wrote one delivery per channel still watching, and each is posted by now.
    await settled(engine, f"watch:{result.watch.id}")
    assert [m.channel for m in stack.alerts()] == [CHANNELS[1]]

    # Unwatching the last channel of a task stops its polls.
    long_id = "c0ffee00c0ffee00c0ffee00c0ffee02"
    stack.sim.add_task(sim_task(long_id, duration=30))
    long_watch = await engine.watch(
        team_id=TEAM, task_id=long_id, channel_id=CHANNELS[0], user_id="U0ASKER01"
    )
    await eventually(lambda: stack.sim.requests[("show", long_id)] >= 2)
    assert await engine.unwatch(team_id=TEAM, task_id=long_id, channel_id=CHANNELS[0])
    job = f"watch:{long_watch.watch.id}"
    await eventually(lambda: not engine.scheduler.busy(job), what="the unwatched task's job gone")
    polls = stack.sim.requests[("show", long_id)]
    # Any next poll it could have had armed was due before this probe's run.
    await scheduler_passed(engine.scheduler, longest_wait(engine))
    assert not engine.scheduler.busy(job)
    assert stack.sim.requests[("show", long_id)] == polls


# --- watches that end without the task finishing -----------------------------------------------


async def test_not_found_three_times_ends_the_watch_with_one_notice(stack: Stack) -> None:
    engine = await stack.followups()
    card = await stack.post_card(CHANNELS[0], MISSING_ID)
    result = await engine.watch(
        team_id=TEAM, task_id=MISSING_ID, channel_id=CHANNELS[0], user_id="U0ASKER01", message_ts=card
    )
    await stack.slack.wait_for(lambda _: len(stack.alerts(MISSING_ID)) >= 1, timeout=5)
    await settled(engine, f"watch:{result.watch.id}")
    await engine.stop()
    (notice,) = stack.alerts(MISSING_ID)
    assert "no longer finds" in notice.text
    assert "<@U0ASKER01>" in notice.text
    assert notice.payload["thread_ts"] == card
    assert not notice.payload.get("reply_broadcast")
    assert stack.sim.requests[("show", MISSING_ID)] == 3


async def test_not_found_streak_resets_when_the_task_appears(stack: Stack) -> None:
    stack.sim.set_fault(TASK_ID, None)
    engine = await stack.followups()
    await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
    await eventually(lambda: stack.sim.requests[("show", TASK_ID)] >= 2)
    stack.sim.add_task(sim_task(duration=0.3))
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=5)
    (alert,) = stack.alerts()
    assert "finished" in alert.text


async def test_expiry_sends_one_notice(stack: Stack) -> None:
    stack.sim.add_task(sim_task(duration=600))
    engine = await stack.followups(watch_max_hours=0.4 / 3600)
    result = await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=5)
    polls = engine.polls
    await settled(engine, f"watch:{result.watch.id}")
    await engine.stop()
    (notice,) = stack.alerts()
    assert "stopped watching" in notice.text
    assert "Last seen" in json.dumps(notice.blocks)
    assert engine.polls == polls  # no polling after expiry
    watches, _ = await engine.watching(team_id=TEAM, channel_id=CHANNELS[0])
    assert watches == []


# --- MetaStudio and Slack faults ---------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Fault("throttle", seconds=0.1, times=2), Fault("server_error", times=2)],
    ids=["throttle", "5xx"],
)
async def test_throttled_or_failing_task_backs_off_and_still_delivers(
    stack: Stack, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="taskbot.followups")
    stack.sim.add_task(sim_task(duration=0.3, fault=fault))
    engine = await stack.followups(max_poll_seconds=0.3)
    result = await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=8)
    await settled(engine, f"watch:{result.watch.id}")
    await engine.stop()
    assert len(stack.alerts()) == 1
    assert stack.sim.requests[("show", TASK_ID)] >= 3
    failed = [r for r in caplog.records if "watch poll failed" in r.getMessage()]
    assert len(failed) == 2
    delays = [float(r.getMessage().rsplit("next in ", 1)[1].split()[0]) for r in failed]
    assert delays[1] > delays[0]  # backing off
    assert all(getattr(r, "task_id", None) == TASK_ID for r in failed)
    no_errors_logged(caplog)


async def test_channel_not_found_closes_the_subscriber_and_dms_the_requester(stack: Stack) -> None:
    gone = "C0GONE0001"
    stack.slack.channel_errors[gone] = "channel_not_found"
    stack.sim.add_task(sim_task(duration=0.3))
    engine = await stack.followups()
    result = await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=gone, user_id="U0ASKER01")
    await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER02")
    await stack.slack.wait_for(lambda ms: any(m.channel == "U0ASKER01" for m in ms), timeout=5)
    # A retry loop would keep the delivery owed (and its job armed); stop() ends any attempt in flight.
    await settled(engine, f"watch:{result.watch.id}")
    await engine.stop()
    (dm,) = [m for m in stack.slack.messages if m.channel == "U0ASKER01"]
    assert f"<#{gone}>" in dm.text
    assert TASK_ID in dm.text
    posts_to_gone = [c for c in stack.slack.calls_to("chat.postMessage") if c.params.get("channel") == gone]
    assert len(posts_to_gone) == 1
    assert [m.channel for m in stack.alerts()] == [CHANNELS[0]]
    assert await engine.deliveries.pending_deliveries() == []
    subscribers = await engine.storage.active_subscribers(result.watch.id)
    assert subscribers == []


async def test_slack_rate_limit_is_retried_and_delivered_once(stack: Stack) -> None:
    stack.sim.add_task(sim_task(duration=0.3))
    engine = await stack.followups()
    await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
    # Retry-After: 0 keeps the test fast; slack_sdk still waits (0-1 s of jitter) and retries.
    stack.slack.fail_next("chat.postMessage", error="ratelimited", status=429, retry_after=0)
    await eventually(lambda: len(stack.slack.calls_to("chat.postMessage")) >= 1)
    # Stopping now, while the alert waits out the rate limit, still lets it go out.
    await engine.stop()
    assert len(stack.alerts()) == 1
    assert len(stack.slack.calls_to("chat.postMessage")) == 2  # the 429, then the retry
    assert await engine.deliveries.pending_deliveries() == []


async def test_other_slack_errors_keep_the_delivery_and_retry(stack: Stack) -> None:
    stack.sim.add_task(sim_task(duration=0.3))
    engine = await stack.followups()
    result = await engine.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01")
    stack.slack.fail_next("chat.postMessage", error="internal_error")
    stack.slack.fail_next("chat.postMessage", error="fatal_error")
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 1, timeout=8)
    await settled(engine, f"watch:{result.watch.id}")
    await engine.stop()
    assert len(stack.alerts()) == 1
    # Each retry first looked for an earlier post (found none), then posted.
    assert len(stack.slack.calls_to("conversations.history")) == 2


# --- exactly once across restarts (SQLite and PostgreSQL) --------------------------------------


async def test_restart_resumes_and_delivers_exactly_once(any_db_stack: Stack) -> None:
    stack = any_db_stack
    # Running until the test finishes it below: the first process cannot see it end (and queue
    # the alerts the second would then only resume); the second learns of the end by polling.
    stack.sim.add_task(sim_task(duration=3600))
    first = await stack.followups()
    card = await stack.post_card(CHANNELS[0])
    result = await first.watch(
        team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01", message_ts=card
    )
    await first.watch(team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[1], user_id="U0ASKER02")
    await eventually(lambda: first.polls >= 1)
    await first.stop()
    assert stack.alerts() == []

    stack.sim.add_task(sim_task(duration=0.5, started_ago=1.0))  # the task ends while nobody polls
    second = await stack.followups()
    await stack.slack.wait_for(lambda _: len(stack.alerts()) >= 2, timeout=8)
    await settled(second, f"watch:{result.watch.id}")
    await second.stop()
    assert sorted(m.channel or "" for m in stack.alerts()) == [CHANNELS[0], CHANNELS[1]]
    assert second.polls >= 1
    # The card kept by the first process is the one the second keeps up to date.
    await stack.slack.wait_for(lambda _: stack.final_card(card), timeout=3)


async def sending_delivery(stack: Stack, storage: FollowUpStore, *, card: str | None) -> DeliveryRecord:
    """A finished watch whose one delivery a dead process had marked ``sending``."""
    result = await storage.watch(
        team_id=TEAM,
        task_id=TASK_ID,
        channel_id=CHANNELS[0],
        user_id="U0ASKER01",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        message_ts=card,
    )
    task = Task.model_validate(sim_task(duration=0.0, started_ago=5).body_at(int(time.time() * 1000)))
    (delivery,) = await storage.close_watch(
        result.watch.id, status="finished", snapshot=TaskSnapshot(task=task)
    )
    claimed = await DeliveryStore(storage.database).mark_sending(delivery.id)
    assert claimed is not None and claimed.attempts == 1
    return claimed


async def post_as(stack: Stack, delivery: DeliveryRecord, *, thread_ts: str | None = None) -> str:
    """What the dead process had posted before it could record it."""
    response = await stack.slack_client.chat_postMessage(
        channel=delivery.channel_id,
        text=f"finished {delivery.task_id}",
        thread_ts=thread_ts,
        metadata={"event_type": DELIVERY_EVENT, "event_payload": {"key": delivery.key}},
    )
    return str(response["ts"])


async def sent_record(engine: FollowUps, storage: FollowUpStore, delivery: DeliveryRecord) -> DeliveryRecord:
    """The delivery once ``engine`` has recorded it sent and stopped.

    An attempt posts before it records the post; stop() lets any attempt in flight finish, so a
    duplicate would be in the stand-in by then.
    """

    async def sent() -> bool:
        record = await DeliveryStore(storage.database).get_delivery(delivery.id)
        return record is not None and record.status == "sent"

    await eventually(sent)
    await engine.stop()
    record = await DeliveryStore(storage.database).get_delivery(delivery.id)
    assert record is not None
    return record


@pytest.mark.parametrize("where", ["channel", "thread", "nowhere"])
async def test_resumed_sending_delivery_is_not_posted_twice(any_db_stack: Stack, where: str) -> None:
    """A process died after posting but before mark_sent: the next one finds the post by its key."""
    stack = any_db_stack
    storage = await stack.storage()
    card = await stack.post_card(CHANNELS[0])
    delivery = await sending_delivery(stack, storage, card=card if where == "thread" else None)
    posted_ts = None
    if where != "nowhere":
        posted_ts = await post_as(stack, delivery, thread_ts=card if where == "thread" else None)

    engine = await stack.followups(alert_mode="thread" if where == "thread" else "thread_and_channel")
    record = await sent_record(engine, storage, delivery)
    assert len(stack.alerts()) == 1
    if posted_ts is not None:
        assert record.slack_ts == posted_ts
        assert engine.delivered == 1
    else:
        assert record.slack_ts == stack.alerts()[0].ts
    if where == "thread":
        assert stack.slack.calls_to("conversations.replies")


async def test_failed_lookup_waits_rather_than_posting_blind(stack: Stack) -> None:
    storage = await stack.storage()
    delivery = await sending_delivery(stack, storage, card=None)
    posted_ts = await post_as(stack, delivery)
    stack.slack.fail_next("conversations.history", error="internal_error")
    engine = await stack.followups()
    record = await sent_record(engine, storage, delivery)
    assert record.slack_ts == posted_ts
    assert len(stack.alerts()) == 1
    assert len(stack.slack.calls_to("conversations.history")) == 2


async def test_lookup_without_history_scope_posts_anyway(stack: Stack) -> None:
    storage = await stack.storage()
    delivery = await sending_delivery(stack, storage, card=None)
    stack.slack.fail_next("conversations.history", error="missing_scope")
    engine = await stack.followups()
    record = await sent_record(engine, storage, delivery)
    (alert,) = stack.alerts()
    assert record.slack_ts == alert.ts


# --- project feed ------------------------------------------------------------------------------


async def test_feed_announces_only_tasks_finishing_after_subscription(stack: Stack) -> None:
    r1, r2 = "knowledge-intent-question-create", "knowledge-base-document-import"
    old_done = "0d000000000000000000000000000001"
    old_static = "0d000000000000000000000000000002"
    soon_r1 = "50000000000000000000000000000a01"
    soon_r2 = "50000000000000000000000000000a02"
    running = "50000000000000000000000000000a03"
    stack.sim.add_task(sim_task(old_done, duration=1.0, started_ago=10, resource=r1))
    # Finished by its counts, with no end time: never seen running after the subscription.
    stack.sim.add_task(
        SimTask.static(
            {
                "task_id": old_static,
                "task_name": "static",
                "resource": r1,
                "begin_time": int(time.time() * 1000) - 5000,
                "total_count": 3,
                "success_count": 3,
                "failure_count": 0,
            }
        )
    )
    stack.sim.add_task(sim_task(running, duration=600, resource=r1))
    engine = await stack.followups()
    feed_all, created = await engine.subscribe(
        team_id=TEAM, channel_id=CHANNELS[0], user_id="U0ASKER01", resources=[]
    )
    assert created and feed_all.resources == ()
    only_r1, _ = await engine.subscribe(
        team_id=TEAM, channel_id=CHANNELS[1], user_id="U0ASKER02", resources=[r1, " "]
    )
    assert only_r1.resources == (r1,)
    # Both began before the subscriptions and finish after them.
    stack.sim.add_task(sim_task(soon_r1, duration=1.0, started_ago=0.6, resource=r1))
    stack.sim.add_task(sim_task(soon_r2, duration=1.0, started_ago=0.5, resource=r2))

    await stack.slack.wait_for(
        lambda _: len(stack.alerts(soon_r1)) >= 2 and len(stack.alerts(soon_r2)) >= 1, timeout=6
    )
    # A whole feed poll after those alerts (each poll is one list call here, and the next starts
    # once it has ended), and whatever it recorded posted.
    feed_polls = engine.feed_polls
    await eventually(lambda: engine.feed_polls >= feed_polls + 2, what="a whole feed poll more")
    await settled(engine)
    assert sorted(m.channel or "" for m in stack.alerts(soon_r1)) == [CHANNELS[0], CHANNELS[1]]
    assert [m.channel for m in stack.alerts(soon_r2)] == [CHANNELS[0]]
    for task_id in (old_done, old_static, running):
        assert stack.alerts(task_id) == []
    for alert in stack.alerts(soon_r1):
        assert "thread_ts" not in alert.payload
        assert "<@" not in alert.text
    # One list call per poll serves both feeds (a poll counted here may still be on its way).
    assert engine.feed_polls - 1 <= stack.sim.requests[("list", "")] <= engine.feed_polls
    assert engine.polls == 0

    watches, feed = await engine.watching(team_id=TEAM, channel_id=CHANNELS[1])
    assert watches == [] and feed is not None and feed.resources == (r1,)
    assert await engine.unsubscribe(team_id=TEAM, channel_id=CHANNELS[0])
    assert await engine.unsubscribe(team_id=TEAM, channel_id=CHANNELS[1])
    job = f"feed:{TEAM}"
    await eventually(lambda: not engine.scheduler.busy(job), what="the feed job gone")
    polls = engine.feed_polls
    # Its next run, had it been armed, was due before this probe's run.
    await scheduler_passed(engine.scheduler, longest_wait(engine))
    assert not engine.scheduler.busy(job)
    assert engine.feed_polls == polls  # no feed left, no more list calls


async def test_feed_survives_a_restart_without_replaying(stack: Stack) -> None:
    task_a = "50000000000000000000000000000b01"
    task_b = "50000000000000000000000000000b02"
    first = await stack.followups()
    await first.subscribe(team_id=TEAM, channel_id=CHANNELS[0], user_id="U0ASKER01", resources=())
    # The feed tells of tasks that finish after it began: the task starts once it has polled, so
    # however slow the machine, it ends inside the feed's window.
    await eventually(lambda: first.feed_polls >= 1, what="the feed's first poll")
    stack.sim.add_task(sim_task(task_a, duration=0.3))
    await stack.slack.wait_for(lambda _: len(stack.alerts(task_a)) >= 1, timeout=20)
    await first.stop()
    stack.sim.add_task(sim_task(task_b, duration=0.5))
    second = await stack.followups()
    await stack.slack.wait_for(lambda _: len(stack.alerts(task_b)) >= 1, timeout=20)
    # A whole feed poll more (a replay of task_a would be recorded by any of them), all it
    # recorded posted, and the work in flight done.
    feed_polls = second.feed_polls
    await eventually(lambda: second.feed_polls >= feed_polls + 2, what="a whole feed poll more")
    await settled(second)
    await second.stop()
    assert len(stack.alerts(task_a)) == 1
    assert len(stack.alerts(task_b)) == 1


async def test_backlog_holds_polls_until_recorded_results_drain() -> None:
    from bot.followups.shared import Backlog as _Backlog

    backlog = _Backlog(limit=2)
    with backlog.item(), backlog.item():
        await asyncio.wait_for(backlog.wait_until_short(), 0.1)  # at the limit: polls go on
        with backlog.item():
            arrived = asyncio.Event()

            async def poll() -> None:
                arrived.set()
                await backlog.wait_until_short()

            waiter = asyncio.create_task(poll())
            # Woken only after the waiter's step: it has passed the gate or blocks on it.
            await arrived.wait()
            assert not waiter.done()  # over the limit: polls wait
        await asyncio.wait_for(waiter, 0.1)  # back at the limit: released
    assert backlog.count == 0


async def test_a_restart_keeps_cards_current_without_reading_subscribers_again(stack: Stack) -> None:
    """At start every watch's subscribers were just read: the first card sync waits a period."""
    stack.sim.add_task(sim_task(duration=30.0))
    first = await stack.followups(card_update_seconds=1.0)
    card = await stack.post_card(CHANNELS[0])
    await first.watch(
        team_id=TEAM, task_id=TASK_ID, channel_id=CHANNELS[0], user_id="U0ASKER01", message_ts=card
    )
    await first.stop()
    drawn_before = len(stack.updates(card))

    second = await stack.followups(card_update_seconds=1.0, start=False)
    reads: list[int] = []
    read_subscribers = second.storage.active_subscribers

    async def counted(watch_id: int) -> Any:
        reads.append(watch_id)
        return await read_subscribers(watch_id)

    second.storage.active_subscribers = counted  # type: ignore[method-assign]
    await second.start()
    # The card the table names is redrawn by the new process, from what start() read.
    await stack.slack.wait_for(lambda _: len(stack.updates(card)) > drawn_before, timeout=5)
    await eventually(lambda: second.polls >= 10)
    assert reads == []
