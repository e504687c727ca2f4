"""token columns for ciphertext: slack_installations and slack_bots hold encrypted tokens

A Fernet token is longer than the Slack token it seals (a 150-character rotating token
becomes about 290 characters); slack_sdk's ``String(200)`` would cut it on PostgreSQL. The
columns become ``Text``. Rows stay as they are: this migration has no key. Tokens written
before encryption are read as legacy plaintext until ``taskbot rotate-keys`` encrypts them
(bot.db.installations).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"

_COLUMNS = {
    "slack_installations": (
        "bot_token",
        "bot_refresh_token",
        "user_token",
        "user_refresh_token",
        "incoming_webhook_url",
    ),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}


def _alter(to: sa.types.TypeEngine[str], was: sa.types.TypeEngine[str]) -> None:
    if op.get_context().dialect.name == "sqlite":
        # SQLite never enforces VARCHAR(n) (the column has TEXT affinity), so ciphertext already
        # fits; rebuilding the table would only rewrite its DDL, and downgrades must restore
        # the 0.1.0 DDL exactly (tests/test_migrations.py).
        return
    for table, columns in _COLUMNS.items():
        for name in columns:
            op.alter_column(table, name, type_=to, existing_type=was, existing_nullable=True)


def upgrade() -> None:
    _alter(sa.Text(), sa.String(200))


def downgrade() -> None:
    # Ciphertext longer than 200 characters does not fit back; run this only on a database
    # whose tokens are short (or after deleting the installations).
    _alter(sa.String(200), sa.Text())
