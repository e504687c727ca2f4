"""task snapshots: the task and its poll's request id as two fields of the stored snapshot

A delivery's ``payload`` (every kind but ``digest``) and a closed watch's ``snapshot`` were
the task itself, with the poll's request id under one more key, ``taskbot_request_id``. They
become ``{"task": <the task>, "request_id": <id or null>}`` (``bot.db.deliveries.TaskSnapshot``).
Rows are rewritten in place, owed ones included, so an owed alert says after the upgrade what
it would have said before; a digest run's payload (a report, not a task) is left alone. No
DDL changes, so the downgrade leaves every table as 0009 had it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"

_REQUEST_ID = "taskbot_request_id"
_Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

Snapshot = dict[str, Any]


def upgrade() -> None:
    _rewrite(_split)


def downgrade() -> None:
    _rewrite(_joined)


def _split(stored: Snapshot) -> Snapshot:
    """0009's shape (the task, plus ``taskbot_request_id`` when known) -> 0010's."""
    task = {key: value for key, value in stored.items() if key != _REQUEST_ID}
    request_id = stored.get(_REQUEST_ID)
    return {"task": task, "request_id": request_id if isinstance(request_id, str) and request_id else None}


def _joined(stored: Snapshot) -> Snapshot:
    """0010's shape -> 0009's: the task, carrying the request id under its old key when there is one."""
    task = stored.get("task")
    if not isinstance(task, dict):
        return stored
    request_id = stored.get("request_id")
    return {**task, _REQUEST_ID: request_id} if request_id else dict(task)


def _rewrite(change: Callable[[Snapshot], Snapshot]) -> None:
    """Apply ``change`` to every stored task snapshot, in this migration's transaction.

    In Python rather than in SQL: SQLite's JSON functions and PostgreSQL's differ, and one
    rule read once is easier to trust than two dialects of it.
    """
    bind = op.get_bind()
    deliveries = sa.table(
        "deliveries", sa.column("id", sa.Integer), sa.column("kind", sa.String), sa.column("payload", _Json)
    )
    watches = sa.table("watches", sa.column("id", sa.Integer), sa.column("snapshot", _Json))
    targets = (
        (deliveries, deliveries.c.payload, deliveries.c.kind != "digest"),
        (watches, watches.c.snapshot, sa.true()),
    )
    for table, column, which in targets:
        rows = bind.execute(sa.select(table.c.id, column).where(column.is_not(None), which)).all()
        changed = [
            {"row_id": row_id, "stored": change(stored)}
            for row_id, stored in rows
            if isinstance(stored, dict)
        ]
        if changed:
            bind.execute(
                table.update()
                .where(table.c.id == sa.bindparam("row_id"))
                .values({column.name: sa.bindparam("stored", type_=_Json)}),
                changed,
            )
