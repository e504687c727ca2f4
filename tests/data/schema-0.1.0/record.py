"""Record the schema taskbot 0.1.0 creates with ``create_all()``, as SQL, for the upgrade tests.

Run once, with the code of the release before migrations (commit 05bdf5c), from the repository
root: ``python tests/data/schema-0.1.0/record.py``. It creates what ``Engine.start`` created in
multi-workspace mode (every table of ``bot.storage.Base`` plus slack_sdk's installation and
OAuth state tables) on a fresh SQLite file and a fresh PostgreSQL database, then writes
``sqlite.sql`` (from ``sqlite_master``) and ``postgresql.sql`` (``pg_dump --schema-only``).
The files are the fixture; this script is kept only to show how they were made.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore

import bot.workspaces  # noqa: F401 - its tables join bot.storage.Base, as they did in Engine.start
from bot.storage import Storage

HERE = Path(__file__).parent
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def create_like_engine_start(url: str) -> None:
    storage = Storage(url)
    try:
        await storage.create_all()
        await AsyncSQLAlchemyInstallationStore(client_id="x", engine=storage.engine).create_tables()
        await AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=storage.engine).create_tables()
    finally:
        await storage.dispose()


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "legacy.db"
        await create_like_engine_start(f"sqlite+aiosqlite:///{path}")
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type = 'index', rowid"
            ).fetchall()
        (HERE / "sqlite.sql").write_text("".join(f"{sql};\n" for (sql,) in rows))

    name = f"taskbot_record_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        await create_like_engine_start(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
        dump = subprocess.run(
            ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-h", "127.0.0.1", "-U", "postgres", name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        # pg_dump 15.14+ wraps the dump in psql's \restrict meta-commands, which only psql reads.
        (HERE / "postgresql.sql").write_text("".join(x for x in dump.splitlines(True) if not x.startswith("\\")))
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
