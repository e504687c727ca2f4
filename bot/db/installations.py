"""slack_sdk's SQLAlchemy installation store, with every Slack token encrypted at rest.

Pattern: a decorator by subclassing. ``EncryptedInstallationStore`` keeps slack_sdk's queries,
tables and "latest bot token" logic, and only seals the secret fields on the way in and opens
them on the way out, with the same ``SecretBox`` (``TASKBOT_ENCRYPTION_KEY``, newest key first)
as the MetaStudio credentials.

Invariants:
- ``SECRET_FIELDS`` of an installation and ``BOT_SECRET_FIELDS`` of a bot are never written in
  plaintext; what a caller gets back from a ``find`` is plaintext again.
- Sealing is idempotent: slack_sdk's ``async_save`` calls ``async_save_bot`` with the already
  sealed copy, and a value that our keys already open is not sealed twice.
- A stored value without the Fernet prefix is a token written before encryption (legacy
  plaintext): it is read as it is, and ``rotate_keys`` (``taskbot rotate-keys``) encrypts it.
  A value with the prefix that no key opens raises ``SecretUnreadable``; it is never passed on.
- The token columns are ``Text`` on PostgreSQL: a Fernet token is about 1.4 times its plaintext plus 80
  characters, more than slack_sdk's ``String(200)`` holds for a rotating token
  (migration 0004 widens them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.sqlalchemy import (
    AsyncSQLAlchemyInstallationStore,
    SQLAlchemyInstallationStore,
)

from bot.db.crypto import SecretBox, SecretUnreadable

__all__ = [
    "BOT_SECRET_FIELDS",
    "SECRET_FIELDS",
    "EncryptedInstallationStore",
    "TokenRotation",
    "build_bots_table",
    "build_installations_table",
]

BOT_SECRET_FIELDS: Final = ("bot_token", "bot_refresh_token")
SECRET_FIELDS: Final = (*BOT_SECRET_FIELDS, "user_token", "user_refresh_token", "incoming_webhook_url")
# Every Fernet token starts with version byte 0x80 and a 64-bit timestamp: "gAAAAA" in base64.
FERNET_PREFIX: Final = "gAAAAA"


def _widen(table: sa.Table, fields: tuple[str, ...]) -> sa.Table:
    for name in fields:
        # PostgreSQL enforces VARCHAR(200); SQLite never does, so its column stays as slack_sdk
        # made it and its 0.1.0 DDL is untouched (migration 0004 alters PostgreSQL only).
        table.c[name].type = sa.String(200).with_variant(sa.Text(), "postgresql")
    return table


def build_installations_table(metadata: sa.MetaData, table_name: str) -> sa.Table:
    """slack_sdk's table, with the secret columns wide enough for their ciphertext."""
    return _widen(SQLAlchemyInstallationStore.build_installations_table(metadata, table_name), SECRET_FIELDS)


def build_bots_table(metadata: sa.MetaData, table_name: str) -> sa.Table:
    return _widen(SQLAlchemyInstallationStore.build_bots_table(metadata, table_name), BOT_SECRET_FIELDS)


@dataclass(frozen=True)
class TokenRotation:
    """What ``rotate_keys`` did: rows re-encrypted, and how many tokens in them were legacy plaintext."""

    rows: int
    plaintext: int


class EncryptedInstallationStore(AsyncSQLAlchemyInstallationStore):
    def __init__(self, client_id: str, engine: Any, box: SecretBox, **kwargs: Any) -> None:
        super().__init__(client_id=client_id, engine=engine, **kwargs)
        self._box = box

    @classmethod
    def build_installations_table(cls, metadata: sa.MetaData, table_name: str) -> sa.Table:
        return build_installations_table(metadata, table_name)

    @classmethod
    def build_bots_table(cls, metadata: sa.MetaData, table_name: str) -> sa.Table:
        return build_bots_table(metadata, table_name)

    def _seal(self, value: str | None) -> str | None:
        if value is None or self._is_sealed(value):
            return value
        return self._box.encrypt(value)

    def _is_sealed(self, value: str) -> bool:
        if not value.startswith(FERNET_PREFIX):
            return False
        try:
            self._box.decrypt(value)
        except SecretUnreadable:
            return False
        return True

    def _open(self, value: str | None) -> str | None:
        if value is None or not value.startswith(FERNET_PREFIX):
            return value  # None, or legacy plaintext from before encryption (see the module docstring)
        return self._box.decrypt(value)

    def _sealed_copy(self, entity: Any, fields: tuple[str, ...]) -> Any:
        sealed = copy.copy(entity)
        for name in fields:
            setattr(sealed, name, self._seal(getattr(entity, name)))
        return sealed

    def _opened(self, entity: Any, fields: tuple[str, ...]) -> Any:
        if entity is not None:
            for name in fields:
                setattr(entity, name, self._open(getattr(entity, name)))
        return entity

    async def async_save(self, installation: Installation) -> None:
        await super().async_save(self._sealed_copy(installation, SECRET_FIELDS))

    async def async_save_bot(self, bot: Bot) -> None:
        await super().async_save_bot(self._sealed_copy(bot, BOT_SECRET_FIELDS))

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        found = await super().async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=is_enterprise_install
        )
        return self._opened(found, BOT_SECRET_FIELDS)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        # slack_sdk may copy the latest bot's token fields (from our async_find_bot, so already
        # open) into the installation it found; opening plaintext again leaves it as it is.
        found = await super().async_find_installation(
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )
        return self._opened(found, SECRET_FIELDS)

    async def enterprise_of(self, team_id: str) -> str | None:
        """The Enterprise Grid org (E…) a workspace was installed in, None outside any org.

        A request names the org; work outside one (alerts, live cards, App Home contacts) has only
        the team id, and slack_sdk's find reads ``enterprise_id=None`` as ``IS NULL``. Slack's team
        ids are unique across orgs, so the team's newest installation row says which org it is in.
        """
        table = self.installations
        query = (
            sa.select(table.c.enterprise_id)
            .where(table.c.client_id == self.client_id, table.c.team_id == team_id)
            .order_by(table.c.installed_at.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar()

    async def find_team(self, team_id: str) -> Installation | None:
        """The workspace's installation (tokens opened), inside an Enterprise Grid org or not."""
        return await self.async_find_installation(
            enterprise_id=await self.enterprise_of(team_id), team_id=team_id
        )

    async def rotate_keys(self) -> TokenRotation:
        """Re-encrypt every stored token with the primary key, legacy plaintext included.

        One transaction: raises ``SecretUnreadable`` and changes nothing when a token cannot be
        opened with any configured key (dropping that key would lose it).
        """
        rows = plaintext = 0
        async with self.engine.begin() as conn:
            for table, fields in ((self.installations, SECRET_FIELDS), (self.bots, BOT_SECRET_FIELDS)):
                columns = [table.c.id, *(table.c[name] for name in fields)]
                for row in (await conn.execute(sa.select(*columns).order_by(table.c.id))).mappings():
                    values: dict[str, str] = {}
                    for name in fields:
                        value = row[name]
                        if value is None:
                            continue
                        if value.startswith(FERNET_PREFIX):
                            values[name] = self._box.rotate(value)
                        else:
                            values[name] = self._box.encrypt(value)
                            plaintext += 1
                    if values:
                        await conn.execute(table.update().where(table.c.id == row["id"]).values(**values))
                        rows += 1
        return TokenRotation(rows=rows, plaintext=plaintext)
