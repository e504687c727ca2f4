"""baseline: the schema taskbot 0.1.0 created with create_all()

The tables are written out here as they were, not imported from the models, so this
revision means the same thing forever. ``create_all(checkfirst=True)`` on this frozen metadata
creates exactly the DDL the release created, and only the tables a database lacks: that is how
a database made before migrations is adopted (one made in single-workspace mode has no
slack_* tables; one touched only by ``rotate-keys`` has just the workspace tables). A table
that is there must have every column listed here, or the database is not one this baseline
can adopt and nothing is changed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from bot.db.migrations import CannotAdopt

revision: str = "0001"
down_revision: str | None = None

_Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ACTIVE = sa.text("status = 'active'")


def _when(time_zone: bool = True) -> sa.DateTime:
    return sa.DateTime(timezone=time_zone)


def _status(table: str, values: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(f"status IN ({values})", name=f"ck_{table}_status")


def _partial_unique(name: str, *columns: str) -> sa.Index:
    return sa.Index(name, *columns, unique=True, sqlite_where=_ACTIVE, postgresql_where=_ACTIVE)


def _metadata() -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table(
        "watches",
        meta,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("closed_at", _when(), nullable=True),
        sa.Column("snapshot", _Json, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_watches"),
        _status("watches", "'active', 'finished', 'expired', 'not_found', 'cancelled'"),
        _partial_unique("uq_watches_active_task", "team_id", "task_id"),
        sa.Index("ix_watches_status", "status"),
    )
    sa.Table(
        "subscribers",
        meta,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("message_ts", sa.String(32), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_reason", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        _status("subscribers", "'active', 'cancelled', 'closed'"),
        sa.ForeignKeyConstraint(["watch_id"], ["watches.id"], name="fk_subscribers_watch_id_watches"),
        _partial_unique("uq_subscribers_active_channel", "watch_id", "channel_id"),
        sa.Index("ix_subscribers_watch_status", "watch_id", "status"),
        sa.Index("ix_subscribers_channel", "team_id", "channel_id", "status"),
    )
    sa.Table(
        "feeds",
        meta,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("resources", _Json, nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feeds"),
        _status("feeds", "'active', 'cancelled'"),
        _partial_unique("uq_feeds_active_channel", "team_id", "channel_id"),
        sa.Index("ix_feeds_status", "status"),
    )
    sa.Table(
        "deliveries",
        meta,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("feed_id", sa.Integer(), nullable=True),
        sa.Column("thread_ts", sa.String(32), nullable=True),
        sa.Column("payload", _Json, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("attempt_at", _when(), nullable=True),
        sa.Column("sent_at", _when(), nullable=True),
        sa.Column("slack_ts", sa.String(32), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.CheckConstraint("kind IN ('finished', 'expired', 'not_found', 'feed')", name="ck_deliveries_kind"),
        _status("deliveries", "'pending', 'sending', 'sent', 'failed'"),
        sa.UniqueConstraint("key", name="uq_deliveries_key"),
        sa.UniqueConstraint("subscriber_id", "kind", name="uq_deliveries_subscriber_kind"),
        sa.UniqueConstraint("feed_id", "task_id", name="uq_deliveries_feed_task"),
        sa.ForeignKeyConstraint(["watch_id"], ["watches.id"], name="fk_deliveries_watch_id_watches"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name="fk_deliveries_subscriber_id_subscribers"
        ),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], name="fk_deliveries_feed_id_feeds"),
        sa.Index("ix_deliveries_status", "status", "created_at"),
        sa.Index("ix_deliveries_team", "team_id"),
    )
    sa.Table(
        "connections",
        meta,
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(500), nullable=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("access_key_enc", sa.Text(), nullable=True),
        sa.Column("access_key_hint", sa.String(32), nullable=True),
        sa.Column("secret_key_enc", sa.Text(), nullable=True),
        sa.Column("security_token_enc", sa.Text(), nullable=True),
        sa.Column("iam_username", sa.String(128), nullable=True),
        sa.Column("iam_password_enc", sa.Text(), nullable=True),
        sa.Column("iam_domain", sa.String(128), nullable=True),
        sa.Column("last_ok_at", _when(), nullable=True),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.Column("last_error_at", _when(), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name="pk_connections"),
        sa.CheckConstraint("kind IN ('aksk', 'temporary_aksk', 'iam_password')", name="ck_connections_kind"),
    )
    sa.Table(
        "guardrails",
        meta,
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("channels", _Json, nullable=False),
        sa.Column("usergroup_id", sa.String(64), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name="pk_guardrails"),
    )
    sa.Table(
        "audit_log",
        meta,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.Index("ix_audit_log_team_at", "team_id", "at"),
    )

    # slack_sdk 3.x's installation and OAuth state stores (SQLAlchemyInstallationStore,
    # SQLAlchemyOAuthStateStore), as their create_tables() made them; their constraints carry
    # the database's own default names.
    def owner_columns(*, enterprise_url: bool) -> list[sa.Column[object]]:
        """The row's id and the app and workspace it belongs to; installations also keep the URL."""
        url: list[sa.Column[object]] = (
            [sa.Column("enterprise_url", sa.String(200), nullable=True)] if enterprise_url else []
        )
        return [
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("client_id", sa.String(32), nullable=False),
            sa.Column("app_id", sa.String(32), nullable=False),
            sa.Column("enterprise_id", sa.String(32), nullable=True),
            sa.Column("enterprise_name", sa.String(200), nullable=True),
            *url,
            sa.Column("team_id", sa.String(32), nullable=True),
            sa.Column("team_name", sa.String(200), nullable=True),
        ]

    def bot_columns() -> list[sa.Column[object]]:
        return [
            sa.Column("bot_token", sa.String(200), nullable=True),
            sa.Column("bot_id", sa.String(32), nullable=True),
            sa.Column("bot_user_id", sa.String(32), nullable=True),
            sa.Column("bot_scopes", sa.String(1000), nullable=True),
            sa.Column("bot_refresh_token", sa.String(200), nullable=True),
            sa.Column("bot_token_expires_at", _when(False), nullable=True),
        ]

    sa.Table(
        "slack_bots",
        meta,
        *owner_columns(enterprise_url=False),
        *bot_columns(),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("installed_at", _when(False), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
    )
    sa.Table(
        "slack_installations",
        meta,
        *owner_columns(enterprise_url=True),
        *bot_columns(),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("user_token", sa.String(200), nullable=True),
        sa.Column("user_scopes", sa.String(1000), nullable=True),
        sa.Column("user_refresh_token", sa.String(200), nullable=True),
        sa.Column("user_token_expires_at", _when(False), nullable=True),
        sa.Column("incoming_webhook_url", sa.String(200), nullable=True),
        sa.Column("incoming_webhook_channel", sa.String(200), nullable=True),
        sa.Column("incoming_webhook_channel_id", sa.String(200), nullable=True),
        sa.Column("incoming_webhook_configuration_url", sa.String(200), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("token_type", sa.String(32), nullable=True),
        sa.Column("installed_at", _when(False), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.Index(
            "slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"
        ),
    )
    sa.Table(
        "slack_oauth_states",
        meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("state", sa.String(200), nullable=False),
        sa.Column("expire_at", _when(False), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    return meta


def upgrade() -> None:
    bind = op.get_bind()
    meta = _metadata()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in meta.sorted_tables:
        if table.name in present:
            missing = [
                c.name
                for c in table.columns
                if c.name not in {r["name"] for r in inspector.get_columns(table.name)}
            ]
            if missing:
                raise CannotAdopt(
                    f"Table {table.name} has no column {missing[0]}, so this database was not made by taskbot "
                    "0.1.0 and cannot be adopted; nothing was changed."
                )
    meta.create_all(bind, checkfirst=True)


def downgrade() -> None:
    _metadata().drop_all(op.get_bind())
