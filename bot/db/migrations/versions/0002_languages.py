"""languages: the workspace's channel language and the language each live card keeps

``guardrails.channel_language`` is the App Home setting (NULL: follow the person who asked).
``subscribers.locale`` and ``feeds.locale`` fix the language of a channel's card and alerts when
the watch or feed starts; ``deliveries.locale`` copies it when an alert is queued, so a restart
or a later change of setting never changes a message already owed. All nullable: rows made
before this revision read as English, which is what they were drawn in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"

_COLUMNS = (
    ("guardrails", "channel_language"),
    ("subscribers", "locale"),
    ("feeds", "locale"),
    ("deliveries", "locale"),
)


def upgrade() -> None:
    for table, column in _COLUMNS:
        op.add_column(table, sa.Column(column, sa.String(16), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE, not a batch copy: SQLite (3.35+) drops a column in place, so a
    # downgraded database keeps the exact 0001 DDL (tests/test_migrations.py compares it).
    for table, column in reversed(_COLUMNS):
        op.drop_column(table, column)
