"""Alembic migrations: the schema they build, adopting 0.1.0 databases, and starting at once.

The 0.1.0 schema comes from ``tests/data/schema-0.1.0`` (the DDL that release's
``create_all()`` wrote, recorded by ``record.py`` there); its rows are written with the store
classes, whose models this change leaves as they were. ``taskbot serve`` and ``taskbot
migrate`` run as real processes against real SQLite files and PostgreSQL databases.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy import Connection, insert, inspect, select, text, update
from sqlalchemy.engine import make_url

from bot.db.base import Database
from bot.db.crypto import SecretBox
from bot.db.deliveries import DeliveryRow, DeliveryStore, DigestReport, TaskSnapshot
from bot.db.departures import DepartureRow
from bot.db.feeds import FeedRow
from bot.db.followups import STEP, FollowUpStore, WatchResult, WatchRow
from bot.db.migrations import TARGET_METADATA
from bot.db.schema import (
    MigrationReport,
    SchemaError,
    SchemaTooNew,
    _config,
    code_head,
    ensure_schema,
    migrate,
    schema_status,
)
from bot.db.workspaces import WorkspaceStore
from bot.devtools import simulator as sim
from bot.devtools.demo import is_alert
from bot.devtools.slack_standin import DEMO_TEAM_ID, IssuedToken
from bot.metastudio.models import Task
from tests.support.cli import run_cli
from tests.support.forms import aksk_form
from tests.support.waiting import eventually
from tests.test_crash_recovery import SIGNING_SECRET, BotProcess, Cloud, add_tasks, cloud  # noqa: F401 - cloud is a fixture

LEGACY = Path(__file__).parent.parent / "data" / "schema-0.1.0"
LEGACY_REQUEST_ID = "taskbot_request_id"
"""Where 0009 and before kept the poll's request id: inside the stored task (0010 gives it a field)."""
HEAD = code_head()


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def load_legacy_schema(url: str) -> None:
    """The tables exactly as taskbot 0.1.0's create_all() made them (no alembic_version)."""
    if _is_sqlite(url):
        script = (LEGACY / "sqlite.sql").read_text()

        def run() -> None:
            with sqlite3.connect(str(make_url(url).database)) as db:
                db.executescript(script)

        await asyncio.to_thread(run)
        return
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute((LEGACY / "postgresql.sql").read_text())
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def legacy_database(url: str) -> AsyncIterator[Database]:
    """A database holding the 0.1.0 schema (``load_legacy_schema``), open and not yet migrated."""
    await load_legacy_schema(url)
    storage = Database(url)
    try:
        yield storage
    finally:
        await storage.dispose()


async def schema_of(url: str) -> list[tuple[Any, ...]]:
    """Every table, column, constraint and index, as the database itself describes them."""
    if _is_sqlite(url):

        def run() -> list[tuple[Any, ...]]:
            with sqlite3.connect(str(make_url(url).database)) as db:
                rows = db.execute(
                    "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name != 'alembic_version'"
                ).fetchall()
            return sorted(rows)

        return await asyncio.to_thread(run)
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        queries = [
            "SELECT 'column', table_name, column_name, data_type, character_maximum_length, is_nullable,"
            " column_default FROM information_schema.columns WHERE table_schema = 'public'",
            "SELECT 'constraint', conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace",
            "SELECT 'index', tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
            "SELECT 'sequence', sequence_name, data_type FROM information_schema.sequences"
            " WHERE sequence_schema = 'public'",
        ]
        rows = [tuple(row) for query in queries for row in await conn.fetch(query)]
    finally:
        await conn.close()
    return sorted((row for row in rows if "alembic_version" not in row[1]), key=repr)


def _diff(sync: Connection) -> list[Any]:
    context = MigrationContext.configure(sync, opts={"compare_type": True})
    return list(compare_metadata(context, list(TARGET_METADATA)))


# --- the schema migrations build ----------------------------------------------------------------


async def test_autogenerate_sees_no_difference_between_models_and_migrated_database(
    database_url: str,
) -> None:
    storage = Database(database_url)
    try:
        report = await migrate(storage.engine)
        assert report.before is None and report.after == HEAD and report.applied
        async with storage.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            # The comparison can fail: a table the models have and the database lacks shows up.
            await conn.execute(text("DROP TABLE audit_log"))
            assert {op[0] for op in await conn.run_sync(_diff)} == {"add_table", "add_index"}
    finally:
        await storage.dispose()


async def test_migrations_build_exactly_the_0_1_0_schema(database_url: str, tmp_path: Path) -> None:
    storage = Database(database_url)
    try:
        await migrate(storage.engine)
        # Revision 0001 is the 0.1.0 schema; later revisions, downgraded, must leave exactly that.
        async with storage.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0001"))
    finally:
        await storage.dispose()
    if _is_sqlite(database_url):
        legacy_url = f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}"
        await load_legacy_schema(legacy_url)
        assert await schema_of(legacy_url) == await schema_of(database_url)
        return
    # Compared against a second PostgreSQL database holding the recorded 0.1.0 DDL.
    admin = await asyncpg.connect(_asyncpg_dsn(database_url))
    legacy_name = make_url(database_url).database + "_legacy"  # type: ignore[operator]
    try:
        await admin.execute(f'CREATE DATABASE "{legacy_name}" TEMPLATE template0')
        legacy_url = make_url(database_url).set(database=legacy_name).render_as_string(hide_password=False)
        await load_legacy_schema(legacy_url)
        legacy, migrated = await schema_of(legacy_url), await schema_of(database_url)
        assert len(legacy) > 150 and legacy == migrated
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{legacy_name}" WITH (FORCE)')
        await admin.close()


async def test_every_migration_downgrades_and_upgrades_again(database_url: str) -> None:
    storage = Database(database_url)
    try:
        await migrate(storage.engine)
        async with storage.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "base"))
            assert await conn.run_sync(lambda sync: inspect(sync).get_table_names()) == ["alembic_version"]
        assert (await schema_status(storage.engine)).state == "empty"
        assert (await migrate(storage.engine)).after == HEAD
        async with storage.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await storage.dispose()


async def test_sqlite_stays_in_wal_mode_after_migrating(sqlite_url: str) -> None:
    storage = Database(sqlite_url)
    try:
        await migrate(storage.engine)
    finally:
        await storage.dispose()
    with sqlite3.connect(str(make_url(sqlite_url).database)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def watched_by_channel_and_step(
    store: FollowUpStore, task_id: str, n: int, until: datetime
) -> WatchResult:
    """``task_id`` watched by user ``U<n>`` from channel ``C<n>`` and from workflow step ``Fx<n>``,
    both until ``until``; returns the channel's subscription."""
    channel = await store.watch(
        team_id="T1", task_id=task_id, channel_id=f"C{n}", user_id=f"U{n}", expires_at=until
    )
    await store.watch(
        team_id="T1",
        task_id=task_id,
        channel_id=f"Fx{n}",
        user_id=f"U{n}",
        expires_at=until,
        step_expires_at=until,
    )
    return channel


async def test_0008_keeps_owed_alerts_and_going_back_drops_only_workflow_steps(database_url: str) -> None:
    """Owed alerts pass 0008 both ways untouched; a step owed when downgrading is dropped, since
    an older release would post it to a "channel" named like the function execution."""
    storage = Database(database_url)
    store = FollowUpStore(storage)
    later = datetime.now(UTC) + timedelta(hours=1)
    try:
        await migrate(storage.engine)
        await watched_by_channel_and_step(store, "a" * 32, 1, later)
        [finished] = await store.active_watches()
        owed = await store.close_watch(
            finished.id, status="finished", snapshot=TaskSnapshot(task=Task(task_id="a" * 32))
        )
        assert sorted(d.is_step for d in owed) == [False, True]
        running = await watched_by_channel_and_step(store, "b" * 32, 2, later)
        async with storage.engine.begin() as conn:
            # Down to the revision just before 0008 (0007, departures), so 0008 is the first
            # revision applied again; 0009 and later are re-applied after it.
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0007"))
        assert (await schema_status(storage.engine)).state == "behind"
        applied = (await migrate(storage.engine)).applied
        assert [a[:4] for a in applied] == ["0008", "0009", "0010"]
        assert applied[0].startswith("0008 (workflow steps")
        # The channel's alert is still owed, as it was; the step's is gone.
        [channel_alert] = await DeliveryStore(store.database).pending_deliveries()
        assert (channel_alert.channel_id, channel_alert.kind, channel_alert.is_step) == (
            "C1",
            "finished",
            False,
        )
        assert channel_alert.snapshot == TaskSnapshot(task=Task(task_id="a" * 32))
        [still] = await store.active_watches()
        assert still.id == running.watch.id
        assert [(s.channel_id, s.target, s.expires_at) for s in still.subscribers] == [("C2", None, None)]
    finally:
        await storage.dispose()


async def test_0010_rewrites_owed_snapshots_in_place_and_back(database_url: str) -> None:
    """Owed alerts written in 0009's shape read back typed after 0010, digests and steps included;
    the downgrade restores 0009's shape exactly."""
    storage = Database(database_url)
    now = datetime.now(UTC)
    task = {"task_id": "a" * 32, "task_name": "导入 done", "task_status": "SUCCEED", "total_count": 3}
    report = DigestReport(since=now - timedelta(days=1), until=now, finished=2).model_dump(mode="json")
    old = {
        "C1": ("finished", None, {**task, LEGACY_REQUEST_ID: "req-0001"}),
        "C2": ("expired", None, task),
        "C3": ("feed", None, {**task, "unknown_field": [1, 2]}),
        "Fx1": ("finished", STEP, {**task, LEGACY_REQUEST_ID: "req-0002"}),
        "C4": ("not_found", None, None),
        "C5": ("digest", None, report),
    }
    try:
        await migrate(storage.engine)
        async with storage.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0009"))
            for n, (channel, (kind, target, payload)) in enumerate(old.items()):
                await conn.execute(
                    insert(DeliveryRow).values(
                        key=f"{n:032x}",
                        team_id="T1",
                        channel_id=channel,
                        user_id="U1",
                        kind=kind,
                        task_id="a" * 32,
                        payload=payload,
                        status="sending" if n % 2 else "pending",
                        attempts=n % 2,
                        created_at=now,
                        target=target,
                    )
                )
        assert (await migrate(storage.engine)).applied[0].startswith("0010 (task snapshots")
        owed = {d.channel_id: d for d in await DeliveryStore(storage).pending_deliveries()}
        assert sorted(owed) == sorted(old)
        expected = Task.model_validate(task)
        assert owed["C1"].snapshot == TaskSnapshot(task=expected, request_id="req-0001")
        assert owed["C2"].snapshot == TaskSnapshot(task=expected)
        assert owed["C3"].task is not None and owed["C3"].task.model_extra == {"unknown_field": [1, 2]}
        assert owed["Fx1"].is_step and owed["Fx1"].snapshot == TaskSnapshot(
            task=expected, request_id="req-0002"
        )
        assert owed["C4"].snapshot is None
        assert (
            owed["C5"].report is not None and owed["C5"].report.finished == 2 and owed["C5"].snapshot is None
        )
        async with storage.engine.connect() as conn:
            rows = await conn.execute(select(DeliveryRow.channel_id, DeliveryRow.payload))
            stored: dict[str, Any] = {channel: payload for channel, payload in rows}
        assert stored["C1"] == {"task": task, "request_id": "req-0001"}
        assert stored["C5"] == report
        async with storage.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.downgrade(_config(sync), "0009"))
        async with storage.engine.connect() as conn:
            rows = await conn.execute(select(DeliveryRow.channel_id, DeliveryRow.payload))
            stored = {channel: payload for channel, payload in rows}
        assert stored == {channel: payload for channel, (_, _, payload) in old.items()}
    finally:
        await storage.dispose()


# --- adopting a 0.1.0 database ------------------------------------------------------------------


async def test_a_0_1_0_database_is_adopted_stamped_and_keeps_its_rows(database_url: str) -> None:
    async with legacy_database(database_url) as storage:
        # Written as 0.1.0 wrote it: today's models have columns, from revision 0002 on, that a
        # 0.1.0 database lacks.
        now = datetime.now(UTC)
        async with storage.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO watches (id, team_id, task_id, status, created_at, expires_at) "
                    "VALUES (1, 'T0LEGACY01', 'legacy-task', 'active', :now, :expires)"
                ),
                {"now": now, "expires": now + timedelta(hours=1)},
            )
            await conn.execute(
                text(
                    "INSERT INTO subscribers (watch_id, team_id, channel_id, user_id, created_at, status) "
                    "VALUES (1, 'T0LEGACY01', 'C0LEGACY01', 'U0LEGACY01', :now, 'active')"
                ),
                {"now": now},
            )
        before = await FollowUpStore(storage).counts()
        assert (await schema_status(storage.engine)).state == "unversioned"

        report = await migrate(storage.engine)
        assert report == MigrationReport(
            before=None, after=HEAD, adopted=True, applied=report.applied
        ) and report.applied[0].startswith("0001 (baseline")
        assert report.lines()[0].startswith("Adopted a database created before migrations")
        assert await FollowUpStore(storage).counts() == before
        watch = await FollowUpStore(storage).get_watch(1)
        assert watch is not None and (watch.task_id, watch.status) == ("legacy-task", "active")
        assert [s.locale for s in await FollowUpStore(storage).active_subscribers(1)] == [None]
        assert (await schema_status(storage.engine)).current
        assert (await migrate(storage.engine)).lines() == [
            f"The schema is current at revision {HEAD}; nothing to do."
        ]


async def test_a_single_workspace_database_gets_the_tables_it_never_had(sqlite_url: str) -> None:
    async with legacy_database(sqlite_url) as storage:
        async with storage.engine.begin() as conn:
            for table in ("slack_installations", "slack_bots", "slack_oauth_states"):
                await conn.execute(text(f"DROP TABLE {table}"))
        assert (await migrate(storage.engine)).adopted
        async with storage.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []


async def test_a_database_that_is_not_0_1_0_is_refused_and_left_alone(sqlite_url: str) -> None:
    async with legacy_database(sqlite_url) as storage:
        async with storage.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE deliveries DROP COLUMN error"))
        with pytest.raises(SchemaError) as refused:
            await migrate(storage.engine)
        assert str(refused.value) == (
            "Table deliveries has no column error, so this database was not made by taskbot 0.1.0 and cannot "
            "be adopted; nothing was changed."
        )
        async with storage.engine.connect() as conn:
            assert "alembic_version" not in await conn.run_sync(lambda sync: inspect(sync).get_table_names())


# --- a schema newer than the code ---------------------------------------------------------------


async def _stamp_future(url: str) -> None:
    storage = Database(url)
    try:
        await migrate(storage.engine)
        async with storage.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        await storage.dispose()


TOO_NEW = (
    "The database schema is at revision 9999, which this taskbot does not know (its newest is {head}): a newer "
    "release has migrated it, so run that release or restore the backup taken before the upgrade."
)


async def test_a_newer_schema_refuses_to_start_with_one_sentence(
    cloud: Cloud,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    await _stamp_future(database_url)
    storage = Database(database_url)
    try:
        with pytest.raises(SchemaTooNew):
            await ensure_schema(storage.engine, migrate_on_start=True)
        with pytest.raises(SchemaTooNew):
            await migrate(storage.engine)
    finally:
        await storage.dispose()
    for name in ("serve", "migrate"):
        bot = BotProcess(cloud, database_url, tmp_path / "bot.log")
        code, out, err = await run_cli(name, env=bot.env, timeout=60)
        assert (code, out, err) == (2, "", TOO_NEW.format(head=HEAD) + "\n")
    bot = BotProcess(cloud, database_url, tmp_path / "bot.log")
    code, out, _ = await run_cli("check", env=bot.env, timeout=60)
    assert code == 2 and f"FAIL  schema: {TOO_NEW.format(head=HEAD)}" in out


# --- migrate as a separate step -----------------------------------------------------------------


async def test_migrate_as_a_separate_step_when_serve_is_told_not_to(
    cloud: Cloud,  # noqa: F811
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    bot = BotProcess(cloud, sqlite_url, tmp_path / "bot.log")
    bot.env["TASKBOT_MIGRATE_ON_START"] = "false"
    code, out, err = await run_cli("serve", env=bot.env, timeout=60)
    assert (code, out) == (2, "")
    assert err == (
        f"The database has no taskbot schema yet but this taskbot needs revision {HEAD}, and "
        "TASKBOT_MIGRATE_ON_START is off: run `taskbot migrate` first.\n"
    )
    code, out, _ = await run_cli("check", env=bot.env, timeout=60)
    assert code == 2 and "FAIL  schema: empty; migrating creates revision" in out

    code, out, err = await run_cli("migrate", env=bot.env, timeout=60)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:2] == [
        f"Database {sqlite_url}:",
        "  Applied 0001 (baseline: the schema taskbot 0.1.0 created with create_all()).",
    ]
    assert lines[-1] == f"  The schema went from an empty database to revision {HEAD}."
    # Every later revision is reported as applied, one line each.
    assert all(line.startswith("  Applied ") for line in lines[2:-1])
    code, out, err = await run_cli("migrate", env=bot.env, timeout=60)
    assert (code, out.splitlines()[1:]) == (
        0,
        [f"  The schema is current at revision {HEAD}; nothing to do."],
    )
    code, out, _ = await run_cli("check", env=bot.env, timeout=60)
    assert f"ok    schema: current (revision {HEAD})" in out

    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await bot.start(http)
        finally:
            await bot.kill_if_running()


# --- starting at once ---------------------------------------------------------------------------


async def _empty(url: str) -> None:
    if _is_sqlite(url):
        await asyncio.to_thread(Path(str(make_url(url).database)).unlink, missing_ok=True)
        return
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.mark.parametrize("trials", [5])
async def test_three_processes_started_at_once_on_an_empty_database_all_start(
    cloud: Cloud,  # noqa: F811
    database_url: str,
    tmp_path: Path,
    trials: int,
) -> None:
    if _is_sqlite(database_url):
        trials = 2  # one file, one writer: the guard matters less, so fewer rounds
    timings = []
    async with httpx.AsyncClient(timeout=10) as http:
        for trial in range(trials):
            await _empty(database_url)
            bots = [BotProcess(cloud, database_url, tmp_path / f"bot-{trial}-{n}.log") for n in range(3)]
            started = time.monotonic()
            try:
                # All three are spawned before any is waited for: they race for the empty database.
                results = await asyncio.gather(*(bot.start(http) for bot in bots), return_exceptions=True)
                failures = [
                    (n, r, bots[n].log()) for n, r in enumerate(results) if isinstance(r, BaseException)
                ]
                if _is_sqlite(database_url):
                    # One SQLite file serves one replica: the other two refuse (tests/test_replicas.py).
                    assert len(failures) == 2, failures
                    assert all("already uses this SQLite file" in log for _, _, log in failures), failures
                else:
                    assert not failures, failures
            finally:
                for bot in bots:
                    await bot.kill_if_running()
            timings.append(time.monotonic() - started)
            logs = [bot.log() for bot in bots]
            assert all("Traceback" not in log for log in logs), logs
            # Exactly one of them created the schema; the others found it current.
            assert sum("schema: Applied 0001" in log for log in logs) == 1, logs
            storage = Database(database_url)
            try:
                assert (await schema_status(storage.engine)).current
            finally:
                await storage.dispose()
    print(f"{trials} trials of 3 processes: every process started; seconds per trial {timings}")


# --- upgrade in place, then serve ----------------------------------------------------------------

CLIENT_SECRET = "legacy-client-secret-0000"
BOT_TOKEN = "xoxb-legacy-installation-0001"
SENT_CHANNEL, WATCH_CHANNEL, FEED_CHANNEL, ASK_CHANNEL = (
    "C0OWED0001",
    "C0WATCH001",
    "C0FEED0001",
    "C0ASK00001",
)


async def _legacy_rows(url: str, cloud: Cloud, key: str) -> tuple[str, str]:  # noqa: F811
    """What a running 0.1.0 deployment leaves behind; returns (finished task, running task)."""
    (running,) = add_tasks(cloud.simulator, [4.0])
    finished = sim.SimTask(
        task_id="d0e00000000000000000000000000001",
        task_name="Import done",
        resource="knowledge-intent-question-create",
        total_count=10,
        duration_seconds=5.0,
        begin_time_ms=round((time.time() - 60) * 1000),
    )
    cloud.simulator.add_task(finished)
    done = finished.task_id
    storage = Database(url)
    # Today's stores write columns 0.1.0 lacks: add them for the writes, then drop them again, so
    # what is left is 0.1.0's schema holding 0.1.0's rows.
    added = [
        ("guardrails", "channel_language", "VARCHAR(16)"),
        *((t, "locale", "VARCHAR(16)") for t in ("subscribers", "feeds", "deliveries")),
        # The workflow-step target: only ever NULL here, so the type does not matter.
        *((t, "target", "VARCHAR(16)") for t in ("subscribers", "deliveries")),
        ("subscribers", "expires_at", "VARCHAR(16)"),
        ("deliveries", "digest_id", "INTEGER"),
    ]
    async with storage.engine.begin() as conn:
        for table, column, sql_type in added:
            await conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))
    try:
        installations = AsyncSQLAlchemyInstallationStore(
            client_id=cloud.slack.client_id, engine=storage.engine
        )
        await installations.async_save(
            Installation(
                app_id="A0TASKBOT1",
                team_id=DEMO_TEAM_ID,
                user_id="U0ADMIN001",
                bot_token=BOT_TOKEN,
                bot_id="B0TASKBOT1",
                bot_user_id="U0TASKBOT1",
                bot_scopes="chat:write,commands",
            )
        )
        workspaces = WorkspaceStore(storage, SecretBox([key]))
        await workspaces.save_connection(
            DEMO_TEAM_ID,
            aksk_form(
                endpoint=cloud.simulator_url,
                project_id=sim.DEMO_PROJECT_ID,
                access_key=sim.DEMO_ACCESS_KEY,
                secret_key=sim.DEMO_SECRET_KEY,
            ),
            user_id="U0ADMIN001",
        )
        followups = FollowUpStore(storage)
        expires = datetime.now(UTC) + timedelta(hours=1)

        async def watch(task_id: str, channel_id: str, user_id: str) -> WatchResult:
            return await followups.watch(
                team_id=DEMO_TEAM_ID,
                task_id=task_id,
                channel_id=channel_id,
                user_id=user_id,
                expires_at=expires,
            )

        owed = await watch(done, SENT_CHANNEL, "U0ASKER001")
        body = finished.body_at(int(time.time() * 1000))
        (delivery,) = await followups.close_watch(
            owed.watch.id, status="finished", snapshot=TaskSnapshot(task=Task.model_validate(body))
        )
        # A 0.1.0 row holds the task itself, the poll's request id beside its fields: the shape
        # revision 0010 rewrites.
        async with storage.engine.begin() as conn:
            await conn.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery.id)
                .values(payload={**body, LEGACY_REQUEST_ID: "req-legacy-0001"})
            )
            await conn.execute(update(WatchRow).where(WatchRow.id == owed.watch.id).values(snapshot=body))
        assert await DeliveryStore(storage).mark_sending(delivery.id) is not None
        await watch(running, WATCH_CHANNEL, "U0ASKER002")
        # Only the 0.1.0 columns: later revisions add feed columns this schema does not have yet.
        async with storage.engine.begin() as conn:
            await conn.execute(
                FeedRow.__table__.insert().values(
                    team_id=DEMO_TEAM_ID,
                    channel_id=FEED_CHANNEL,
                    user_id="U0ASKER003",
                    resources=[],
                    created_at=datetime.now(UTC),
                    status="active",
                )
            )
        counts = await followups.counts()
        assert counts == {"watches": 2, "subscribers": 2, "feeds": 1, "deliveries": 1}
        async with storage.engine.begin() as conn:
            for table, column, _ in added:
                await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    finally:
        await storage.dispose()
    return done, running


async def _every_delivery_sent(url: str) -> bool:
    """True once every delivery row of ``url`` is sent."""
    storage = Database(url)
    try:
        async with storage.engine.connect() as conn:
            statuses = (await conn.execute(select(DeliveryRow.status))).scalars().all()
    finally:
        await storage.dispose()
    return bool(statuses) and set(statuses) == {"sent"}


async def test_upgrade_in_place_then_serve_delivers_what_was_owed(
    cloud: Cloud,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    slack = cloud.slack
    slack.tokens[BOT_TOKEN] = IssuedToken(DEMO_TEAM_ID)
    await load_legacy_schema(database_url)
    bot = BotProcess(cloud, database_url, tmp_path / "serve.log").installed_per_workspace()
    done, running = await _legacy_rows(database_url, cloud, bot.encryption_key)
    bot.env["TASKBOT_FEED_POLL_SECONDS"] = "0.3"
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            await bot.start(http)  # migrates at start (the default)
            # The installation answers: its token authorizes the command, its encrypted
            # connection reaches MetaStudio for the card.
            body, headers = slack.slash_command(SIGNING_SECRET, done, channel_id=ASK_CHANNEL)
            assert (
                await http.post(f"{bot.url}/slack/events", content=body, headers=headers)
            ).status_code == 200
            # The card goes to the channel with the installation's own token.
            try:
                await slack.wait_for(
                    lambda ms: any(m.channel == ASK_CHANNEL and "Import done" in m.text for m in ms),
                    timeout=15,
                )
            except TimeoutError:
                pytest.fail(
                    f"no card: {[(m.via, m.text[:200]) for m in slack.messages]}\n{bot.log()[-3000:]}"
                )
            assert [
                c.token for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == ASK_CHANNEL
            ] == [BOT_TOKEN]

            def alerts() -> collections.Counter[str]:
                return collections.Counter(m.channel or "" for m in slack.messages if is_alert(m))

            await eventually(
                lambda: alerts()[SENT_CHANNEL] and alerts()[WATCH_CHANNEL] and alerts()[FEED_CHANNEL],
                within=20,
                what="an alert in each of the three channels",
            )
            # Several poll rounds after the alerts, and every delivery recorded as sent: a second
            # post of any of them would be in the stand-in's record by then.
            listed = cloud.simulator.requests[("list", "")]
            await eventually(
                lambda: cloud.simulator.requests[("list", "")] >= listed + 2,
                within=20,
                what="two more feed polls",
            )
            await eventually(
                lambda: _every_delivery_sent(database_url), within=20, what="every delivery recorded as sent"
            )
        finally:
            await bot.kill_if_running()
    assert alerts() == collections.Counter({SENT_CHANNEL: 1, WATCH_CHANNEL: 1, FEED_CHANNEL: 1})
    # The alert owed since 0.1.0 names its task: 0010 rewrote the stored snapshot, not dropped it.
    owed_alert = next(m for m in slack.messages if is_alert(m) and m.channel == SENT_CHANNEL)
    assert "Import done" in owed_alert.text
    feed_alert = next(m for m in slack.messages if is_alert(m) and m.channel == FEED_CHANNEL)
    assert running in str(feed_alert.payload)
    log = bot.log()
    assert "Adopted a database created before migrations" in log and "Traceback" not in log
    storage = Database(database_url)
    try:
        async with storage.engine.connect() as conn:
            rows = (await conn.execute(select(DeliveryRow.channel_id, DeliveryRow.status))).all()
        assert sorted(rows) == [(FEED_CHANNEL, "sent"), (SENT_CHANNEL, "sent"), (WATCH_CHANNEL, "sent")]
        assert (await schema_status(storage.engine)).current
        # 0007 added the uninstall intents; the upgrade recorded none and the owed alerts went out.
        async with storage.engine.connect() as conn:
            assert (await conn.execute(select(DepartureRow.team_id))).all() == []
    finally:
        await storage.dispose()
