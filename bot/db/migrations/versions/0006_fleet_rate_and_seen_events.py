"""fleet: shared rate buckets per team and the Slack event ids already handled

Two new tables, nothing existing changes. ``rate_buckets`` is only written on PostgreSQL (the
fleet-wide API rate); ``slack_events_seen`` on both backends (retries of one event do no work
twice).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("command_due", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_rate_buckets")),
    )
    op.create_table(
        "slack_events_seen",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_slack_events_seen")),
    )
    op.create_index(op.f("ix_slack_events_seen_seen_at"), "slack_events_seen", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_slack_events_seen_seen_at"), table_name="slack_events_seen")
    op.drop_table("slack_events_seen")
    op.drop_table("rate_buckets")
