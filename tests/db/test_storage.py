"""bot.db's follow-up stores (watches, feeds, deliveries) against real databases: SQLite file and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.db.deliveries import DeliveryRecord, DeliveryStore, TaskSnapshot, read_payload
from bot.db.feeds import FeedStore
from bot.db.followups import (
    ActiveWatch,
    FollowUpStore,
    SubscriberRecord,
    WatchRecord,
    WatchResult,
    utcnow,
)
from bot.metastudio.models import Task
from tests.databases import open_database

TEAM = "T0001"
OTHER_TEAM = "T0002"
TASK = "0123456789abcdef0123456789abcdef"
TASK_2 = "fedcba9876543210fedcba9876543210"
SNAPSHOT = TaskSnapshot(
    task=Task.model_validate(
        {"task_id": TASK, "task_status": "SUCCEED", "output": {"url": "https://example.invalid/a.zip"}}
    ),
    request_id="req-0001",
)


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[FollowUpStore]:
    async with open_database(database_url) as database:
        yield FollowUpStore(database)


def _expiry() -> datetime:
    return utcnow() + timedelta(hours=24)


async def _watch(
    storage: FollowUpStore, channel: str, *, task: str = TASK, team: str = TEAM, user: str = "U1"
) -> WatchResult:
    return await storage.watch(
        team_id=team, task_id=task, channel_id=channel, user_id=user, expires_at=_expiry()
    )


async def test_watch_is_idempotent_per_channel_and_shared_between_channels(storage: FollowUpStore) -> None:
    first = await _watch(storage, "C1", user="U1")
    again = await _watch(storage, "C1", user="U9")
    other = await _watch(storage, "C2", user="U2")

    assert first.created and not again.created and other.created
    assert isinstance(first.watch, WatchRecord) and isinstance(first.subscriber, SubscriberRecord)
    assert again.subscriber == first.subscriber  # same row, original user kept
    assert other.watch.id == first.watch.id
    assert other.subscriber.id != first.subscriber.id
    assert first.watch.status == "active" and first.subscriber.status == "active"
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.watch.status = "finished"  # type: ignore[misc]
    assert await storage.counts() == {"watches": 1, "subscribers": 2, "feeds": 0, "deliveries": 0}


async def test_concurrent_watch_calls_share_one_watch(storage: FollowUpStore) -> None:
    channels = ["C1", "C2", "C3", "C1", "C2", "C1"]
    results = await asyncio.gather(*(_watch(storage, channel) for channel in channels))

    assert len({result.watch.id for result in results}) == 1
    assert sum(result.created for result in results) == 3
    assert {result.subscriber.channel_id for result in results if result.created} == {"C1", "C2", "C3"}
    assert await storage.counts() == {"watches": 1, "subscribers": 3, "feeds": 0, "deliveries": 0}


async def test_unwatch_cancels_subscriber_then_watch_with_the_last_one(storage: FollowUpStore) -> None:
    first = await _watch(storage, "C1")
    await _watch(storage, "C2")

    assert await storage.unwatch(team_id=TEAM, task_id=TASK, channel_id="C1")
    assert not await storage.unwatch(team_id=TEAM, task_id=TASK, channel_id="C1")
    assert not await storage.unwatch(team_id=TEAM, task_id=TASK_2, channel_id="C1")
    assert not await storage.unwatch(team_id=OTHER_TEAM, task_id=TASK, channel_id="C2")
    [active] = await storage.active_watches()
    assert [s.channel_id for s in active.subscribers] == ["C2"]

    assert await storage.unwatch(team_id=TEAM, task_id=TASK, channel_id="C2")
    assert await storage.active_watches() == []
    closed = await storage.get_watch(first.watch.id)
    assert closed is not None and closed.status == "cancelled" and closed.closed_at is not None

    # Watching again after a cancel starts a fresh watch (the partial index only covers active rows).
    fresh = await _watch(storage, "C1")
    assert fresh.created and fresh.watch.id != first.watch.id


async def test_close_watch_queues_one_delivery_per_active_subscriber_once(storage: FollowUpStore) -> None:
    one = await _watch(storage, "C1", user="U1")
    await _watch(storage, "C2", user="U2")
    await _watch(storage, "C3", user="U3")
    await storage.set_card_ts(one.subscriber.id, "1700000000.000100")
    await storage.unwatch(team_id=TEAM, task_id=TASK, channel_id="C2")

    deliveries = await storage.close_watch(one.watch.id, status="finished", snapshot=SNAPSHOT)

    assert sorted((d.channel_id, d.user_id, d.thread_ts) for d in deliveries) == [
        ("C1", "U1", "1700000000.000100"),
        ("C3", "U3", None),
    ]
    for delivery in deliveries:
        assert isinstance(delivery, DeliveryRecord)
        assert (delivery.kind, delivery.status, delivery.attempts) == ("finished", "pending", 0)
        assert (delivery.task_id, delivery.watch_id, delivery.team_id) == (TASK, one.watch.id, TEAM)
        assert delivery.snapshot == SNAPSHOT and delivery.report is None
        # A fresh uuid4 in hex: 32 lowercase hex digits, nothing else (int(key, 16) took '-', '_', spaces).
        assert re.fullmatch(r"[0-9a-f]{32}", delivery.key), delivery.key
    assert len({d.key for d in deliveries}) == 2

    watch = await storage.get_watch(one.watch.id)
    assert watch is not None and watch.status == "finished" and watch.snapshot == SNAPSHOT
    assert watch.closed_at is not None
    assert await storage.active_subscribers(one.watch.id) == []
    assert await storage.active_watches() == []
    assert await storage.channel_watches(team_id=TEAM, channel_id="C1") == []

    assert await storage.close_watch(one.watch.id, status="finished", snapshot=SNAPSHOT) == []
    assert await storage.close_watch(one.watch.id, status="expired", snapshot=None) == []
    assert await storage.close_watch(999_999, status="not_found", snapshot=None) == []
    assert (await storage.counts())["deliveries"] == 2
    assert [d.id for d in await DeliveryStore(storage.database).pending_deliveries()] == [
        d.id for d in deliveries
    ]


async def test_concurrent_close_watch_yields_exactly_one_set_of_deliveries(storage: FollowUpStore) -> None:
    result = await _watch(storage, "C1")
    await _watch(storage, "C2")
    await _watch(storage, "C3")

    outcomes = await asyncio.gather(
        *(storage.close_watch(result.watch.id, status="finished", snapshot=SNAPSHOT) for _ in range(3)),
        *(storage.close_watch(result.watch.id, status="expired", snapshot=None) for _ in range(2)),
    )

    winners = [outcome for outcome in outcomes if outcome]
    assert len(winners) == 1 and len(winners[0]) == 3
    watch = await storage.get_watch(result.watch.id)
    assert watch is not None and watch.status == winners[0][0].kind
    assert (await storage.counts())["deliveries"] == 3


async def test_expired_and_not_found_deliveries_carry_their_kind(storage: FollowUpStore) -> None:
    expired = await _watch(storage, "C1", task=TASK)
    missing = await _watch(storage, "C1", task=TASK_2)

    [e] = await storage.close_watch(expired.watch.id, status="expired", snapshot=None)
    [m] = await storage.close_watch(missing.watch.id, status="not_found", snapshot=None)

    assert (e.kind, e.snapshot, e.task_id) == ("expired", None, TASK)
    assert (m.kind, m.snapshot, m.task_id) == ("not_found", None, TASK_2)
    with pytest.raises(ValueError):
        await storage.close_watch(expired.watch.id, status="cancelled", snapshot=None)  # type: ignore[arg-type]


async def test_close_subscriber_closes_the_watch_with_its_last_subscriber(storage: FollowUpStore) -> None:
    one = await _watch(storage, "C1")
    two = await _watch(storage, "C2")

    await storage.close_subscriber(one.subscriber.id, "channel_not_found")
    [remaining] = await storage.active_subscribers(one.watch.id)
    assert remaining.id == two.subscriber.id
    assert [w.id for w in await storage.active_watches()] == [one.watch.id]

    await storage.close_subscriber(two.subscriber.id, "is_archived")
    await storage.close_subscriber(two.subscriber.id, "is_archived")  # harmless repeat
    await storage.close_subscriber(123_456, "gone")
    watch = await storage.get_watch(one.watch.id)
    assert watch is not None and watch.status == "cancelled"
    assert await storage.close_watch(one.watch.id, status="finished", snapshot=SNAPSHOT) == []


async def test_channel_watches_lists_the_channels_active_subscriptions(storage: FollowUpStore) -> None:
    first = await _watch(storage, "C1", task=TASK, user="U1")
    await storage.set_card_ts(first.subscriber.id, "1700000000.000200")
    second = await _watch(storage, "C1", task=TASK_2, user="U2")
    await _watch(storage, "C2", task=TASK)
    await _watch(storage, "C1", task=TASK, team=OTHER_TEAM)

    listed = await storage.channel_watches(team_id=TEAM, channel_id="C1")

    assert [(w.task_id, w.user_id, w.subscriber_id, w.watch_id) for w in listed] == [
        (TASK, "U1", first.subscriber.id, first.watch.id),
        (TASK_2, "U2", second.subscriber.id, second.watch.id),
    ]
    assert listed[0].message_ts == "1700000000.000200"
    assert listed[0].expires_at == first.watch.expires_at
    assert listed[0].created_at.tzinfo is not None


async def test_active_watches_survive_a_restart(database_url: str) -> None:
    async with open_database(database_url) as database:
        before = FollowUpStore(database)
        kept = await _watch(before, "C1", user="U1")
        await _watch(before, "C2", user="U2")
        done = await _watch(before, "C1", task=TASK_2)
        [delivery] = await before.close_watch(done.watch.id, status="finished", snapshot=SNAPSHOT)

    # A second open runs create_all again: idempotent on an existing schema.
    async with open_database(database_url) as database:
        after = FollowUpStore(database)
        [active] = await after.active_watches()
        assert isinstance(active, ActiveWatch) and isinstance(active, WatchRecord)
        assert (active.id, active.task_id, active.status) == (kept.watch.id, TASK, "active")
        assert active.expires_at == kept.watch.expires_at
        assert [(s.channel_id, s.user_id) for s in active.subscribers] == [("C1", "U1"), ("C2", "U2")]
        assert [d.key for d in await DeliveryStore(after.database).pending_deliveries()] == [delivery.key]
        again = await _watch(after, "C1")
        assert not again.created and again.watch.id == kept.watch.id


async def test_datetimes_round_trip_timezone_aware(storage: FollowUpStore) -> None:
    plus_eight = timezone(timedelta(hours=8))
    expires = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=plus_eight)
    before = utcnow()

    result = await storage.watch(
        team_id=TEAM, task_id=TASK, channel_id="C1", user_id="U1", expires_at=expires
    )
    [active] = await storage.active_watches()

    for stamp in (active.expires_at, active.created_at, active.subscribers[0].created_at):
        assert stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0)
    assert active.expires_at == expires == result.watch.expires_at
    assert active.expires_at.hour == 23 and active.expires_at.day == 5  # stored as the UTC instant
    assert before <= active.created_at <= utcnow()
    with pytest.raises(ValueError, match="timezone-aware"):
        await storage.watch(
            team_id=TEAM, task_id=TASK_2, channel_id="C1", user_id="U1", expires_at=datetime(2031, 1, 1)
        )


async def test_feed_subscription_and_delivery_dedupe(storage: FollowUpStore) -> None:
    feeds = FeedStore(storage.database)
    since = datetime(2030, 1, 1, tzinfo=UTC)
    feed, created = await feeds.subscribe_feed(
        team_id=TEAM, channel_id="C1", user_id="U1", resources=["video", "video", "audio"], since=since
    )
    assert created and feed.resources == ("video", "audio") and feed.since == since

    same, created_again = await feeds.subscribe_feed(
        team_id=TEAM, channel_id="C1", user_id="U2", resources=["model"], since=utcnow()
    )
    assert not created_again and same.id == feed.id
    assert same.resources == ("model",) and same.since == since  # filter replaced, "since" kept
    assert await feeds.channel_feed(team_id=TEAM, channel_id="C1") == same
    assert await feeds.channel_feed(team_id=TEAM, channel_id="C2") is None

    delivery = await feeds.record_feed_delivery(feed, task_id=TASK, snapshot=SNAPSHOT)
    assert delivery is not None
    assert (delivery.kind, delivery.feed_id, delivery.channel_id, delivery.user_id) == (
        "feed",
        feed.id,
        "C1",
        None,
    )
    assert (delivery.snapshot, delivery.thread_ts, delivery.status) == (SNAPSHOT, None, "pending")
    assert await feeds.record_feed_delivery(feed, task_id=TASK, snapshot=SNAPSHOT) is None

    racing = await asyncio.gather(
        *(feeds.record_feed_delivery(feed, task_id=TASK_2, snapshot=SNAPSHOT) for _ in range(5))
    )
    assert sum(result is not None for result in racing) == 1
    assert (await storage.counts())["deliveries"] == 2

    assert await feeds.unsubscribe_feed(team_id=TEAM, channel_id="C1")
    assert not await feeds.unsubscribe_feed(team_id=TEAM, channel_id="C1")
    assert await feeds.active_feeds() == []
    assert await feeds.record_feed_delivery(feed, task_id="a" * 32, snapshot=SNAPSHOT) is None

    renewed, created = await feeds.subscribe_feed(
        team_id=TEAM, channel_id="C1", user_id="U1", resources=[], since=utcnow()
    )
    assert created and renewed.id != feed.id and renewed.resources == ()
    assert [f.id for f in await feeds.active_feeds()] == [renewed.id]
    # A new feed is a new subscription: the same task may be announced to it.
    assert await feeds.record_feed_delivery(renewed, task_id=TASK, snapshot=SNAPSHOT) is not None


async def test_delivery_lifecycle(storage: FollowUpStore) -> None:
    deliveries = DeliveryStore(storage.database)
    first = await _watch(storage, "C1", task=TASK)
    second = await _watch(storage, "C2", task=TASK_2)
    [older] = await storage.close_watch(first.watch.id, status="finished", snapshot=SNAPSHOT)
    [newer] = await storage.close_watch(second.watch.id, status="expired", snapshot=None)
    assert [d.id for d in await deliveries.pending_deliveries()] == [older.id, newer.id]

    sending = await deliveries.mark_sending(older.id)
    assert sending is not None and sending.status == "sending" and sending.attempts == 1
    assert sending.attempt_at is not None and sending.attempt_at.tzinfo is not None
    # A crash after mark_sending leaves it owed: it is still listed and can be attempted again.
    assert [d.id for d in await deliveries.pending_deliveries()] == [older.id, newer.id]
    retried = await deliveries.mark_sending(older.id)
    assert retried is not None and retried.attempts == 2

    await deliveries.mark_sent(older.id, "1700000000.000300")
    sent = await deliveries.get_delivery(older.id)
    assert sent is not None and sent.status == "sent" and sent.slack_ts == "1700000000.000300"
    assert sent.sent_at is not None and sent.sent_at >= retried.attempt_at  # type: ignore[operator]
    assert await deliveries.mark_sending(older.id) is None
    assert [d.id for d in await deliveries.pending_deliveries()] == [newer.id]

    await deliveries.mark_failed(newer.id, "ratelimited token=xoxb-1234-5678-abcdef", retry=True)
    requeued = await deliveries.get_delivery(newer.id)
    assert requeued is not None and requeued.status == "pending" and requeued.error is not None
    assert "xoxb-" not in requeued.error and "ratelimited" in requeued.error

    await deliveries.mark_failed(newer.id, "channel_not_found " + "x" * 2000)
    failed = await deliveries.get_delivery(newer.id)
    assert failed is not None and failed.status == "failed" and len(failed.error or "") == 500
    assert await deliveries.mark_sending(newer.id) is None
    assert await deliveries.pending_deliveries() == []
    assert await deliveries.mark_sending(999_999) is None
    await deliveries.mark_failed(older.id, "late error")  # never downgrades a sent delivery
    assert (await deliveries.get_delivery(older.id)).status == "sent"  # type: ignore[union-attr]


async def test_delete_team_removes_only_that_workspace(storage: FollowUpStore) -> None:
    feeds = FeedStore(storage.database)
    for team in (TEAM, OTHER_TEAM):
        closed = await _watch(storage, "C1", team=team, task=TASK)
        await _watch(storage, "C2", team=team, task=TASK)
        await _watch(storage, "C1", team=team, task=TASK_2)
        await storage.close_watch(closed.watch.id, status="finished", snapshot=SNAPSHOT)
        feed, _ = await feeds.subscribe_feed(
            team_id=team, channel_id="C9", user_id="U1", resources=["video"], since=utcnow()
        )
        await feeds.record_feed_delivery(feed, task_id=TASK, snapshot=SNAPSHOT)
    assert await storage.counts() == {"watches": 4, "subscribers": 6, "feeds": 2, "deliveries": 6}

    await storage.delete_team(TEAM)

    assert await storage.counts() == {"watches": 2, "subscribers": 3, "feeds": 1, "deliveries": 3}
    assert {w.team_id for w in await storage.active_watches()} == {OTHER_TEAM}
    assert {d.team_id for d in await DeliveryStore(storage.database).pending_deliveries()} == {OTHER_TEAM}
    assert [f.team_id for f in await feeds.active_feeds()] == [OTHER_TEAM]
    assert await storage.channel_watches(team_id=TEAM, channel_id="C1") == []
    assert len(await storage.channel_watches(team_id=OTHER_TEAM, channel_id="C1")) == 1
    await storage.delete_team(TEAM)  # nothing left: still fine
    assert (await storage.counts())["watches"] == 2


async def test_expiry_is_per_subscriber_when_workflow_steps_wait_longer(storage: FollowUpStore) -> None:
    """Channels expire with the watch; a step at its own time; the watch lives while one waits."""
    start = datetime.now(UTC)
    hour = timedelta(hours=1)
    channel = await storage.watch(
        team_id="T1", task_id="c" * 32, channel_id="C1", user_id="U1", expires_at=start + hour
    )
    watch_id = channel.watch.id
    for execution, deadline in (("Fx1", start + 2 * hour), ("Fx2", start + 3 * hour)):
        step = await storage.watch(
            team_id="T1",
            task_id="c" * 32,
            channel_id=execution,
            user_id="U1",
            expires_at=start + hour,
            step_expires_at=deadline,
        )
        assert step.watch.id == watch_id and step.subscriber.is_step

    # Nothing is due yet: nothing queued, the watch stays.
    assert await storage.expire_subscribers(watch_id, now=start, snapshot=None) == ([], True)
    # Past the watch's time: only the channel expires; both steps wait on.
    told, active = await storage.expire_subscribers(
        watch_id, now=start + hour, snapshot=TaskSnapshot(task=Task(task_id="c" * 32))
    )
    assert active and [(d.channel_id, d.kind, d.is_step) for d in told] == [("C1", "expired", False)]
    # Asked again (a second replica, a retry): nothing is queued twice.
    assert await storage.expire_subscribers(watch_id, now=start + hour, snapshot=None) == ([], True)
    # A channel joining the watch that only steps kept alive gets its own full time.
    later = await storage.watch(
        team_id="T1", task_id="c" * 32, channel_id="C2", user_id="U2", expires_at=start + 4 * hour
    )
    assert later.watch.id == watch_id and later.watch.expires_at == start + 4 * hour
    told, active = await storage.expire_subscribers(watch_id, now=start + 2 * hour, snapshot=None)
    assert active and [(d.channel_id, d.is_step) for d in told] == [("Fx1", True)]
    # The last ones due: the watch itself closes as expired.
    told, active = await storage.expire_subscribers(watch_id, now=start + 4 * hour, snapshot=None)
    assert not active and sorted(d.channel_id for d in told) == ["C2", "Fx2"]
    watch = await storage.get_watch(watch_id)
    assert watch is not None and watch.status == "expired"
    assert await storage.expire_subscribers(watch_id, now=start + 5 * hour, snapshot=None) == ([], False)


def test_a_stored_snapshot_reads_back_typed_and_one_that_no_longer_parses_reads_as_none() -> None:
    stored = SNAPSHOT.model_dump(mode="json")
    assert stored["request_id"] == "req-0001" and stored["task"]["task_id"] == TASK
    snapshot = read_payload(TaskSnapshot, stored)
    assert snapshot == SNAPSHOT and snapshot.task.model_extra == {
        "output": {"url": "https://example.invalid/a.zip"}
    }
    assert read_payload(TaskSnapshot, None) is None
    assert read_payload(TaskSnapshot, {"no": "id"}) is None
    assert read_payload(TaskSnapshot, {"task": {"no": "id"}, "request_id": None}) is None
