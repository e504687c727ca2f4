"""Can taskbot use ``DATABASE_URL``? One sentence naming the variable when it cannot.

Run before anything else opens the database, so an operator's mistake (a missing or read-only
folder, a server that does not answer) is one line and exit code 2, never a driver traceback.

Invariants: nothing here creates a file or a folder (``taskbot check`` must leave no
``taskbot.db`` behind), and no message carries the URL's password.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.db.base import Database

__all__ = ["CONNECT_SECONDS", "claim_sqlite_file", "database_problem", "sqlite_path"]

CONNECT_SECONDS: Final = 10.0
_SQLITE_EXAMPLE: Final = "e.g. DATABASE_URL=sqlite+aiosqlite:////var/lib/taskbot/taskbot.db"
_POSTGRES_EXAMPLE: Final = "e.g. DATABASE_URL=postgresql+asyncpg://taskbot:PASSWORD@db.internal:5432/taskbot"


def sqlite_path(url: URL) -> Path | None:
    """The absolute file of a SQLite URL; None for an in-memory database or another backend."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database or "").expanduser().resolve()


def _sqlite_problem(shown: str, path: Path) -> str | None:
    folder = path.parent
    if not folder.is_dir():
        return (
            f"DATABASE_URL={shown!r}: the folder {folder} does not exist; create it, or point at a "
            f"writable folder, {_SQLITE_EXAMPLE}"
        )
    # SQLite writes the file and, beside it, its -wal and -shm files: the folder must be writable.
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        return (
            f"DATABASE_URL={shown!r}: the folder {folder} is read-only for this user; taskbot writes "
            f"the database and its journal there. Make it writable or use another folder, {_SQLITE_EXAMPLE}"
        )
    return None


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__ or exc
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_SECONDS:.0f} s"
    if isinstance(cause, ConnectionRefusedError) or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    # The class name only: a driver's message may quote the URL or the user's name.
    return type(cause).__name__


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
            f"DATABASE_URL={shown!r}: cannot connect to PostgreSQL at {where} ({_reason(exc)}); "
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
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        shown = url.render_as_string(hide_password=True)
        return (
            f"DATABASE_URL={shown!r}: another taskbot serve already uses this SQLite file, and SQLite "
            f"runs one replica only; stop that process, or use PostgreSQL to run several, {_POSTGRES_EXAMPLE}"
        )
    _held_locks.append(fd)
    return None
