"""Fresh throwaway databases for tests, on SQLite and on PostgreSQL.

Use from any test module with ``pytest_plugins = ["tests.databases"]`` (or once for the whole
suite from ``tests/conftest.py``). Fixtures:

- ``sqlite_url``: a new ``sqlite+aiosqlite`` file in ``tmp_path``.
- ``postgres_url``: a new, uniquely named PostgreSQL database, dropped after the test.
- ``database_url``: parametrized over ``sqlite`` and ``postgres``, so a test runs on both (the
  PostgreSQL half carries the ``postgres`` marker).

``open_database(url)`` opens a ``Database`` with the schema created, and disposes it after.

PostgreSQL is never skipped: when the server is unreachable the test fails with a message
saying so, because CI starts it and a silent skip would hide half of the coverage. The admin
DSN defaults to ``postgresql://postgres@127.0.0.1:5432/test`` (trust auth) and can be changed
with ``TASKBOT_TEST_POSTGRES_DSN``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from bot.db.base import Database

__all__ = ["database_url", "open_database", "postgres_url", "sqlite_url"]

ADMIN_DSN_ENV = "TASKBOT_TEST_POSTGRES_DSN"
DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
_CONNECT_TIMEOUT = 5.0


def _admin_dsn() -> str:
    return os.environ.get(ADMIN_DSN_ENV, DEFAULT_ADMIN_DSN)


def _database_dsn(admin_dsn: str, database: str) -> str:
    """The admin DSN pointed at another database, in SQLAlchemy's asyncpg form."""
    parts = urlsplit(admin_dsn)
    return urlunsplit(("postgresql+asyncpg", parts.netloc, f"/{database}", parts.query, ""))


async def _admin_connection() -> asyncpg.Connection:
    dsn = _admin_dsn()
    try:
        return await asyncpg.connect(dsn, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    # Failing outside the except block keeps the report to this one message.
    pytest.fail(
        f"PostgreSQL is required for these tests but {urlsplit(dsn).hostname} could not be reached "
        f"({problem}). Start it (CI does), or point {ADMIN_DSN_ENV} at a server.",
        pytrace=False,
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'taskbot.db'}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    # A whole database per test (about 60 ms) rather than a schema: nothing, including code
    # that sets its own search_path, can see another test's tables.
    name = f"taskbot_test_{uuid.uuid4().hex[:16]}"
    admin = await _admin_connection()
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield _database_dsn(_admin_dsn(), name)
    finally:
        admin = await _admin_connection()
        try:
            # FORCE: a test that forgot to dispose its engine must not leak the database.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    # getfixturevalue keeps PostgreSQL untouched for the sqlite half of the run.
    return str(request.getfixturevalue(f"{request.param}_url"))


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    try:
        await database.create_all()
        yield database
    finally:
        await database.dispose()
