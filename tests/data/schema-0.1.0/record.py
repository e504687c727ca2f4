"""Record the schema taskbot 0.1.0 creates with ``create_all()``, as SQL, for the upgrade tests.

Run once, with the code of the release before migrations (commit 05bdf5c), from the repository
root: ``python tests/data/schema-0.1.0/record.py``. It creates what ``Engine.start`` created in
multi-workspace mode (every table of ``bot.storage.Base`` plus slack_sdk's installation and
OAuth state tables) on a fresh SQLite file and a fresh PostgreSQL database, then writes
``sqlite.sql`` (from ``sqlite_master``) and ``postgresql.sql`` (every CREATE statement the
release sent to PostgreSQL, as sent: a ``pg_dump`` would re-spell CHECK expressions, so a
database restored from it is not byte-for-byte the one the release made).
The files are the fixture; this script is kept only to show how they were made.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import bot.workspaces  # noqa: F401 - its tables join bot.storage.Base, as they did in Engine.start
from bot.storage import Storage
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from sqlalchemy import event

HERE = Path(__file__).parent
ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def create_like_engine_start(url: str) -> list[str]:
    storage = Storage(url)
    sent: list[str] = []

    @event.listens_for(storage.engine.sync_engine, "before_cursor_execute")
    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("CREATE"):
            sent.append(statement.strip())

    try:
        await storage.create_all()
        await AsyncSQLAlchemyInstallationStore(client_id="x", engine=storage.engine).create_tables()
        await AsyncSQLAlchemyOAuthStateStore(expiration_seconds=600, engine=storage.engine).create_tables()
    finally:
        await storage.dispose()
    return sent


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
        sent = await create_like_engine_start(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
        (HERE / "postgresql.sql").write_text("".join(f"{statement};\n" for statement in sent))
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
