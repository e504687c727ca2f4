"""Workspaces that left (``app_uninstalled``, a revoked bot token) until all of theirs is gone.

Slack never redelivers an event it got a 200 for, so the cleanup must not depend on the process
living on after the ack. The pattern is a recorded intent (a transactional outbox of one kind
of job): ``record`` writes the team's row before the 200 leaves; ``finish`` deletes everything
of the workspace, and the row, in ONE transaction. A failure (a lock, a dropped connection, a
crash) leaves the row, and the next start or sweep runs ``finish`` again; it is idempotent.

What ``finish`` deletes: slack_sdk's installations and bots of the team in any Enterprise Grid
org, its connection (the MetaStudio keys), guardrails and audit log, its watches, subscribers,
deliveries, feeds, rate bucket and shard lease.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import String, column, delete, select, table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from bot.db.base import Base, Database, utcnow
from bot.db.followups import FollowUpStore
from bot.db.workspaces import WorkspaceStore

__all__ = ["DepartureRow", "Departures"]

# slack_sdk's tables, by name and the one column we filter on: their models are slack_sdk's.
_SLACK_TABLES = tuple(
    table(name, column("team_id"))
    for name in (
        SQLAlchemyInstallationStore.default_installations_table_name,
        SQLAlchemyInstallationStore.default_bots_table_name,
    )
)


class DepartureRow(Base):
    __tablename__ = "departures"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    requested_at: Mapped[datetime]


class Departures:
    def __init__(self, database: Database) -> None:
        self._transactions = database.transactions
        self._dialect = database.engine.dialect.name

    async def record(self, team_id: str) -> None:
        """The workspace left: remember it until ``finish`` has deleted everything of it."""
        insert = pg_insert if self._dialect == "postgresql" else sqlite_insert
        statement = (
            insert(DepartureRow)
            .values(team_id=team_id[:64], requested_at=utcnow())
            .on_conflict_do_nothing(index_elements=["team_id"])
        )
        async with self._transactions.write() as session:
            await session.execute(statement)

    async def pending(self) -> list[str]:
        async with self._transactions.read() as session:
            return list(
                await session.scalars(select(DepartureRow.team_id).order_by(DepartureRow.requested_at))
            )

    async def finish(self, team_id: str) -> bool:
        """Delete every row of the workspace and its departure, in one transaction.

        False when there was nothing to finish (done already, or another replica is at it now:
        on PostgreSQL its row lock is skipped rather than waited for).
        """
        async with self._transactions.write() as session:
            claimed = await session.scalar(
                select(DepartureRow.team_id)
                .where(DepartureRow.team_id == team_id)
                .with_for_update(skip_locked=True)
            )
            if claimed is None:
                return False
            for slack_table in _SLACK_TABLES:
                await session.execute(delete(slack_table).where(slack_table.c.team_id == team_id))
            await WorkspaceStore.delete_team_in(session, team_id)
            await FollowUpStore.delete_team_in(session, team_id)
            await session.execute(delete(DepartureRow).where(DepartureRow.team_id == team_id))
        return True
