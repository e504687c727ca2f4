"""departures: workspaces that left, until everything of theirs is deleted

One new table, nothing existing changes (``bot.db.departures``): a row is written before
``app_uninstalled`` is acknowledged and deleted with the workspace's rows in one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    op.create_table(
        "departures",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_departures")),
    )


def downgrade() -> None:
    op.drop_table("departures")
