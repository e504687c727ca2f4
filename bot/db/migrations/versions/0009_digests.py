"""digests: a channel's scheduled summary, and the deliveries that carry its runs

A new ``digests`` table (one row per channel), ``deliveries.digest_id`` (which digest a run
belongs to; NULL for every row made before) and ``digest`` joins the delivery kinds. Owed
deliveries are untouched: the kind check only widens, and the new column is nullable.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"

_OLD_KINDS = "kind IN ('finished', 'expired', 'not_found', 'feed')"
_NEW_KINDS = "kind IN ('finished', 'expired', 'not_found', 'feed', 'digest')"


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("cadence", sa.String(length=16), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("quiet", sa.Boolean(), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("cadence IN ('daily', 'weekdays', 'weekly')", name=op.f("ck_digests_cadence")),
        sa.CheckConstraint(
            "hour >= 0 AND hour < 24 AND minute >= 0 AND minute < 60", name=op.f("ck_digests_time")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
    )
    op.create_index(op.f("ix_digests_team_id"), "digests", ["team_id"], unique=False)
    # No foreign key: a run keeps its figures when its digest is turned off, and SQLite cannot
    # drop a column that a foreign key names, which the downgrade must do in place.
    op.add_column("deliveries", sa.Column("digest_id", sa.Integer(), nullable=True))
    _kinds(_OLD_KINDS, _NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE kind = 'digest'")
    _kinds(_NEW_KINDS, _OLD_KINDS)
    op.drop_column("deliveries", "digest_id")
    op.drop_index(op.f("ix_digests_team_id"), table_name="digests")
    op.drop_table("digests")


def _kinds(was: str, to: str) -> None:
    """Replace the delivery kind check.

    SQLite cannot alter a constraint, and a batch copy would rewrite the table's whole DDL (the
    downgrade must leave the 0.1.0 DDL exactly, tests/db/test_migrations.py). Widening or
    narrowing a CHECK changes nothing on disk, so SQLite takes the documented in-place edit of
    the stored schema text (sqlite.org, "ALTER TABLE", section 7: changes that do not affect
    the on-disk content), and ``integrity_check`` confirms the result.
    """
    if op.get_context().dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_deliveries_kind"), "deliveries", type_="check")
        op.create_check_constraint(op.f("ck_deliveries_kind"), "deliveries", to)
        return
    bind = op.get_bind()
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.execute(
        sa.text(
            "UPDATE sqlite_master SET sql = replace(sql, :was, :to) WHERE type = 'table' AND name = 'deliveries'"
        ),
        {"was": was, "to": to},
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")
    problem = bind.exec_driver_sql("PRAGMA integrity_check").scalar_one()
    if problem != "ok":
        raise RuntimeError(f"deliveries schema edit failed the integrity check: {problem}")
