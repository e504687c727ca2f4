"""shard leases: which replica polls which workspace (PostgreSQL replicas)

Two small tables (bot.db.leases): one row per workspace with active follow-ups, and one per
live replica (the fair share of workspaces divides by them). SQLite
databases get it too, empty, so every database has the same schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    op.create_table(
        "shard_leases",
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name="pk_shard_leases"),
    )
    op.create_table(
        "shard_replicas",
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name="pk_shard_replicas"),
    )


def downgrade() -> None:
    op.drop_table("shard_replicas")
    op.drop_table("shard_leases")
