"""Per-workspace MetaStudio connections, ``/task`` guardrails and their audit log.

Each Slack workspace (``team_id``) connects its own MetaStudio project. Secrets (access key,
secret key, security token, IAM password) are stored only as Fernet tokens (``bot.db.crypto``) and
leave this module decrypted only through ``credentials()``, as ``SecretStr``. Everything else
returned is a frozen dataclass that holds no secret, so it can be rendered, logged or cached.

Only the secrets of the current credential type are kept: switching from AK/SK to an IAM user
deletes the stored AK/SK, so nothing lingers that nobody can see or use.

The tables share ``bot.db.base.Base`` with the follow-up tables.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, cast

from sqlalchemy import CheckConstraint, Index, Integer, String, Table, Text, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot import messages
from bot.db.base import Base, Database, Json, Store, record_of, retry_on_conflict, utcnow
from bot.db.crypto import SecretBox
from bot.logs import RedactingFilter
from bot.metastudio.credentials import (
    CloudCredentials,
    CredentialKind,
    CredentialsIncomplete,
    credentials_of,
    parts_of,
)
from bot.metastudio.regions import Endpoints, region_endpoints

__all__ = [
    "CONFIGURABLE_KINDS",
    "AuditAction",
    "AuditEntry",
    "Connection",
    "ConnectionForm",
    "Guardrails",
    "WorkspaceStore",
    "mask_access_key",
]

# Kinds an admin can configure; an IAM token expires within a day, so it is not one of them.
CONFIGURABLE_KINDS: Final = (CredentialKind.AKSK, CredentialKind.TEMPORARY_AKSK, CredentialKind.IAM_PASSWORD)
LAST_ERROR_MAX_CHARS: Final = 300
AUDIT_DETAIL_MAX_CHARS: Final = 500
# record_call() runs on every MetaStudio call; an unchanged outcome is written at most this often.
RECORD_INTERVAL_SECONDS: Final = 60.0
_redactor = RedactingFilter()
_KIND_CHECK = "kind IN ({})".format(", ".join(f"'{kind.value}'" for kind in CONFIGURABLE_KINDS))


class AuditAction(StrEnum):
    """What an audit entry records, stored as its value. Entries are read back as plain text, so
    the App Home can show an action this release does not know."""

    CONNECTION_UPDATED = "connection.updated"
    GUARDRAILS_UPDATED = "guardrails.updated"
    LANGUAGE_UPDATED = "language.updated"


class ConnectionRow(Base):
    __tablename__ = "connections"
    __table_args__ = (CheckConstraint(_KIND_CHECK, name="kind"),)

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    region: Mapped[str] = mapped_column(String(64))
    endpoint: Mapped[str | None] = mapped_column(String(500))
    project_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    # *_enc columns hold Fernet tokens only, never plaintext.
    access_key_enc: Mapped[str | None] = mapped_column(Text)
    access_key_hint: Mapped[str | None] = mapped_column(String(32))
    secret_key_enc: Mapped[str | None] = mapped_column(Text)
    security_token_enc: Mapped[str | None] = mapped_column(Text)
    iam_username: Mapped[str | None] = mapped_column(String(128))
    iam_password_enc: Mapped[str | None] = mapped_column(Text)
    iam_domain: Mapped[str | None] = mapped_column(String(128))
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_MAX_CHARS))
    last_error_at: Mapped[datetime | None]
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class GuardrailsRow(Base):
    __tablename__ = "guardrails"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channels: Mapped[list[str]] = mapped_column(Json)
    usergroup_id: Mapped[str | None] = mapped_column(String(64))
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]
    # What the channel reads: None follows the person who asked, else a catalog id.
    channel_language: Mapped[str | None] = mapped_column(String(16))


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_team_at", "team_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(AUDIT_DETAIL_MAX_CHARS))
    at: Mapped[datetime]


_TABLES = [cast(Table, model.__table__) for model in (ConnectionRow, GuardrailsRow, AuditRow)]
_SECRET_COLUMNS: Final = ("access_key_enc", "secret_key_enc", "security_token_enc", "iam_password_enc")
# Where each credential part (``credentials.parts_of``) is kept: secrets only encrypted, the IAM
# names as they are, for App Home to show.
_PART_COLUMNS: Final = {
    "access_key": "access_key_enc",
    "secret_key": "secret_key_enc",
    "security_token": "security_token_enc",
    "iam_password": "iam_password_enc",
    "iam_username": "iam_username",
    "iam_domain": "iam_domain",
}


@dataclass(frozen=True, slots=True)
class Connection:
    """A workspace's MetaStudio connection as anyone may see it: no secret, only a masked AK."""

    team_id: str
    region: str  # "" when only an endpoint override was given
    endpoint: str | None
    project_id: str
    kind: CredentialKind
    access_key_hint: str | None
    has_secret: bool  # every secret the credential type needs is stored
    iam_username: str | None
    iam_domain: str | None
    last_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    updated_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Guardrails:
    """Where ``/task`` may be used: listed channels and/or members of one user group."""

    team_id: str
    channels: tuple[str, ...]
    usergroup_id: str | None
    updated_by: str | None
    updated_at: datetime | None
    # None: cards and alerts follow the person who asked; else a catalog id (messages.SUPPORTED).
    channel_language: str | None = None

    @property
    def unrestricted(self) -> bool:
        return not self.channels and self.usergroup_id is None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    team_id: str
    user_id: str
    action: str
    detail: str  # never a secret
    at: datetime


@dataclass(frozen=True, slots=True)
class ConnectionForm:
    """A submitted connection. A secret that is None keeps the stored one (same credential type only)."""

    region: str
    endpoint: str | None
    project_id: str
    kind: CredentialKind
    access_key: str | None
    secret_key: str | None
    security_token: str | None
    iam_username: str | None
    iam_password: str | None
    iam_domain: str | None

    def __repr__(self) -> str:
        # The default repr would print the secrets into any traceback or log line that shows it.
        return (
            f"ConnectionForm(region={self.region!r}, endpoint={self.endpoint!r}, "
            f"project_id={self.project_id!r}, kind={self.kind.value!r}, secrets=[redacted])"
        )


def mask_access_key(access_key: str) -> str:
    """``AKIA…9XQ2``: enough to recognise a key, too little to use it."""
    if len(access_key) >= 12:
        return f"{access_key[:4]}…{access_key[-4:]}"
    if len(access_key) >= 6:
        return f"{access_key[:2]}…{access_key[-2:]}"
    return "…"


def _missing(row: ConnectionRow) -> list[str]:
    """The parts the row's kind needs that it does not hold."""
    return [name for name in parts_of(CredentialKind(row.kind)) if not getattr(row, _PART_COLUMNS[name])]


def _has_secret(row: ConnectionRow) -> bool:
    return not _missing(row)


def _connection(row: ConnectionRow) -> Connection:
    return record_of(Connection, row, kind=CredentialKind(row.kind), has_secret=_has_secret(row))


def _guardrails(row: GuardrailsRow) -> Guardrails:
    return record_of(Guardrails, row, channels=tuple(row.channels))


def _audit(row: AuditRow) -> AuditEntry:
    return record_of(AuditEntry, row)


class WorkspaceStore(Store):
    """Connections, guardrails and audit log of every workspace. Safe to share between coroutines."""

    def __init__(
        self, database: Database, box: SecretBox, *, record_interval: float = RECORD_INTERVAL_SECONDS
    ) -> None:
        super().__init__(database)
        self._box = box
        self._record_interval = record_interval
        # team_id -> (last recorded outcome, monotonic time it was written)
        self._recorded: dict[str, tuple[tuple[bool, str | None], float]] = {}

    async def create_all(self) -> None:
        """For tests, like ``Database.create_all``; deployments migrate (``bot.db.schema``)."""
        async with self.database.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all, tables=_TABLES)

    # -- connection ----------------------------------------------------------------------------

    async def get_connection(self, team_id: str) -> Connection | None:
        async with self._read() as session:
            row = await session.get(ConnectionRow, team_id)
            return None if row is None else _connection(row)

    async def credentials(self, team_id: str) -> CloudCredentials | None:
        """Decrypted credentials for ``MetaStudioClient``; None when not configured.

        Raises ``bot.db.crypto.SecretUnreadable`` when the key that encrypted them is gone.
        """
        async with self._read() as session:
            row = await session.get(ConnectionRow, team_id)
        if row is None or not _has_secret(row):
            return None
        parts = {name: self._part(row, _PART_COLUMNS[name]) for name in parts_of(CredentialKind(row.kind))}
        return credentials_of(CredentialKind(row.kind), row.project_id, parts)

    def _part(self, row: ConnectionRow, column: str) -> str | None:
        value: str | None = getattr(row, column)
        return self._box.decrypt(value) if value is not None and column in _SECRET_COLUMNS else value

    async def connection_version(self, team_id: str) -> datetime | None:
        """When the connection was last saved (None: there is none): every save sets it anew,
        so a replica compares it with what it built its client from (one primary-key read)."""
        async with self._read() as session:
            return await session.scalar(
                select(ConnectionRow.updated_at).where(ConnectionRow.team_id == team_id)
            )

    async def endpoint_for(self, team_id: str) -> Endpoints | None:
        """(MetaStudio endpoint, IAM endpoint) of the workspace's connection; None when not configured."""
        async with self._read() as session:
            row = await session.get(ConnectionRow, team_id)
        return None if row is None else region_endpoints(row.region, row.endpoint)

    async def save_connection(self, team_id: str, form: ConnectionForm, *, user_id: str) -> Connection:
        """Create or replace the connection and audit it.

        A secret the form leaves None is kept only when the credential type is unchanged;
        secrets of other types are deleted. Raises ``ValueError`` (naming the field, never a
        value) when the result would lack something the credential type needs. The last call
        outcome is cleared: it described the previous settings.
        """
        if form.kind not in CONFIGURABLE_KINDS:
            raise ValueError(f"credential type {form.kind.value} cannot be configured for a workspace")

        # Two first saves raced on PostgreSQL; the next attempt updates the winner's row.
        async def attempt() -> Connection:
            async with self._write() as session:
                row = await session.scalar(
                    select(ConnectionRow).where(ConnectionRow.team_id == team_id).with_for_update()
                )
                if row is None:
                    row = ConnectionRow(team_id=team_id)
                    session.add(row)
                    same_kind = False
                else:
                    same_kind = row.kind == form.kind.value
                changed = self._apply(row, form, keep=same_kind)
                row.region = form.region
                row.endpoint = form.endpoint or None
                row.project_id = form.project_id
                row.kind = form.kind.value
                row.last_ok_at = row.last_error = row.last_error_at = None
                row.updated_by = user_id
                row.updated_at = now = utcnow()
                self._check_complete(row)
                session.add(
                    self._audit_row(
                        team_id, user_id, AuditAction.CONNECTION_UPDATED, _detail(form, changed), now
                    )
                )
                await session.flush()
                self._recorded.pop(team_id, None)
                return _connection(row)

        return await retry_on_conflict(attempt)

    def _apply(self, row: ConnectionRow, form: ConnectionForm, *, keep: bool) -> list[str]:
        """Set the secret columns from the form; returns the names of the secrets it replaced."""
        needed = parts_of(form.kind)
        changed: list[str] = []
        for name, column in _PART_COLUMNS.items():
            value: str | None = getattr(form, name) if name in needed else None
            if column not in _SECRET_COLUMNS:
                setattr(row, column, value or None)
            elif value:
                setattr(row, column, self._box.encrypt(value))
                changed.append(name)
            elif not (name in needed and keep):
                setattr(row, column, None)
        has_key = "access_key" in needed
        if form.access_key and has_key:
            row.access_key_hint = mask_access_key(form.access_key)
        elif not (has_key and keep):
            row.access_key_hint = None
        return changed

    @staticmethod
    def _check_complete(row: ConnectionRow) -> None:
        if not row.project_id:
            raise ValueError("project_id is required")
        if not row.region and not row.endpoint:
            raise ValueError("a region or an endpoint is required")
        missing = _missing(row)
        if missing:
            raise CredentialsIncomplete.missing(CredentialKind(row.kind), missing)

    async def record_call(self, team_id: str, *, ok: bool, error: str | None = None) -> None:
        """Note the outcome of a MetaStudio call for App Home.

        ``error`` is a user-facing sentence; it is redacted and cut to 300 characters. The last
        error is kept after a success, with its time, so App Home can show both. An outcome equal
        to the last one written is written again only after ``record_interval`` seconds.
        """
        clean = None if ok or not error else _redactor.redact(error)[:LAST_ERROR_MAX_CHARS]
        outcome = (ok, clean)
        now_mono = time.monotonic()
        previous = self._recorded.get(team_id)
        if previous is not None and previous[0] == outcome and now_mono - previous[1] < self._record_interval:
            return
        values: dict[str, Any] = (
            {"last_ok_at": utcnow()} if ok else {"last_error": clean, "last_error_at": utcnow()}
        )
        async with self._write() as session:
            await session.execute(
                update(ConnectionRow)
                .where(ConnectionRow.team_id == team_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        self._recorded[team_id] = (outcome, now_mono)

    # -- guardrails ----------------------------------------------------------------------------

    async def get_guardrails(self, team_id: str) -> Guardrails:
        """The workspace's guardrails; unrestricted when never set."""
        async with self._read() as session:
            row = await session.get(GuardrailsRow, team_id)
        if row is None:
            return Guardrails(
                team_id=team_id, channels=(), usergroup_id=None, updated_by=None, updated_at=None
            )
        return _guardrails(row)

    async def save_guardrails(
        self, team_id: str, *, channels: Sequence[str], usergroup_id: str | None, user_id: str
    ) -> Guardrails:
        if isinstance(channels, str):
            raise TypeError("channels must be a sequence of channel ids, not one string")
        wanted = list(dict.fromkeys(channel.strip() for channel in channels if channel.strip()))
        group = (usergroup_id or "").strip() or None

        def change(row: GuardrailsRow) -> None:
            row.channels = wanted
            row.usergroup_id = group

        detail = f"channels={','.join(wanted) or 'any'} usergroup={group or 'any'}"
        return await self._change_guardrails(team_id, user_id, AuditAction.GUARDRAILS_UPDATED, detail, change)

    async def save_channel_language(self, team_id: str, language: str | None, *, user_id: str) -> Guardrails:
        """Set what the channel reads (None: follow the person who asked); audited like guardrails."""
        if language is not None and language not in messages.SUPPORTED:
            raise ValueError(f"unknown language {language!r}")

        def change(row: GuardrailsRow) -> None:
            row.channel_language = language

        detail = f"channel_language={language or 'follow'}"
        return await self._change_guardrails(team_id, user_id, AuditAction.LANGUAGE_UPDATED, detail, change)

    async def _change_guardrails(
        self,
        team_id: str,
        user_id: str,
        action: AuditAction,
        detail: str,
        change: Callable[[GuardrailsRow], None],
    ) -> Guardrails:
        """Create or change the workspace's guardrails row and audit it, in one transaction."""

        async def attempt() -> Guardrails:
            async with self._write() as session:
                row = await session.scalar(
                    select(GuardrailsRow).where(GuardrailsRow.team_id == team_id).with_for_update()
                )
                if row is None:
                    row = GuardrailsRow(team_id=team_id, channels=[], usergroup_id=None)
                    session.add(row)
                change(row)
                row.updated_by = user_id
                row.updated_at = now = utcnow()
                session.add(self._audit_row(team_id, user_id, action, detail, now))
                await session.flush()
                return _guardrails(row)

        return await retry_on_conflict(attempt)

    # -- audit and maintenance -----------------------------------------------------------------

    @staticmethod
    def _audit_row(team_id: str, user_id: str, action: AuditAction, detail: str, at: datetime) -> AuditRow:
        if len(detail) > AUDIT_DETAIL_MAX_CHARS:
            detail = detail[: AUDIT_DETAIL_MAX_CHARS - 1] + "…"
        return AuditRow(team_id=team_id, user_id=user_id, action=action.value, detail=detail, at=at)

    async def audit(self, team_id: str, limit: int = 10) -> list[AuditEntry]:
        """The workspace's latest audit entries, newest first."""
        async with self._read() as session:
            rows = await session.scalars(
                select(AuditRow)
                .where(AuditRow.team_id == team_id)
                .order_by(AuditRow.at.desc(), AuditRow.id.desc())
                .limit(max(0, limit))
            )
            return [_audit(row) for row in rows]

    async def delete_team(self, team_id: str) -> None:
        """Forget a workspace's connection, guardrails and audit log (app uninstalled)."""
        async with self._write() as session:
            await self.delete_team_in(session, team_id)
        self.forget_recorded(team_id)

    @staticmethod
    async def delete_team_in(session: AsyncSession, team_id: str) -> None:
        """``delete_team`` inside the caller's transaction (``bot.db.departures`` joins several)."""
        for model in (ConnectionRow, GuardrailsRow, AuditRow):
            await session.execute(
                delete(model).where(model.team_id == team_id).execution_options(synchronize_session=False)
            )

    def forget_recorded(self, team_id: str) -> None:
        self._recorded.pop(team_id, None)

    async def rotate_keys(self) -> int:
        """Re-encrypt every stored secret with the primary key; returns the connections touched.

        Raises ``bot.db.crypto.SecretUnreadable`` (and changes nothing) when a secret cannot be
        decrypted with any configured key: dropping that key would lose it.
        """
        touched = 0
        async with self._write() as session:
            rows = (await session.scalars(select(ConnectionRow).order_by(ConnectionRow.team_id))).all()
            for row in rows:
                rotated = False
                for column in _SECRET_COLUMNS:
                    token = getattr(row, column)
                    if token is not None:
                        setattr(row, column, self._box.rotate(token))
                        rotated = True
                touched += rotated
        return touched


def _detail(form: ConnectionForm, changed: Sequence[str]) -> str:
    """What an admin changed, for the audit log: settings and the names of replaced secrets only."""
    parts = [f"region={form.region or '-'}"]
    if form.endpoint:
        parts.append(f"endpoint={form.endpoint}")
    parts += [f"project_id={form.project_id}", f"kind={form.kind.value}"]
    if "iam_username" in parts_of(form.kind):
        parts.append(f"iam_user={form.iam_username}@{form.iam_domain}")
    parts.append(f"replaced={','.join(changed) or 'none'}")
    return " ".join(parts)
