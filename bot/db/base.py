"""Database plumbing shared by every store: one engine, its transactions, SQLite set-up.

Owns the declarative ``Base`` (with its naming convention), the column types every table
uses (``UTCDateTime``, ``Json``), ``Database`` (one async engine per process), read and write
``Transactions``, ``Store`` (what every repository starts from), ``record_of`` and
``retry_on_conflict`` for inserts that race on a unique index. Imports only SQLAlchemy and
``bot.logs``; the table modules import this, never the reverse.

Each table is a ``...Row`` (the mapped class: columns, constraints, what a transaction changes)
and a frozen record, the only thing a store hands out, copied by ``record_of`` while the
session is open. One class cannot be both: a mapped class (``MappedAsDataclass`` too)
cannot be frozen or slotted and carries its session state, so a caller holding one could
lazy-load, meet an expired attribute or change a row by accident. Rows are typed as their
records are (``Literal`` statuses, whose values ``one_of`` also makes the CHECK of), so a
record copies its row field for field and computes only what differs (a parsed payload, a
tuple, a derived flag, a secret left out); ``tests/db/test_records.py`` holds the two together.

On SQLite every write transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction
that reads and then writes fails at once with "database is locked" when another writer
committed in between (the busy timeout does not help there), while IMMEDIATE waits.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, cast, get_args
from weakref import WeakKeyDictionary

from sqlalchemy import JSON, CheckConstraint, CursorResult, DateTime, Dialect, Index, MetaData, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = [
    "Base",
    "Database",
    "Json",
    "Store",
    "Transactions",
    "UTCDateTime",
    "active_only",
    "one_of",
    "record_of",
    "require_aware",
    "retry_on_conflict",
    "rowcount",
    "unique_while_active",
    "utcnow",
]

T = TypeVar("T")
WRITE_OPTION = "taskbot_write"
# Concurrent first inserts on PostgreSQL: the loser gets IntegrityError from a unique index and,
# on its next attempt, finds the winner's row. Two attempts always suffice.
CONFLICT_ATTEMPTS = 3


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns tz-aware UTC on every backend (SQLite keeps no offset of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = require_aware(value, "datetime column value")
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def active_only() -> Any:
    return text("status = 'active'")


def unique_while_active(name: str, *columns: str) -> Index:
    """A partial unique index: at most one *active* row per ``columns`` (both backends)."""
    return Index(name, *columns, unique=True, sqlite_where=active_only(), postgresql_where=active_only())


def one_of(column: str, values: Any) -> CheckConstraint:
    """A CHECK that ``column`` holds one of the strings of ``values``, the ``Literal`` type the
    column is mapped with: the values a column may take are written once, in its type."""
    allowed = ", ".join(f"'{value}'" for value in get_args(values))
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy reads it as a class attribute


def rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


R = TypeVar("R")


def record_of(record: type[R], row: Any, **computed: Any) -> R:
    """The frozen record of an ORM row, built while its session is open so nothing lazy escapes.

    Each field of ``record`` is the row's attribute of that name, unless ``computed`` gives it (a
    converted or derived value); a field that is neither raises, so a record cannot drift from
    its row unseen. ``tests/db/test_records.py`` checks that the copied fields have the row's types.
    """
    names = [field.name for field in dataclasses.fields(record)]  # type: ignore[arg-type]
    values = {name: getattr(row, name) for name in names if name not in computed}
    return record(**values, **computed)


async def retry_on_conflict(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a read-then-insert transaction again when a racing insert won the unique index."""
    for number in range(CONFLICT_ATTEMPTS):
        try:
            return await attempt()
        except IntegrityError:
            if number == CONFLICT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class Transactions:
    """Read and write transactions on one engine, for every store that shares it.

    Writes ask SQLite for its write lock at BEGIN (see ``_configure_sqlite``). SQLite takes one
    writer at a time, and a burst of writers from this process would otherwise wait in
    SQLite's busy handler, which sleeps up to 100 ms between tries: 50 watch commands at once
    crawl, and the unlucky ones fail with "database is locked" after busy_timeout. So this
    process's writers queue on one asyncio lock per engine; other processes still meet the
    busy timeout.
    """

    _sqlite_locks: ClassVar[WeakKeyDictionary[Engine, asyncio.Lock]] = WeakKeyDictionary()

    def __init__(self, engine: AsyncEngine) -> None:
        self._reader = async_sessionmaker(engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )
        self._lock: asyncio.Lock | None = None
        if engine.dialect.name == "sqlite":
            self._lock = self._sqlite_locks.setdefault(engine.sync_engine, asyncio.Lock())

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self._lock or nullcontext(), self._writer() as session, session.begin():
            yield session


class Database:
    """The process's one engine on ``url``, and the transactions every store shares."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        engine_kwargs.setdefault("pool_pre_ping", not self.is_sqlite)
        self.engine: AsyncEngine = create_async_engine(url, **engine_kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self.transactions = Transactions(self.engine)

    async def create_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()


class Store:
    """A repository: reads and writes its tables on the transactions of the process's ``Database``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._read = database.transactions.read
        self._write = database.transactions.write


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module so the "begin" hook below decides its mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
