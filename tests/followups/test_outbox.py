"""The exactly-once outbox against a fake ``Poster``: each branch of the protocol on its own.

The Slack stand-in cannot fail a look-up on demand or lose a post after it landed; a fake
poster can, so these unit tests pin what the outbox does on each ``Poster`` outcome. The
end-to-end guarantee over real processes is in ``tests/test_crash_recovery.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.config import Settings
from bot.db.deliveries import DeliveryRecord, DeliveryStore, TaskSnapshot
from bot.db.followups import FollowUpStore
from bot.followups import FollowUps
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.models import Task
from bot.slack.alerts import Message
from bot.slack.poster import CannotPost, LookupFailed, LookupImpossible, Post, PostFailed
from tests.databases import open_database
from tests.support.waiting import eventually

TEAM, CHANNEL, USER, TASK = "T0OUTBOX01", "C0OUTBOX01", "U0OUTBOX01", "f" * 32
SNAPSHOT = TaskSnapshot(
    task=Task(task_id=TASK, task_name="导入", task_status="SUCCEED", total_count=3, success_count=3)
)


@dataclass
class FakePoster:
    found: str | None = None
    find_error: Exception | None = None
    post_error: Exception | None = None
    posts: list[tuple[str, str]] = field(default_factory=list)
    finds: int = 0
    told: list[tuple[str, str]] = field(default_factory=list)

    async def post(self, post: Post) -> str | None:
        if self.post_error is not None:
            raise self.post_error
        self.posts.append((post.channel_id, post.key))
        return f"1700000000.{len(self.posts):06d}"

    async def find(
        self, team_id: str, channel_id: str, key: str, *, thread_ts: str | None, oldest: float
    ) -> str | None:
        self.finds += 1
        if self.find_error is not None:
            raise self.find_error
        return self.found

    async def update(self, team_id: str, channel_id: str, ts: str, message: Message) -> None:
        return None

    async def tell(self, team_id: str, user_id: str, text: str) -> None:
        self.told.append((user_id, text))


async def _no_client(team_id: str) -> MetaStudioClient:
    raise AssertionError("the outbox never calls MetaStudio")


@pytest.fixture
async def store(sqlite_url: str) -> AsyncIterator[FollowUpStore]:
    async with open_database(sqlite_url) as database:
        yield FollowUpStore(database)


def _followups(store: FollowUpStore, poster: FakePoster) -> FollowUps:
    settings = Settings(database_url="sqlite+aiosqlite://")
    followups = FollowUps(settings, store, metastudio_for=_no_client, poster=poster)
    followups.outbox.active = True
    return followups


async def _owed(store: FollowUpStore, *, attempted: bool) -> DeliveryRecord:
    watched = await store.watch(
        team_id=TEAM,
        task_id=TASK,
        channel_id=CHANNEL,
        user_id=USER,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    (delivery,) = await store.close_watch(watched.watch.id, status="finished", snapshot=SNAPSHOT)
    if attempted:
        # A previous attempt claimed it and died: it may or may not have reached Slack.
        assert await DeliveryStore(store.database).mark_sending(delivery.id) is not None
    return delivery


async def _status(store: FollowUpStore, delivery: DeliveryRecord) -> tuple[str, str | None]:
    record = await DeliveryStore(store.database).get_delivery(delivery.id)
    assert record is not None
    return record.status, record.slack_ts


async def test_a_first_attempt_posts_without_looking(store: FollowUpStore) -> None:
    poster = FakePoster(found="never-used")
    delivery = await _owed(store, attempted=False)
    assert await _followups(store, poster).outbox.deliver_once(delivery.id) is False
    assert poster.finds == 0 and poster.posts == [(CHANNEL, delivery.key)]
    assert await _status(store, delivery) == ("sent", "1700000000.000001")


async def test_a_resumed_attempt_that_finds_its_post_does_not_post_again(store: FollowUpStore) -> None:
    poster = FakePoster(found="1699999999.000001")
    delivery = await _owed(store, attempted=True)
    assert await _followups(store, poster).outbox.deliver_once(delivery.id) is False
    assert poster.posts == []
    assert await _status(store, delivery) == ("sent", "1699999999.000001")


async def test_a_failed_look_up_waits_rather_than_posting_blind(store: FollowUpStore) -> None:
    poster = FakePoster(find_error=LookupFailed("ratelimited"))
    delivery = await _owed(store, attempted=True)
    assert await _followups(store, poster).outbox.deliver_once(delivery.id) is True
    assert poster.posts == []
    assert (await _status(store, delivery))[0] == "sending"


async def test_an_impossible_look_up_posts_anyway(store: FollowUpStore) -> None:
    poster = FakePoster(find_error=LookupImpossible("missing_scope"))
    delivery = await _owed(store, attempted=True)
    assert await _followups(store, poster).outbox.deliver_once(delivery.id) is False
    assert poster.posts == [(CHANNEL, delivery.key)]
    assert (await _status(store, delivery))[0] == "sent"


async def test_a_failed_post_is_queued_again_and_looked_up_next_time(store: FollowUpStore) -> None:
    poster = FakePoster(post_error=PostFailed("internal_error"))
    delivery = await _owed(store, attempted=False)
    assert await _followups(store, poster).outbox.deliver_once(delivery.id) is True
    record = await DeliveryStore(store.database).get_delivery(delivery.id)
    assert record is not None and (record.status, record.attempts) == ("pending", 1)
    assert record.error == "slack: internal_error"


async def test_a_channel_the_bot_cannot_post_in_closes_the_follow_up_and_tells_the_asker(
    store: FollowUpStore,
) -> None:
    poster = FakePoster(post_error=CannotPost("not_in_channel"))
    delivery = await _owed(store, attempted=False)
    assert await _followups(store, poster).outbox.deliver_once(delivery.id) is False
    assert (await _status(store, delivery))[0] == "failed"
    assert [user for user, _ in poster.told] == [USER]
    assert CHANNEL in poster.told[0][1]


async def test_one_attempt_reads_its_delivery_row_once(store: FollowUpStore) -> None:
    """Started with its record, an attempt takes the send slot of the record's workspace and reads
    the row once, for its status and attempts; the claim (``mark_sending``) is an UPDATE."""
    poster = FakePoster()
    delivery = await _owed(store, attempted=False)
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM deliveries" in statement:
            reads.append(statement)

    engine = store.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        _followups(store, poster).outbox.start(delivery)
        # Every read of the attempt comes before its post; after it, only the UPDATE of mark_sent.
        await eventually(lambda: poster.posts, what="the alert posted")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert poster.posts == [(CHANNEL, delivery.key)]
    assert len(reads) == 1, reads

    async def sent() -> bool:
        return (await _status(store, delivery))[0] == "sent"

    await eventually(sent, what="the delivery recorded as sent")
