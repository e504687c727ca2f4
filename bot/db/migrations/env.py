"""Alembic's environment for taskbot: online only, on the connection ``bot.db.schema`` hands over.

This is Alembic's "sharing a connection across one or more programmatic migration commands"
recipe (cookbook), used from asyncio through ``AsyncConnection.run_sync``: no second engine,
no sync driver. ``bot.db.schema`` has already begun the transaction and taken the lock, so
``begin_transaction()`` below joins that transaction and the caller commits.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from bot.db.base import UTCDateTime
from bot.db.migrations import TARGET_METADATA

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "taskbot's migrations run through `taskbot migrate` (bot.db.schema), which passes the connection"
    )


def render_item(type_: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes plain SQLAlchemy types: a migration must never import the models."""
    if type_ == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=connection,
    target_metadata=list(TARGET_METADATA),
    # SQLite cannot ALTER most things: batch mode copies the table (Alembic's "batch migrations").
    render_as_batch=True,
    compare_type=True,
    render_item=render_item,
    on_version_apply=config.attributes.get("on_version_apply"),
)
with context.begin_transaction():
    context.run_migrations()
