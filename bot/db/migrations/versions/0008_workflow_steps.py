"""workflow steps: a watch subscriber (and its delivery) may be a Workflow Builder step

Three nullable columns, nothing existing changes meaning: ``subscribers.target`` and
``deliveries.target`` are NULL for a channel (every row written before this revision) and
``'step'`` for a ``wait_for_task`` step, whose ``channel_id`` then holds the function execution
id; ``subscribers.expires_at`` is a step's own time limit (NULL: the watch's). SQLite adds
nullable columns in place, so owed alerts are not copied or rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("target", sa.String(length=16), nullable=True))
    op.add_column("subscribers", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("deliveries", sa.Column("target", sa.String(length=16), nullable=True))


def downgrade() -> None:
    # An older release would read a step as a channel named like "Fx…" and post there: a step
    # still owed is dropped instead (its workflow times out in Slack), and its subscriber ends.
    op.execute("DELETE FROM deliveries WHERE target = 'step' AND status IN ('pending', 'sending')")
    op.execute(
        "UPDATE subscribers SET status = 'cancelled', closed_reason = 'downgraded' "
        "WHERE target = 'step' AND status = 'active'"
    )
    # Plain ALTER TABLE, as in 0003: a batch copy would rewrite the SQLite DDL of the tables.
    op.drop_column("deliveries", "target")
    op.drop_column("subscribers", "expires_at")
    op.drop_column("subscribers", "target")
