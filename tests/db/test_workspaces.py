"""bot.db.workspaces against real databases: every test runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Text, cast, select
from sqlalchemy.engine import make_url

from bot.db.base import Database
from bot.db.crypto import SecretBox, SecretUnreadable
from bot.db.workspaces import (
    _TABLES,
    ConnectionForm,
    WorkspaceStore,
    mask_access_key,
)
from bot.metastudio.credentials import AkSk, CredentialKind, IamPassword, KeyPair, TemporaryAkSk
from bot.metastudio.regions import region_endpoints
from tests.databases import open_database
from tests.support.forms import aksk_form

TEAM = "T0001"
OTHER = "T0002"
PROJECT = "0123456789abcdef0123456789abcdef"
AK = "HPUAQWERTYUIOP123456"
SK = "sk-5ecret-0123456789abcdefghijklmnopqrstuv"
TOKEN = "gQpjbi1ub3J0aC00" + "TokenBody" * 40
PASSWORD = "Pa55word-never-stored-in-clear"
SECRETS = (AK, SK, TOKEN, PASSWORD)


def _aksk(**changes: object) -> ConnectionForm:
    form = aksk_form(project_id=PROJECT, access_key=AK, secret_key=SK)
    return dataclasses.replace(form, **changes)  # type: ignore[arg-type]


def _temporary() -> ConnectionForm:
    return _aksk(kind=CredentialKind.TEMPORARY_AKSK, security_token=TOKEN, region="cn-east-3")


def _iam() -> ConnectionForm:
    return _aksk(
        kind=CredentialKind.IAM_PASSWORD,
        access_key=None,
        secret_key=None,
        iam_username="taskbot-reader",
        iam_password=PASSWORD,
        iam_domain="acme",
    )


@pytest.fixture
def key() -> str:
    return SecretBox.generate_key()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def store(database: Database, key: str) -> WorkspaceStore:
    store = WorkspaceStore(database, SecretBox([key]))
    await store.create_all()
    await store.create_all()  # idempotent
    return store


async def test_save_and_get_connection(store: WorkspaceStore) -> None:
    assert await store.get_connection(TEAM) is None
    assert await store.credentials(TEAM) is None
    assert await store.endpoint_for(TEAM) is None

    saved = await store.save_connection(TEAM, _aksk(), user_id="U1")

    assert saved == await store.get_connection(TEAM)
    assert (saved.team_id, saved.region, saved.endpoint, saved.project_id) == (
        TEAM,
        "cn-north-4",
        None,
        PROJECT,
    )
    assert saved.kind is CredentialKind.AKSK and saved.has_secret
    assert saved.access_key_hint == "HPUA…3456"
    assert saved.iam_username is None and saved.iam_domain is None
    assert saved.last_ok_at is None and saved.last_error is None and saved.last_error_at is None
    assert saved.updated_by == "U1" and saved.updated_at.tzinfo is not None
    assert await store.get_connection(OTHER) is None
    for secret in SECRETS:
        assert secret not in repr(saved) and secret not in repr(
            _aksk(security_token=TOKEN, iam_password=PASSWORD)
        )


async def test_credentials_are_decrypted_for_each_kind(store: WorkspaceStore) -> None:
    await store.save_connection(TEAM, _aksk(), user_id="U1")
    creds = await store.credentials(TEAM)
    assert isinstance(creds, AkSk) and creds.kind is CredentialKind.AKSK and creds.project_id == PROJECT
    assert creds.access_key == AK and creds.secret_key.get_secret_value() == SK
    assert SK not in repr(creds)

    await store.save_connection(TEAM, _temporary(), user_id="U1")
    creds = await store.credentials(TEAM)
    assert isinstance(creds, TemporaryAkSk) and creds.kind is CredentialKind.TEMPORARY_AKSK
    assert creds.security_token.get_secret_value() == TOKEN

    await store.save_connection(TEAM, _iam(), user_id="U1")
    creds = await store.credentials(TEAM)
    assert isinstance(creds, IamPassword) and creds.kind is CredentialKind.IAM_PASSWORD
    assert (creds.iam_username, creds.iam_domain) == ("taskbot-reader", "acme")
    assert creds.iam_password.get_secret_value() == PASSWORD
    assert not hasattr(creds, "access_key") and not hasattr(creds, "secret_key")


async def test_secrets_are_kept_when_the_form_says_none_and_dropped_on_a_type_change(
    store: WorkspaceStore,
) -> None:
    await store.save_connection(TEAM, _temporary(), user_id="U1")
    keep_all = dataclasses.replace(
        _temporary(), access_key=None, secret_key=None, security_token=None, project_id="ffff0000ffff0000"
    )
    kept = await store.save_connection(TEAM, keep_all, user_id="U2")
    assert kept.project_id == "ffff0000ffff0000" and kept.has_secret and kept.access_key_hint == "HPUA…3456"
    creds = await store.credentials(TEAM)
    assert isinstance(creds, TemporaryAkSk) and creds.access_key == AK
    assert creds.security_token.get_secret_value() == TOKEN

    # A new SK alone replaces only the SK.
    new_sk = dataclasses.replace(keep_all, secret_key="new-secret-key-0000")
    await store.save_connection(TEAM, new_sk, user_id="U2")
    creds = await store.credentials(TEAM)
    assert isinstance(creds, KeyPair) and creds.access_key == AK
    assert creds.secret_key.get_secret_value() == "new-secret-key-0000"

    iam = await store.save_connection(TEAM, _iam(), user_id="U3")
    assert iam.access_key_hint is None and iam.has_secret
    # AK/SK were deleted with the type change: nothing to keep now.
    with pytest.raises(ValueError, match="access_key, secret_key") as caught:
        await store.save_connection(TEAM, _aksk(access_key=None, secret_key=None), user_id="U3")
    assert all(secret not in str(caught.value) for secret in SECRETS)
    assert (await store.get_connection(TEAM)) == iam  # the failed save rolled back


async def test_incomplete_first_save_and_unconfigurable_kind_are_refused(store: WorkspaceStore) -> None:
    with pytest.raises(ValueError, match="security_token"):
        await store.save_connection(TEAM, _aksk(kind=CredentialKind.TEMPORARY_AKSK), user_id="U1")
    with pytest.raises(ValueError, match="iam_token"):
        await store.save_connection(TEAM, _aksk(kind=CredentialKind.IAM_TOKEN), user_id="U1")
    with pytest.raises(ValueError, match="region or an endpoint"):
        await store.save_connection(TEAM, _aksk(region=""), user_id="U1")
    assert await store.get_connection(TEAM) is None
    assert await store.audit(TEAM) == []


async def test_no_secret_is_stored_in_clear(
    store: WorkspaceStore, database: Database, database_url: str
) -> None:
    await store.save_connection("T_AKSK", _aksk(), user_id="U1")
    await store.save_connection("T_TEMP", _temporary(), user_id="U1")
    await store.save_connection("T_IAM", _iam(), user_id="U1")
    await store.record_call("T_IAM", ok=False, error="MetaStudio did not accept taskbot's credentials.")

    # Every column of every row of our tables, as text, on either backend.
    seen: list[str] = []
    async with database.engine.connect() as conn:
        for table in _TABLES:
            for column in table.columns:
                values = (await conn.execute(select(cast(column, Text)))).scalars().all()
                seen += [value for value in values if value is not None]
    dump = "\n".join(seen)
    assert PROJECT in dump and "taskbot-reader" in dump  # the scan does see the data
    for secret in SECRETS:
        assert secret not in dump

    if make_url(database_url).get_backend_name() == "sqlite":
        await database.dispose()
        database_file = Path(str(make_url(database_url).database))
        files = [path for path in database_file.parent.iterdir() if path.name.startswith(database_file.name)]
        raw = b"".join(path.read_bytes() for path in files)
        assert PROJECT.encode() in raw
        for secret in SECRETS:
            assert secret.encode() not in raw


async def test_endpoints_follow_region_and_override(store: WorkspaceStore) -> None:
    await store.save_connection(TEAM, _aksk(), user_id="U1")
    assert await store.endpoint_for(TEAM) == (
        "https://metastudio.cn-north-4.myhuaweicloud.com",
        "https://iam.cn-north-4.myhuaweicloud.com",
    )
    await store.save_connection(TEAM, _aksk(endpoint="http://127.0.0.1:8080/"), user_id="U1")
    assert await store.endpoint_for(TEAM) == ("http://127.0.0.1:8080", "http://127.0.0.1:8080")
    assert region_endpoints("", "https://metastudio.la-south-2.myhuaweicloud.com") == (
        "https://metastudio.la-south-2.myhuaweicloud.com",
        "https://iam.la-south-2.myhuaweicloud.com",
    )
    assert region_endpoints("af-south-1", None)[0] == "https://metastudio.af-south-1.myhuaweicloud.com"


async def test_record_call_keeps_last_success_and_last_error(database: Database, key: str) -> None:
    store = WorkspaceStore(database, SecretBox([key]), record_interval=3600)
    await store.create_all()
    await store.record_call(TEAM, ok=True)  # no connection yet: nothing to record, no error
    await store.save_connection(TEAM, _aksk(), user_id="U1")

    await store.record_call(TEAM, ok=True)
    first = await store.get_connection(TEAM)
    assert first is not None and first.last_ok_at is not None and first.last_error_at is None

    await store.record_call(TEAM, ok=True)  # same outcome within the interval: no write
    again = await store.get_connection(TEAM)
    assert again is not None and again.last_ok_at == first.last_ok_at

    await store.record_call(TEAM, ok=False, error="token xoxb-123-456-abcdef leaked? " + "x" * 400)
    failed = await store.get_connection(TEAM)
    assert failed is not None and failed.last_error is not None and failed.last_error_at is not None
    assert len(failed.last_error) == 300 and "xoxb-" not in failed.last_error
    assert failed.last_ok_at == first.last_ok_at  # the last success is kept next to the error

    await store.record_call(TEAM, ok=True)  # a change of outcome is always written
    recovered = await store.get_connection(TEAM)
    assert recovered is not None and recovered.last_ok_at is not None and first.last_ok_at is not None
    assert recovered.last_ok_at > first.last_ok_at and recovered.last_error == failed.last_error

    resaved = await store.save_connection(TEAM, _aksk(access_key=None, secret_key=None), user_id="U1")
    assert resaved.last_ok_at is None and resaved.last_error is None  # they described the old settings


async def test_guardrails(store: WorkspaceStore) -> None:
    default = await store.get_guardrails(TEAM)
    assert default.unrestricted and default.channels == () and default.updated_by is None

    saved = await store.save_guardrails(
        TEAM, channels=["C0AAA", "C0BBB", "C0AAA", " "], usergroup_id="S0ONCALL1", user_id="U1"
    )
    assert saved == await store.get_guardrails(TEAM)
    assert saved.channels == ("C0AAA", "C0BBB") and saved.usergroup_id == "S0ONCALL1"
    assert not saved.unrestricted and saved.updated_by == "U1" and saved.updated_at is not None
    assert (await store.get_guardrails(OTHER)).unrestricted

    only_group = await store.save_guardrails(TEAM, channels=[], usergroup_id="S0ONCALL1", user_id="U2")
    assert only_group.channels == () and not only_group.unrestricted
    cleared = await store.save_guardrails(TEAM, channels=(), usergroup_id="", user_id="U2")
    assert cleared.unrestricted and cleared.usergroup_id is None
    with pytest.raises(TypeError):
        await store.save_guardrails(TEAM, channels="C0AAA", usergroup_id=None, user_id="U2")


async def test_audit_is_newest_first_limited_and_secret_free(store: WorkspaceStore) -> None:
    await store.save_connection(TEAM, _temporary(), user_id="U1")
    for number in range(11):
        await store.save_guardrails(
            TEAM, channels=[f"C0{number:04d}"], usergroup_id=None, user_id=f"U{number}"
        )
    await store.save_connection(TEAM, _iam(), user_id="U99")

    latest = await store.audit(TEAM)
    assert len(latest) == 10
    assert [entry.at for entry in latest] == sorted((entry.at for entry in latest), reverse=True)
    assert latest[0].action == "connection.updated" and latest[0].user_id == "U99"
    assert "kind=iam_password" in latest[0].detail and "iam_user=taskbot-reader@acme" in latest[0].detail
    assert latest[1].action == "guardrails.updated" and latest[1].detail == "channels=C00010 usergroup=any"
    assert [entry.user_id for entry in latest[1:]] == [f"U{n}" for n in range(10, 1, -1)]
    assert len(await store.audit(TEAM, limit=3)) == 3

    everything = await store.audit(TEAM, limit=100)
    assert len(everything) == 13 and everything[-1].user_id == "U1"
    first = everything[-1].detail
    assert "region=cn-east-3" in first and f"project_id={PROJECT}" in first and "kind=temporary_aksk" in first
    assert "replaced=access_key,secret_key,security_token" in first
    for entry in everything:
        assert all(secret not in entry.detail for secret in SECRETS)


async def test_delete_team_only_touches_that_team(store: WorkspaceStore) -> None:
    for team in (TEAM, OTHER):
        await store.save_connection(team, _aksk(), user_id="U1")
        await store.save_guardrails(team, channels=["C0AAA"], usergroup_id=None, user_id="U1")

    await store.delete_team(TEAM)

    assert await store.get_connection(TEAM) is None and await store.credentials(TEAM) is None
    assert (await store.get_guardrails(TEAM)).unrestricted and await store.audit(TEAM) == []
    assert await store.credentials(OTHER) is not None
    assert (await store.get_guardrails(OTHER)).channels == ("C0AAA",)
    assert len(await store.audit(OTHER)) == 2


async def test_rotate_keys_lets_the_old_key_be_dropped(database: Database, key: str) -> None:
    old = WorkspaceStore(database, SecretBox([key]))
    await old.create_all()
    await old.save_connection("T_AKSK", _aksk(), user_id="U1")
    await old.save_connection("T_TEMP", _temporary(), user_id="U1")
    await old.save_connection("T_IAM", _iam(), user_id="U1")

    new_key = SecretBox.generate_key()
    with pytest.raises(SecretUnreadable):
        await WorkspaceStore(database, SecretBox([new_key])).credentials("T_AKSK")

    assert await WorkspaceStore(database, SecretBox([new_key, key])).rotate_keys() == 3

    only_new = WorkspaceStore(database, SecretBox([new_key]))
    creds = await only_new.credentials("T_TEMP")
    assert isinstance(creds, TemporaryAkSk)
    assert creds.security_token.get_secret_value() == TOKEN and creds.access_key == AK
    iam = await only_new.credentials("T_IAM")
    assert isinstance(iam, IamPassword) and iam.iam_password.get_secret_value() == PASSWORD
    with pytest.raises(SecretUnreadable):
        await old.credentials("T_AKSK")

    # A secret no configured key can read stops the rotation before anything is written.
    stranger = WorkspaceStore(database, SecretBox([SecretBox.generate_key()]))
    with pytest.raises(SecretUnreadable):
        await stranger.rotate_keys()
    assert (await only_new.credentials("T_AKSK")) is not None


async def test_tables_share_storage_metadata_and_concurrent_first_saves(database_url: str, key: str) -> None:
    # create_all creates the workspace tables too: one Base.
    async with open_database(database_url) as database:
        store = WorkspaceStore(database, SecretBox([key]))
        results = await asyncio.gather(
            *(
                store.save_connection(TEAM, _aksk(project_id=f"project{n:04d}"), user_id=f"U{n}")
                for n in range(4)
            )
        )
        assert {result.team_id for result in results} == {TEAM}
        current = await store.get_connection(TEAM)
        assert current is not None and current.project_id in {f"project{n:04d}" for n in range(4)}
        assert len(await store.audit(TEAM)) == 4


def test_mask_access_key_shows_little() -> None:
    assert mask_access_key("AKIAABCDEFGH9XQ2") == "AKIA…9XQ2"
    assert mask_access_key("ABCDEFGH") == "AB…GH"
    assert mask_access_key("ABC") == "…"
