"""Bring the database to the schema this code needs, or refuse to run on one it does not know.

Alembic does the migrating (``bot/db/migrations``); this module decides when, and makes it safe
when several processes start at once:

- Every migration runs in ONE transaction on the application's own ``AsyncEngine``, through
  ``AsyncConnection.run_sync`` (Alembic's connection-sharing recipe): it commits whole or not at
  all, and no second engine or sync driver is needed.
- Exclusion: on PostgreSQL a transaction-level advisory lock (``pg_advisory_xact_lock``) taken
  first in that transaction; on SQLite an ``fcntl`` lock on a sidecar file next to the database
  (SQLite's own write lock would only make the losers fail with "database is locked"). The
  revision is read after the lock is held, so the processes that waited find the schema
  current and go on. Waiting is bounded by ``LOCK_TIMEOUT_SECONDS``.
- A database made by ``create_all()`` before migrations existed (our tables, no
  ``alembic_version``) is adopted: the baseline ``0001`` creates only the tables it lacks, checks
  the ones it has, and the database is stamped; later revisions then apply as usual.
- A process never runs on a schema newer than its code (a revision it does not know): it
  raises ``SchemaTooNew``, whose message is one sentence naming both revisions.
- SQLite: foreign keys are off while migrating, because a batch ALTER drops and re-creates a
  table that others reference, and ``PRAGMA foreign_key_check`` must pass before the commit
  (sqlite.org, "Making Other Kinds Of Table Schema Changes"). WAL is set per connection by the
  engine (``bot.db.base._configure_sqlite``) and no migration changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.migrations import SCRIPT_LOCATION, CannotAdopt

__all__ = [
    "LOCK_TIMEOUT_SECONDS",
    "MigrationReport",
    "SchemaBehind",
    "SchemaError",
    "SchemaStatus",
    "SchemaTooNew",
    "code_head",
    "ensure_schema",
    "migrate",
    "schema_status",
]

log = logging.getLogger("taskbot.schema")

# One key for "taskbot is migrating this database"; any constant does, this one spells "taskbot".
ADVISORY_LOCK_KEY: Final = 0x7461736B626F74
LOCK_TIMEOUT_SECONDS: Final = 300.0
# A table every release has had: its presence without alembic_version means create_all() made it.
LEGACY_MARKER_TABLE: Final = "watches"
_LOCK_POLL_SECONDS: Final = 0.05
T = TypeVar("T")

State = Literal["current", "behind", "ahead", "empty", "unversioned"]


class SchemaError(Exception):
    """The schema cannot be used or changed as asked; ``str()`` is one sentence for the operator."""


class SchemaTooNew(SchemaError):
    def __init__(self, database: str, code: str) -> None:
        self.database, self.code = database, code
        super().__init__(
            f"The database schema is at revision {database}, which this taskbot does not know "
            f"(its newest is {code}): a newer release has migrated it, so run that release or "
            "restore the backup taken before the upgrade."
        )


class SchemaBehind(SchemaError):
    def __init__(self, database: str | None, code: str) -> None:
        self.database, self.code = database, code
        where = "has no taskbot schema yet" if database is None else f"is at revision {database}"
        super().__init__(
            f"The database {where} but this taskbot needs revision {code}, and "
            "TASKBOT_MIGRATE_ON_START is off: run `taskbot migrate` first."
        )


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    state: State
    database: str | None  # the revision in alembic_version, None when there is none
    code: str  # the newest revision this code knows

    @property
    def current(self) -> bool:
        return self.state == "current"

    def describe(self) -> str:
        if self.state == "current":
            return f"current (revision {self.code})"
        if self.state == "empty":
            return f"empty; migrating creates revision {self.code}"
        if self.state == "unversioned":
            return f"made before migrations (no alembic_version); migrating adopts it and upgrades to {self.code}"
        if self.state == "behind":
            return f"at revision {self.database}, behind this code's {self.code}"
        return str(SchemaTooNew(self.database or "?", self.code))


@dataclass(frozen=True, slots=True)
class MigrationReport:
    before: str | None
    after: str
    adopted: bool = False
    applied: tuple[str, ...] = field(default=())  # "0001 (baseline ...)" for each revision applied

    @property
    def changed(self) -> bool:
        return bool(self.applied)

    def lines(self) -> list[str]:
        if not self.applied:
            return [f"The schema is current at revision {self.after}; nothing to do."]
        lines = []
        if self.adopted:
            lines.append("Adopted a database created before migrations (tables present, no alembic_version).")
        lines += [f"Applied {step}." for step in self.applied]
        start = "an empty database" if self.before is None else f"revision {self.before}"
        lines.append(f"The schema went from {start} to revision {self.after}.")
        return lines


def _config(connection: Connection | None = None, **attributes: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    config.attributes.update(attributes)
    return config


def code_head() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "bot/db/migrations/versions has no revision"
    return head


def _status(sync: Connection) -> SchemaStatus:
    script = ScriptDirectory.from_config(_config())
    head = script.get_current_head()
    assert head is not None
    database = MigrationContext.configure(sync).get_current_revision()
    if database is None:
        state: State = "unversioned" if inspect(sync).has_table(LEGACY_MARKER_TABLE) else "empty"
    elif database == head:
        state = "current"
    else:
        try:
            script.get_revision(database)
            state = "behind"
        except CommandError:
            state = "ahead"
    return SchemaStatus(state, database, head)


async def schema_status(engine: AsyncEngine) -> SchemaStatus:
    async with engine.connect() as conn:
        return await conn.run_sync(_status)


async def migrate(engine: AsyncEngine, *, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> MigrationReport:
    """Upgrade to this code's newest revision, under the migration lock; a no-op when current."""
    return await _locked(engine, _upgrade, lock_timeout)


async def ensure_schema(
    engine: AsyncEngine, *, migrate_on_start: bool, lock_timeout: float = LOCK_TIMEOUT_SECONDS
) -> SchemaStatus:
    """What ``taskbot serve`` does before anything else touches the database.

    Raises ``SchemaTooNew`` (never runs on a newer schema), or ``SchemaBehind`` when migrating
    at start is off and the schema is not current.
    """
    if migrate_on_start:
        report = await migrate(engine, lock_timeout=lock_timeout)
        for line in report.lines() if report.changed else []:
            log.info("schema: %s", line)
    status = await schema_status(engine)
    if status.state == "ahead":
        raise SchemaTooNew(status.database or "?", status.code)
    if not status.current:
        raise SchemaBehind(status.database, status.code)
    return status


def _upgrade(sync: Connection) -> MigrationReport:
    status = _status(sync)
    if status.state == "ahead":
        raise SchemaTooNew(status.database or "?", status.code)
    if status.current:
        return MigrationReport(before=status.database, after=status.code)
    applied: list[str] = []

    def on_apply(*, step: MigrationInfo, **_: Any) -> None:
        # The Script behind the step: its docstring's first line says what the revision does.
        doc = str(getattr(step.up_revision, "doc", "") or "").strip().splitlines()
        applied.append(f"{step.up_revision_id} ({doc[0]})" if doc else str(step.up_revision_id))

    try:
        command.upgrade(_config(sync, on_version_apply=on_apply), "head")
    except CannotAdopt as exc:
        raise SchemaError(str(exc)) from None
    return MigrationReport(
        before=status.database,
        after=status.code,
        adopted=status.state == "unversioned",
        applied=tuple(applied),
    )


async def _locked(engine: AsyncEngine, work: Callable[[Connection], T], lock_timeout: float) -> T:
    dialect = engine.dialect.name
    async with _file_guard(engine, lock_timeout), engine.connect() as conn:
        if dialect == "sqlite":
            # Outside any transaction, or SQLite ignores it.
            await conn.run_sync(_sqlite_pragma, "foreign_keys=OFF")
        try:
            return await conn.run_sync(_in_transaction, work, dialect, lock_timeout)
        finally:
            if dialect == "sqlite":
                await conn.run_sync(_sqlite_pragma, "foreign_keys=ON")


def _in_transaction(
    sync: Connection, work: Callable[[Connection], T], dialect: str, lock_timeout: float
) -> T:
    # taskbot_write: on SQLite the engine then opens the transaction with BEGIN IMMEDIATE.
    with sync.execution_options(taskbot_write=True).begin():
        if dialect == "postgresql":
            sync.execute(text(f"SET LOCAL lock_timeout = '{int(lock_timeout * 1000)}ms'"))
            try:
                sync.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            except DBAPIError as exc:
                if "lock timeout" in str(exc.orig).lower() or "55P03" in str(
                    getattr(exc.orig, "sqlstate", "")
                ):
                    raise _lock_timeout(lock_timeout) from None
                raise
        result = work(sync)
        if dialect == "sqlite":
            broken = sync.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise SchemaError(
                    f"A migration left {len(broken)} row(s) whose foreign keys point nowhere (first in table "
                    f"{broken[0][0]}), so nothing was changed: report this as a bug."
                )
        return result


def _sqlite_pragma(sync: Connection, pragma: str) -> None:
    cursor = sync.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _lock_timeout(seconds: float) -> SchemaError:
    return SchemaError(
        f"Another process has been migrating this database for over {seconds:.0f} s, so this one gave up "
        "waiting: check that process (or its leftover session), then start again."
    )


@contextlib.asynccontextmanager
async def _file_guard(engine: AsyncEngine, lock_timeout: float) -> AsyncIterator[None]:
    """On an SQLite file, an exclusive ``flock`` on ``<database>.migrate-lock``; nothing elsewhere."""
    database = engine.url.database
    if (
        engine.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        yield
        return
    path = Path(database).with_name(Path(database).name + ".migrate-lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                # Non-blocking and polled: a blocking flock would stall the event loop.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _lock_timeout(lock_timeout) from None
                await asyncio.sleep(_LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- developers: new migrations ---------------------------------------------------------------


async def _revision(url: str, message: str) -> None:
    from bot.db.base import Database

    storage = Database(url)
    try:
        await migrate(storage.engine)
        async with storage.engine.connect() as conn:
            await conn.run_sync(
                lambda sync: command.revision(
                    _config(sync), message=message, autogenerate=True, rev_id=_next_id()
                )
            )
    finally:
        await storage.dispose()


def _next_id() -> str:
    return f"{int(code_head()) + 1:04d}"


if __name__ == "__main__":
    # python -m bot.db.schema revision "add the channel language": autogenerates the next migration
    # against a scratch database (DATABASE_URL, default a new SQLite file) upgraded to head.
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m bot.db.schema revision "what the migration does"')
    asyncio.run(
        _revision(os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///migration-scratch.db"), sys.argv[2])
    )
