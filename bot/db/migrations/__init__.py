"""taskbot's Alembic migrations: the one way its database schema is created and changed.

Invariants:
- ``TARGET_METADATA`` is everything the running code reads and writes: our models
  (``bot.db.base.Base``, which every table module of ``bot.db`` joins) and slack_sdk's installation and OAuth
  state tables, built by slack_sdk's own table builders on a metadata of their own (slack_sdk
  names its constraints itself, our naming convention must not rename them).
- ``versions/`` holds every schema change as a migration with a fixed revision id
  (``0001``, ``0002``, ...). A migration never imports the models: it states its DDL, so it
  means the same thing after the models move on.
- Migrations run only through ``bot.db.schema``, on the application's own ``AsyncEngine``
  (``connection.run_sync``), inside one transaction and under the migration lock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData

import bot.db.deliveries
import bot.db.departures
import bot.db.digests
import bot.db.feeds
import bot.db.fleet
import bot.db.followups
import bot.db.leases
import bot.db.workspaces  # noqa: F401 - its tables join bot.db.base.Base
from bot.db.base import Base
from bot.db.installations import build_bots_table, build_installations_table

__all__ = ["SCRIPT_LOCATION", "SLACK_METADATA", "TARGET_METADATA", "CannotAdopt"]

SCRIPT_LOCATION: Final = str(Path(__file__).parent)

SLACK_METADATA = MetaData()
# Our builders: slack_sdk's tables with token columns wide enough for ciphertext (migration 0004).
build_installations_table(SLACK_METADATA, SQLAlchemyInstallationStore.default_installations_table_name)
build_bots_table(SLACK_METADATA, SQLAlchemyInstallationStore.default_bots_table_name)
SQLAlchemyOAuthStateStore.build_oauth_states_table(
    SLACK_METADATA, SQLAlchemyOAuthStateStore.default_table_name
)

TARGET_METADATA: Final = (Base.metadata, SLACK_METADATA)


class CannotAdopt(Exception):
    """A database without alembic_version whose tables are not the ones the baseline knows."""
