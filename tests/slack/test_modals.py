"""bot.slack.modals: the connection and guardrails modals, validated with slack_sdk's models, and
the parsing of what an admin submits."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bot.db.base import Database
from bot.db.crypto import SecretBox
from bot.db.workspaces import Connection, ConnectionForm, Guardrails, WorkspaceStore
from bot.messages import text
from bot.metastudio.credentials import CredentialKind
from bot.metastudio.regions import REGION_ENDPOINTS
from bot.slack.home import home_view
from bot.slack.ids import (
    ACTION_TEST_CONNECTION,
    CONNECTION_MODAL,
    GUARDRAILS_MODAL,
    ConnectionInput,
    GuardrailsInput,
)
from bot.slack.modals import (
    connection_modal,
    guardrails_modal,
    is_usergroup_id,
    parse_connection,
    parse_guardrails,
)
from tests.slack.views import (
    AK,
    CONNECTION,
    GUARDRAILS,
    IAM,
    LONG_ZH,
    OPEN,
    PASSWORD,
    PROJECT,
    SK,
    TOKEN,
    actions,
    block_of,
    validated,
)
from tests.support.forms import aksk_form
from tests.support.forms import connection_state as _connection_state

# --- connection modal ---------------------------------------------------------------------------


@pytest.mark.parametrize("connection", [None, CONNECTION, IAM, replace(CONNECTION, region="xx-new-9")])
@pytest.mark.parametrize("test_result", [None, "Connected: MetaStudio answered <@U1> " + "x" * 4000])
def test_connection_modals_are_valid(connection: Connection | None, test_result: str | None) -> None:
    view = validated(connection_modal(connection, test_result=test_result))
    assert view["callback_id"] == CONNECTION_MODAL and actions(view) == {ACTION_TEST_CONNECTION}
    ids = [block.get("block_id") for block in view["blocks"] if block.get("block_id")]
    assert len(ids) == len(set(ids))
    if test_result:
        result = block_of(view, "test_result")
        assert result["type"] == "context" and "&lt;@U1&gt;" in result["elements"][0]["text"]
    else:
        assert "test_result" not in ids


def test_modal_keeps_stable_ids_and_shows_current_values_but_no_secret() -> None:
    plain = connection_modal(CONNECTION)
    tested = connection_modal(CONNECTION, test_result="It works.")
    assert [b.get("block_id") for b in tested["blocks"]][: len(plain["blocks"])] == [
        b.get("block_id") for b in plain["blocks"]
    ]

    region = block_of(plain, ConnectionInput.REGION)["element"]
    assert [o["value"] for o in region["options"]] == list(REGION_ENDPOINTS)
    assert region["initial_option"]["value"] == "cn-north-4"
    assert block_of(plain, ConnectionInput.PROJECT_ID)["element"]["initial_value"] == PROJECT
    assert block_of(plain, ConnectionInput.KIND)["element"]["initial_option"]["value"] == "aksk"
    access = block_of(plain, ConnectionInput.ACCESS_KEY)["element"]
    assert (
        "initial_value" not in access
        and access["placeholder"]["text"] == "Set (HPUA…3456): leave empty to keep it"
    )
    assert (
        block_of(plain, ConnectionInput.SECRET_KEY)["element"]["placeholder"]["text"]
        == "Set: leave empty to keep it"
    )
    assert (
        block_of(plain, ConnectionInput.SECURITY_TOKEN)["element"]["placeholder"]["text"] == "Paste it here"
    )
    assert block_of(plain, ConnectionInput.IAM_PASSWORD)["element"]["placeholder"]["text"] == "Paste it here"
    for block in plain["blocks"]:
        if block["type"] == "input":
            assert block["optional"] == (block["block_id"] != ConnectionInput.KIND)

    iam = connection_modal(IAM)
    assert block_of(iam, ConnectionInput.IAM_USERNAME)["element"]["initial_value"] == "taskbot-reader"
    assert (
        block_of(iam, ConnectionInput.IAM_PASSWORD)["element"]["placeholder"]["text"]
        == "Set: leave empty to keep it"
    )
    assert block_of(iam, ConnectionInput.ACCESS_KEY)["element"]["placeholder"]["text"] == "Paste it here"

    fresh = connection_modal(None)
    assert "initial_option" not in block_of(fresh, ConnectionInput.REGION)["element"]
    assert block_of(fresh, ConnectionInput.KIND)["element"]["initial_option"]["value"] == "aksk"

    unknown = block_of(connection_modal(replace(CONNECTION, region="xx-new-9")), ConnectionInput.REGION)[
        "element"
    ]
    assert unknown["initial_option"]["value"] == "xx-new-9"


async def test_views_of_a_stored_connection_never_contain_a_secret(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        store = WorkspaceStore(database, SecretBox([SecretBox.generate_key()]))
        await store.create_all()
        form = parse_connection(
            _connection_state(kind="temporary_aksk", access_key=AK, secret_key=SK, security_token=TOKEN), None
        )
        assert isinstance(form, ConnectionForm)
        await store.save_connection("T1", form, user_id="U0ADMIN")
        await store.save_connection("T2", _iam_form(), user_id="U0ADMIN")
        for team in ("T1", "T2"):
            connection = await store.get_connection(team)
            assert connection is not None
            views = [
                connection_modal(connection, test_result="It works."),
                home_view(
                    connection=connection,
                    guardrails=await store.get_guardrails(team),
                    audit=await store.audit(team),
                    active_watches=1,
                    is_admin=True,
                ),
            ]
            for view in views:
                dump = json.dumps(validated(view), ensure_ascii=False)
                for secret in (AK, SK, TOKEN, PASSWORD):
                    assert secret not in dump
        assert "HPUA…3456" in json.dumps(
            connection_modal(await store.get_connection("T1")), ensure_ascii=False
        )
    finally:
        await database.dispose()


def _iam_form() -> ConnectionForm:
    form = parse_connection(
        _connection_state(
            kind="iam_password", iam_username="taskbot-reader", iam_password=PASSWORD, iam_domain="acme"
        ),
        None,
    )
    assert isinstance(form, ConnectionForm)
    return form


def test_input_ids_stay_those_of_views_already_open() -> None:
    # A modal opened before an upgrade is submitted after it: its ids must still parse.
    assert {field.value: field.action_id for field in ConnectionInput} == {
        "connection_region": "region",
        "connection_endpoint": "endpoint",
        "connection_project_id": "project_id",
        "connection_kind": "kind",
        "connection_access_key": "access_key",
        "connection_secret_key": "secret_key",
        "connection_security_token": "security_token",
        "connection_iam_username": "iam_username",
        "connection_iam_password": "iam_password",
        "connection_iam_domain": "iam_domain",
    }
    assert {field.value: field.action_id for field in GuardrailsInput} == {
        "guardrails_channels": "channels",
        "guardrails_usergroup": "usergroup",
    }


# --- parse_connection ---------------------------------------------------------------------------


def test_parse_valid_connections() -> None:
    form = parse_connection(
        _connection_state(access_key=f" {AK} ", secret_key=SK, iam_password="ignored"), None
    )
    assert form == aksk_form(region="cn-north-4", project_id=PROJECT, access_key=AK, secret_key=SK)
    assert SK not in repr(form) and AK not in repr(form)

    wrapped = TOKEN[:50] + "\n" + TOKEN[50:] + "\n"
    temporary = parse_connection(
        _connection_state(kind="temporary_aksk", access_key=AK, secret_key=SK, security_token=wrapped), None
    )
    assert isinstance(temporary, ConnectionForm) and temporary.security_token == TOKEN

    iam = _iam_form()
    assert (iam.kind, iam.iam_username, iam.iam_domain, iam.iam_password) == (
        CredentialKind.IAM_PASSWORD,
        "taskbot-reader",
        "acme",
        PASSWORD,
    )
    assert iam.access_key is None
    spaced = parse_connection(
        _connection_state(kind="iam_password", iam_username="u", iam_password=" pass word ", iam_domain="d"),
        None,
    )
    assert isinstance(spaced, ConnectionForm) and spaced.iam_password == " pass word "  # passwords are exact

    local = parse_connection(
        _connection_state(region=None, endpoint="http://127.0.0.1:8123/", access_key=AK, secret_key=SK), None
    )
    assert isinstance(local, ConnectionForm) and (local.region, local.endpoint) == (
        "",
        "http://127.0.0.1:8123",
    )
    official = parse_connection(
        _connection_state(
            region=None,
            endpoint="https://metastudio.la-south-2.myhuaweicloud.com",
            access_key=AK,
            secret_key=SK,
        ),
        None,
    )
    assert isinstance(official, ConnectionForm) and official.region == "la-south-2"


def _errors(result: ConnectionForm | dict[str, str]) -> dict[str, str]:
    assert isinstance(result, dict), result
    return result


def test_parse_keeps_stored_secrets_only_for_the_same_type() -> None:
    keep = parse_connection(_connection_state(project_id="abcdef0123456789"), CONNECTION)
    assert isinstance(keep, ConnectionForm) and keep.access_key is None and keep.secret_key is None

    assert parse_connection(_connection_state(access_key=AK), CONNECTION) == {
        ConnectionInput.SECRET_KEY: "Enter the secret key (SK) that goes with the access key."
    }
    switched = _errors(parse_connection(_connection_state(kind="temporary_aksk"), CONNECTION))
    assert set(switched) == {
        ConnectionInput.ACCESS_KEY,
        ConnectionInput.SECRET_KEY,
        ConnectionInput.SECURITY_TOKEN,
    }
    incomplete = _errors(parse_connection(_connection_state(), replace(CONNECTION, has_secret=False)))
    assert set(incomplete) == {ConnectionInput.ACCESS_KEY, ConnectionInput.SECRET_KEY}

    iam_state = _connection_state(kind="iam_password", iam_username="taskbot-reader", iam_domain="acme")
    kept = parse_connection(iam_state, IAM)
    assert isinstance(kept, ConnectionForm) and kept.iam_password is None
    other_user = _connection_state(kind="iam_password", iam_username="someone-else", iam_domain="acme")
    assert set(_errors(parse_connection(other_user, IAM))) == {ConnectionInput.IAM_PASSWORD}
    assert set(_errors(parse_connection(iam_state, CONNECTION))) == {ConnectionInput.IAM_PASSWORD}


@pytest.mark.parametrize(
    ("state", "block"),
    [
        # AK/SK may leave the project id out (it is looked up through IAM); an IAM user may not.
        (
            {
                "kind": "iam_password",
                "project_id": None,
                "iam_username": "u",
                "iam_password": "pw",
                "iam_domain": "d",
            },
            ConnectionInput.PROJECT_ID,
        ),
        ({"project_id": "short"}, ConnectionInput.PROJECT_ID),
        ({"project_id": "0123456789abcdef/../x"}, ConnectionInput.PROJECT_ID),
        ({"project_id": "a" * 65}, ConnectionInput.PROJECT_ID),
        ({"endpoint": "http://metastudio.example.com"}, ConnectionInput.ENDPOINT),
        ({"endpoint": "ftp://127.0.0.1"}, ConnectionInput.ENDPOINT),
        ({"endpoint": "https:///no-host"}, ConnectionInput.ENDPOINT),
        ({"endpoint": "https://user:pa55@metastudio.example.com"}, ConnectionInput.ENDPOINT),
        ({"endpoint": "https://example.com/?token=abc"}, ConnectionInput.ENDPOINT),
        ({"endpoint": "https://example.com:99999"}, ConnectionInput.ENDPOINT),
        ({"endpoint": "not a url"}, ConnectionInput.ENDPOINT),
        ({"region": None}, ConnectionInput.REGION),
        ({"region": "xx-new-9"}, ConnectionInput.REGION),
        ({"region": "CN NORTH"}, ConnectionInput.REGION),
        ({"kind": None}, ConnectionInput.KIND),
        ({"kind": "iam_token"}, ConnectionInput.KIND),
        ({"access_key": "AK with spaces"}, ConnectionInput.ACCESS_KEY),
        ({"secret_key": "has space inside"}, ConnectionInput.SECRET_KEY),
        ({"access_key": None}, ConnectionInput.ACCESS_KEY),
        ({"secret_key": None}, ConnectionInput.SECRET_KEY),
        ({"kind": "temporary_aksk"}, ConnectionInput.SECURITY_TOKEN),
        ({"kind": "iam_password", "iam_password": "pw", "iam_domain": "acme"}, ConnectionInput.IAM_USERNAME),
        ({"kind": "iam_password", "iam_username": "u", "iam_domain": "acme"}, ConnectionInput.IAM_PASSWORD),
        ({"kind": "iam_password", "iam_username": "u", "iam_password": "pw"}, ConnectionInput.IAM_DOMAIN),
        (
            {"kind": "iam_password", "iam_username": "u" * 129, "iam_password": "pw", "iam_domain": "d"},
            ConnectionInput.IAM_USERNAME,
        ),
    ],
)
def test_parse_invalid_connection_reports_the_right_block(state: dict[str, Any], block: str) -> None:
    values: dict[str, Any] = {"access_key": AK, "secret_key": SK, **state}
    errors = parse_connection(_connection_state(**values), None)
    assert isinstance(errors, dict) and block in errors
    for value in (*values.values(), AK, SK):
        if isinstance(value, str) and len(value) > 3:
            assert all(value not in message for message in errors.values())


def test_region_can_be_unknown_when_an_endpoint_is_given() -> None:
    form = parse_connection(
        _connection_state(
            region="xx-new-9", endpoint="https://proxy.example.com/ms", access_key=AK, secret_key=SK
        ),
        None,
    )
    assert isinstance(form, ConnectionForm) and form.region == "xx-new-9"


# --- guardrails ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "guardrails", [GUARDRAILS, OPEN, replace(GUARDRAILS, channels=tuple(f"C{n:08d}" for n in range(150)))]
)
def test_guardrails_modal_is_valid(guardrails: Guardrails) -> None:
    view = validated(guardrails_modal(guardrails))
    assert view["callback_id"] == GUARDRAILS_MODAL
    channels = block_of(view, GuardrailsInput.CHANNELS)["element"]
    assert channels["type"] == "multi_conversations_select"
    assert channels["filter"]["include"] == ["public", "private"]
    assert channels.get("initial_conversations", []) == list(guardrails.channels[:100])
    group = block_of(view, GuardrailsInput.USERGROUP)["element"]
    assert group.get("initial_value") == guardrails.usergroup_id


def _guardrails_state(channels: list[str] | None, group: str | None) -> dict[str, Any]:
    return {
        GuardrailsInput.CHANNELS: {
            GuardrailsInput.CHANNELS.action_id: {
                "type": "multi_conversations_select",
                "selected_conversations": channels,
            }
        },
        GuardrailsInput.USERGROUP: {
            GuardrailsInput.USERGROUP.action_id: {"type": "plain_text_input", "value": group}
        },
    }


def test_parse_guardrails() -> None:
    assert parse_guardrails(_guardrails_state(None, None)) == ([], None)
    assert parse_guardrails(_guardrails_state(["C0AAAAAAA", "G0BBBBBBB", "C0AAAAAAA"], " S0ONCALL1 ")) == (
        ["C0AAAAAAA", "G0BBBBBBB"],
        "S0ONCALL1",
    )
    assert parse_guardrails(_guardrails_state([], "@OnCall")) == ([], "@oncall")
    assert parse_guardrails(_guardrails_state([], "SRE")) == ([], "@sre")
    assert is_usergroup_id("S0ONCALL1") and not is_usergroup_id("@oncall")

    assert set(parse_guardrails(_guardrails_state(["D0DIRECT1"], None))) == {GuardrailsInput.CHANNELS}
    assert set(parse_guardrails(_guardrails_state([], "on call!"))) == {GuardrailsInput.USERGROUP}
    both = parse_guardrails(_guardrails_state(["not-an-id"], "<!subteam^S1>"))
    assert set(both) == {GuardrailsInput.CHANNELS, GuardrailsInput.USERGROUP}


# --- in Simplified Chinese ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "connection", [None, CONNECTION, IAM, replace(CONNECTION, last_error=LONG_ZH, has_secret=False)]
)
def test_chinese_modals_stay_within_limits(connection: Connection | None) -> None:
    modal = validated(connection_modal(connection, test_result=LONG_ZH, locale="zh-CN"))
    assert modal["submit"]["text"] == "保存" and modal["title"]["text"] == "MetaStudio 连接"
    guardrails = validated(guardrails_modal(GUARDRAILS, locale="zh-CN"))
    assert guardrails["title"]["text"] == "谁可以使用 /task"


def test_chinese_parse_errors() -> None:
    errors = parse_guardrails(
        {GuardrailsInput.USERGROUP: {GuardrailsInput.USERGROUP.action_id: {"value": "!!"}}}, locale="zh-CN"
    )
    assert errors == {GuardrailsInput.USERGROUP: text("guardrails_error_usergroup", "zh-CN")}
    assert "用户组" in errors[GuardrailsInput.USERGROUP]
