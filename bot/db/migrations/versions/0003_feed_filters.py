"""feed filters: only tasks that had failures, only one operator's tasks

One nullable JSON column on ``feeds``: existing feeds read as unfiltered (NULL), so the upgrade
needs no data change and no table rewrite (SQLite adds a nullable column in place).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"

_Json = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.add_column("feeds", sa.Column("filters", _Json, nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE, as in 0002: a batch copy would rewrite the SQLite DDL of ``feeds``.
    op.drop_column("feeds", "filters")
