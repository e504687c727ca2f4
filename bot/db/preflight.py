"""Can taskbot use ``DATABASE_URL``? One sentence naming the variable when it cannot.

Run before anything else opens the database, so an operator's mistake (a missing or read-only
folder, a server that does not answer) is one line and exit code 2, never a driver traceback.

Invariants: nothing here creates a file or a folder (``taskbot check`` must leave no
``taskbot.db`` behind), and no message carries the URL's password.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import column, inspect, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.base import Database
from bot.db.crypto import SecretBox, SecretUnreadable
from bot.db.installations import BOT_SECRET_FIELDS, FERNET_PREFIX, SECRET_FIELDS
from bot.db.workspaces import ConnectionRow

__all__ = [
    "CONNECT_SECONDS",
    "KeyFit",
    "claim_sqlite_file",
    "database_problem",
    "failure_reason",
    "sqlite_path",
    "stored_secrets_fit",
]

INSTALLATIONS_TABLE: Final = SQLAlchemyInstallationStore.default_installations_table_name
BOTS_TABLE: Final = SQLAlchemyInstallationStore.default_bots_table_name

CONNECT_SECONDS: Final = 10.0
_SQLITE_EXAMPLE: Final = "e.g. DATABASE_URL=sqlite+aiosqlite:////var/lib/taskbot/taskbot.db"
_POSTGRES_EXAMPLE: Final = "e.g. DATABASE_URL=postgresql+asyncpg://taskbot:PASSWORD@db.internal:5432/taskbot"


def sqlite_path(url: URL) -> Path | None:
    """The absolute file of a SQLite URL; None for an in-memory database or another backend."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database or "").expanduser().resolve()


def _folder_writable(folder: Path) -> bool:
    """Whether this process can create a file in ``folder``, found by trying.

    ``os.access`` answers from mode bits, which root passes on a read-only mount or in /proc; a
    nameless temporary file (Linux ``O_TMPFILE``, else created and unlinked at once) leaves nothing.
    """
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _not_a_database(path: Path) -> str | None:
    """Why an existing file cannot be opened as SQLite (read-only, so nothing is written); else None."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1)) as probe:
            probe.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            return None  # another process writes it right now: a file SQLite can open
        return str(exc)  # sqlite3's own words ("file is not a database"); they never quote the file
    return None


def _sqlite_problem(shown: str, path: Path) -> str | None:
    folder = path.parent
    if not folder.is_dir():
        return (
            f"DATABASE_URL={shown!r}: the folder {folder} does not exist; create it, or point at a "
            f"writable folder, {_SQLITE_EXAMPLE}"
        )
    if path.exists() and not path.is_file():
        return f"DATABASE_URL={shown!r}: {path} is not a regular file; point at a database file, {_SQLITE_EXAMPLE}"
    # SQLite writes the file and, beside it, its -wal and -shm files: the folder must be writable.
    if not _folder_writable(folder) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        return (
            f"DATABASE_URL={shown!r}: the folder {folder} is read-only for this user; taskbot writes "
            f"the database and its journal there. Make it writable or use another folder, {_SQLITE_EXAMPLE}"
        )
    if path.exists() and (why := _not_a_database(path)) is not None:
        return (
            f"DATABASE_URL={shown!r}: {path} cannot be opened as a SQLite database ({why}); "
            f"point at taskbot's database file or a new one, {_SQLITE_EXAMPLE}"
        )
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it: SQLAlchemy wraps the driver's error, which wraps the socket's."""
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def failure_reason(exc: BaseException, *, timeout: float = CONNECT_SECONDS) -> str:
    """Why a connection failed, in words: the server's own reason when it gave one."""
    chain = _chain(exc)
    for error in chain:
        # asyncpg's server errors carry a SQLSTATE; their text names the role or database
        # ("role \"x\" does not exist", "password authentication failed for user \"x\""), never a password.
        if getattr(error, "sqlstate", None) and str(error):
            return f"the server says: {str(error).splitlines()[0]}"
    for error in chain:
        if isinstance(error, TimeoutError):
            return f"no answer within {timeout:.0f} s"
        if isinstance(error, socket.gaierror):
            return "the host name does not resolve"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, OSError) and error.strerror:
            return error.strerror.lower()
    # The class name only: a driver's other messages may quote the URL.
    return type(chain[-1]).__name__


async def database_problem(url_text: str, *, timeout: float = CONNECT_SECONDS) -> str | None:
    """None when the database can be used; else one sentence naming DATABASE_URL."""
    url = make_url(url_text)
    shown = url.render_as_string(hide_password=True)
    path = sqlite_path(url)
    if path is not None:
        return _sqlite_problem(shown, path)
    if url.get_backend_name() == "sqlite":
        return None
    database = Database(url_text)
    try:
        async with asyncio.timeout(timeout), database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError, TimeoutError) as exc:
        where = f"{url.host or 'localhost'}:{url.port or 5432}"
        return (
            f"DATABASE_URL={shown!r}: cannot connect to PostgreSQL at {where} ({failure_reason(exc, timeout=timeout)}); "
            f"check that the server runs there and accepts this user and database, {_POSTGRES_EXAMPLE}"
        )
    finally:
        await database.dispose()
    return None


_held_locks: list[int] = []


def claim_sqlite_file(url_text: str) -> str | None:
    """For ``taskbot serve`` only: lock a SQLite database for this process's lifetime.

    SQLite is the single-process default: two processes would both poll every task (the shard
    leases live in PostgreSQL only). An exclusive ``flock`` on a sidecar file (``<db>.serve.lock``)
    is held until the process exits, however it exits, so the kernel frees it even after
    ``kill -9``. Returns one sentence when another process holds it; None otherwise.
    Unlike the checks above this creates a file, so ``taskbot check`` never calls it.
    """
    import fcntl

    url = make_url(url_text)
    path = sqlite_path(url)
    if path is None:
        return None
    lock_path = path.with_name(path.name + ".serve.lock")
    shown = url.render_as_string(hide_password=True)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        return (
            f"DATABASE_URL={shown!r}: cannot create the lock file {lock_path} "
            f"({exc.strerror or type(exc).__name__}); make the folder writable or use another, {_SQLITE_EXAMPLE}"
        )
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return (
            f"DATABASE_URL={shown!r}: another taskbot serve already uses this SQLite file, and SQLite "
            f"runs one replica only; stop that process, or use PostgreSQL to run several, {_POSTGRES_EXAMPLE}"
        )
    _held_locks.append(fd)
    return None


@dataclass(frozen=True, slots=True)
class KeyFit:
    """How many of the secrets stored in the database ``TASKBOT_ENCRYPTION_KEY`` opens."""

    opened: int
    stored: int

    @property
    def problem(self) -> str | None:
        """One sentence naming the variable when some stored secret does not open; else None."""
        if self.opened == self.stored:
            return None
        how_many = "none" if self.opened == 0 else f"only {self.opened}"
        return (
            f"TASKBOT_ENCRYPTION_KEY opens {how_many} of the {self.stored} secrets stored in the database: "
            "they were encrypted with another key. Put that key back in the list (new key first, "
            "then the old, comma-separated); taskbot cannot use the workspaces' tokens and connections without it"
        )


async def stored_secrets_fit(engine: AsyncEngine, box: SecretBox) -> KeyFit:
    """Try to decrypt every encrypted secret taskbot stores (Slack tokens, cloud connections).

    Read-only. Tables not created yet count as empty; legacy plaintext tokens (from before
    encryption, see bot.db.installations) are not counted.
    """
    sources = [
        (INSTALLATIONS_TABLE, SECRET_FIELDS),
        (BOTS_TABLE, BOT_SECRET_FIELDS),
        (
            ConnectionRow.__tablename__,
            tuple(c.name for c in ConnectionRow.__table__.columns if c.name.endswith("_enc")),
        ),
    ]
    opened = stored = 0
    async with engine.connect() as conn:
        present = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        for name, fields in sources:
            if name not in present:
                continue
            query = table(name, *(column(field) for field in fields)).select()
            values: list[object] = [value for row in (await conn.execute(query)).all() for value in row]
            for value in values:
                if not isinstance(value, str) or not value.startswith(FERNET_PREFIX):
                    continue
                stored += 1
                try:
                    box.decrypt(value)
                    opened += 1
                except SecretUnreadable:
                    pass
    return KeyFit(opened=opened, stored=stored)
