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

__all__ = ["CONNECT_SECONDS", "database_problem", "sqlite_path"]

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
