"""The admin modals: the workspace's MetaStudio connection and ``/task`` guardrails.

Pure functions: Block Kit views in, submitted ``view.state.values`` out (a form, or
``{block_id: sentence}`` for Slack's ``response_action: "errors"``). No secret ever goes into a
view, not even a stored one: secret inputs start empty, and a placeholder only says whether one
is stored (plus the masked access key). Leaving a secret empty keeps the stored one, as long as
the credential type stays the same.

Every input is one ``ConnectionInput`` or ``GuardrailsInput`` member (``bot.slack.ids``, with the
modals' callback ids and the Test connection button), which gives it a stable
``block_id``/``action_id``: Slack keeps what the admin typed across a ``views.update`` (say, to
show a "Test connection" result) only when those ids do not change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from bot.db.workspaces import CONFIGURABLE_KINDS, Connection, ConnectionForm, Guardrails
from bot.messages import DEFAULT_LOCALE, text
from bot.metastudio.credentials import CredentialKind
from bot.metastudio.endpoints import BadEndpointURL, EndpointPolicy, EndpointRefused, parse_endpoint
from bot.metastudio.regions import REGION_ENDPOINTS, REGION_ID, official_region
from bot.slack.blocks import (
    MAX_CONTEXT_TEXT,
    MAX_HINT,
    MAX_LABEL,
    MAX_PLACEHOLDER,
    MAX_VIEW_TITLE,
    clean,
    compose,
    option,
)
from bot.slack.blocks import button as _button
from bot.slack.blocks import context as _context
from bot.slack.blocks import mrkdwn as _mrkdwn
from bot.slack.blocks import plain as _plain
from bot.slack.blocks import section as _section
from bot.slack.cloud_errors import refusal_text
from bot.slack.ids import (
    ACTION_TEST_CONNECTION,
    BLOCK_TEST,
    BLOCK_TEST_RESULT,
    CONNECTION_MODAL,
    GUARDRAILS_MODAL,
    ConnectionInput,
    GuardrailsInput,
    ModalInput,
)

__all__ = [
    "connection_modal",
    "guardrails_modal",
    "is_channel_id",
    "is_usergroup_id",
    "parse_connection",
    "parse_guardrails",
]

# Ours: how many channels the guardrails may name.
MAX_CHANNELS: Final = 100

# Input sizes, also enforced by Slack in the client through max_length.
MAX_ENDPOINT: Final = 500
MAX_PROJECT_ID: Final = 64
MAX_ACCESS_KEY: Final = 128
MAX_SECRET_KEY: Final = 256
MAX_SECURITY_TOKEN: Final = 3000  # the largest max_length Slack allows on a text input
MAX_IAM_NAME: Final = 128
MAX_IAM_PASSWORD: Final = 256

_PROJECT_ID = re.compile(r"[A-Za-z0-9]{8,64}")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9]{8,128}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
# Real user group ids are 9+ characters; requiring 7 keeps a short all-caps handle ("SRE") a handle.
_USERGROUP_ID = re.compile(r"S[A-Z0-9]{6,}")
_USERGROUP_HANDLE = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


# --- connection modal ---------------------------------------------------------------------------


def connection_modal(
    connection: Connection | None, *, test_result: str | None = None, locale: str = DEFAULT_LOCALE
) -> dict[str, Any]:
    """The modal that creates or changes the workspace's connection. Never contains a secret."""
    stored = connection is not None and connection.has_secret
    kind = connection.kind if connection is not None else CredentialKind.AKSK
    aksk_stored = stored and connection is not None and connection.kind is not CredentialKind.IAM_PASSWORD
    token_stored = stored and kind is CredentialKind.TEMPORARY_AKSK
    iam_stored = stored and kind is CredentialKind.IAM_PASSWORD
    hint = connection.access_key_hint if connection is not None else None
    stored_by_group = {"aksk": aksk_stored, "token": token_stored, "iam": iam_stored}
    aksk_placeholder = (
        text("connection_access_key_stored", locale, hint=hint) if aksk_stored and hint else None
    )

    # ``group`` names the credential type a field belongs to, whose hint it shows ("connection_hint_<group>").
    def typed(
        field: ConnectionInput, read: Callable[[Connection], str | None], max_length: int, group: str = ""
    ) -> dict[str, Any]:
        """An optional text field, prefilled with what is saved; without ``group``, its own hint."""
        placeholder = text(f"{field}_placeholder", locale)
        initial = read(connection) if connection is not None else None
        element = _text_input(field.action_id, placeholder, initial=initial, max_length=max_length)
        return _field(field, element, locale, hint_key=f"connection_hint_{group}" if group else "")

    def secret(field: ConnectionInput, max_length: int, group: str, **how: Any) -> dict[str, Any]:
        stored = stored_by_group[group]
        hint_key = f"connection_hint_{group}"
        return _secret_input(field, hint_key, stored=stored, max_length=max_length, locale=locale, **how)

    blocks: list[dict[str, Any]] = [
        _section(text("connection_intro", locale)),
        _field(ConnectionInput.REGION, _region_select(connection, locale), locale),
        typed(ConnectionInput.ENDPOINT, lambda c: c.endpoint, MAX_ENDPOINT),
        # AK/SK without a project id: taskbot looks it up through IAM, as the SDK does.
        typed(ConnectionInput.PROJECT_ID, lambda c: c.project_id, MAX_PROJECT_ID),
        _input(
            ConnectionInput.KIND, text("connection_kind", locale), _kind_radio(kind, locale), optional=False
        ),
        secret(ConnectionInput.ACCESS_KEY, MAX_ACCESS_KEY, "aksk", stored_placeholder=aksk_placeholder),
        secret(ConnectionInput.SECRET_KEY, MAX_SECRET_KEY, "aksk"),
        secret(ConnectionInput.SECURITY_TOKEN, MAX_SECURITY_TOKEN, "token", multiline=True),
        typed(ConnectionInput.IAM_USERNAME, lambda c: c.iam_username, MAX_IAM_NAME, "iam"),
        secret(ConnectionInput.IAM_PASSWORD, MAX_IAM_PASSWORD, "iam"),
        typed(ConnectionInput.IAM_DOMAIN, lambda c: c.iam_domain, MAX_IAM_NAME, "iam"),
        {
            "type": "actions",
            "block_id": BLOCK_TEST,
            "elements": [_button(text("connection_test", locale), ACTION_TEST_CONNECTION)],
        },
    ]
    if test_result:
        result = text("connection_test_result", locale, result=_mrkdwn(test_result, MAX_CONTEXT_TEXT - 100))
        blocks.append({**_context(result), "block_id": BLOCK_TEST_RESULT})
    return _modal(CONNECTION_MODAL, text("connection_modal_title", locale), blocks, locale)


def _region_select(connection: Connection | None, locale: str) -> dict[str, Any]:
    regions = list(REGION_ENDPOINTS)
    current = connection.region if connection is not None else None
    if current and current not in regions and REGION_ID.fullmatch(current):
        # A region stored before it left our table stays selectable, or Slack would reject the view.
        regions.append(current)
    options = {region: option(region, region) for region in regions}
    return compose(
        "static_select",
        action_id=ConnectionInput.REGION.action_id,
        placeholder=_placeholder(text("connection_region_placeholder", locale)),
        options=list(options.values()),
        initial_option=options.get(current) if current else None,
    )


def _kind_radio(kind: CredentialKind, locale: str) -> dict[str, Any]:
    options = {
        item: option(text(f"connection_kind_{item.value}", locale), item.value) for item in CONFIGURABLE_KINDS
    }
    return compose(
        "radio_buttons",
        action_id=ConnectionInput.KIND.action_id,
        options=list(options.values()),
        initial_option=options.get(kind),
    )


def _secret_input(
    field: ConnectionInput,
    hint_key: str,
    *,
    stored: bool,
    max_length: int,
    multiline: bool = False,
    stored_placeholder: str | None = None,
    locale: str,
) -> dict[str, Any]:
    """A secret's input: always empty; the placeholder says whether one is stored."""
    if stored:
        placeholder = stored_placeholder or text("connection_secret_stored", locale)
    else:
        placeholder = text("connection_secret_placeholder", locale)
    element = _text_input(
        field.action_id, placeholder, initial=None, max_length=max_length, multiline=multiline
    )
    return _field(field, element, locale, hint_key=hint_key)


def parse_connection(
    view_state: dict[str, Any],
    existing: Connection | None,
    *,
    locale: str = DEFAULT_LOCALE,
    endpoints: EndpointPolicy | None = None,
) -> ConnectionForm | dict[str, str]:
    """The submitted connection, or ``{block_id: sentence}`` for ``response_action: "errors"``.

    No sentence ever repeats what was typed. Secrets move as a set: a new access key needs its
    secret key (and, for temporary credentials, its token), and a new IAM user needs its
    password; otherwise an empty secret keeps the stored one of the same credential type.
    ``endpoints`` (the operator's allow-list) decides scheme and host of an endpoint override;
    without it only https, or http on loopback, passes. Addresses are checked on save (DNS).
    """
    errors: dict[str, str] = {}

    project_id = _value(view_state, ConnectionInput.PROJECT_ID)
    if project_id is not None and not _PROJECT_ID.fullmatch(project_id):
        errors[ConnectionInput.PROJECT_ID] = text("connection_error_project_id_invalid", locale)

    endpoint = _value(view_state, ConnectionInput.ENDPOINT)
    if endpoint is not None:
        endpoint = _valid_endpoint(endpoint, any_http=endpoints is not None)
        if endpoint is None:
            errors[ConnectionInput.ENDPOINT] = text("connection_error_endpoint", locale)
        elif endpoints is not None:
            try:
                endpoints.check_url(endpoint)
            except EndpointRefused as exc:
                errors[ConnectionInput.ENDPOINT] = refusal_text(exc.refusal, locale)

    region = _selected(view_state, ConnectionInput.REGION) or ""
    malformed = bool(region) and not REGION_ID.fullmatch(region)
    unknown = region not in REGION_ENDPOINTS and endpoint is None and ConnectionInput.ENDPOINT not in errors
    if malformed or unknown:
        errors[ConnectionInput.REGION] = text("connection_error_region", locale)
    if not region and endpoint is not None:
        region = official_region(endpoint) or ""

    kind_value = _selected(view_state, ConnectionInput.KIND)
    kind = next((item for item in CONFIGURABLE_KINDS if item.value == kind_value), None)
    if kind is None:
        errors[ConnectionInput.KIND] = text("connection_error_kind", locale)
        return errors

    if project_id is None and kind is CredentialKind.IAM_PASSWORD:
        # Only AK/SK can look the project up (GET /v3/projects, signed with the keys).
        errors[ConnectionInput.PROJECT_ID] = text("connection_error_project_id_missing", locale)
    stored = existing is not None and existing.kind is kind and existing.has_secret
    access_key = secret_key = security_token = iam_username = iam_password = iam_domain = None
    if kind is CredentialKind.IAM_PASSWORD:
        iam_username = _value(view_state, ConnectionInput.IAM_USERNAME)
        iam_domain = _value(view_state, ConnectionInput.IAM_DOMAIN)
        iam_password = _value(view_state, ConnectionInput.IAM_PASSWORD, strip=False)
        for block, value, key in (
            (ConnectionInput.IAM_USERNAME, iam_username, "connection_error_iam_username"),
            (ConnectionInput.IAM_DOMAIN, iam_domain, "connection_error_iam_domain"),
        ):
            if value is None:
                errors[block] = text(key, locale)
            elif len(value) > MAX_IAM_NAME or clean(value) != value:
                errors[block] = text("connection_error_invalid", locale, limit=MAX_IAM_NAME)
        same_user = (
            existing is not None
            and existing.iam_username == iam_username
            and existing.iam_domain == iam_domain
        )
        if iam_password is None and not (stored and same_user):
            errors[ConnectionInput.IAM_PASSWORD] = text("connection_error_iam_password", locale)
        elif iam_password is not None and len(iam_password) > MAX_IAM_PASSWORD:
            errors[ConnectionInput.IAM_PASSWORD] = text(
                "connection_error_too_long", locale, limit=MAX_IAM_PASSWORD
            )
    else:
        access_key = _value(view_state, ConnectionInput.ACCESS_KEY)
        secret_key = _value(view_state, ConnectionInput.SECRET_KEY)
        needed = [
            (ConnectionInput.ACCESS_KEY, access_key, "connection_error_access_key"),
            (ConnectionInput.SECRET_KEY, secret_key, "connection_error_secret_key"),
        ]
        if kind is CredentialKind.TEMPORARY_AKSK:
            raw_token = _value(view_state, ConnectionInput.SECURITY_TOKEN)
            # A long token pasted into a multiline input may arrive wrapped.
            security_token = "".join(raw_token.split()) if raw_token else None
            needed.append((ConnectionInput.SECURITY_TOKEN, security_token, "connection_error_security_token"))
        if any(value is not None for _, value, _ in needed) or not stored:
            for block, value, key in needed:
                if value is None:
                    errors[block] = text(key, locale)
        if access_key is not None and not _ACCESS_KEY.fullmatch(access_key):
            errors[ConnectionInput.ACCESS_KEY] = text("connection_error_access_key", locale)
        if secret_key is not None and (
            len(secret_key) > MAX_SECRET_KEY or any(c.isspace() for c in secret_key)
        ):
            errors[ConnectionInput.SECRET_KEY] = text("connection_error_secret_key_invalid", locale)

    if errors:
        return errors
    return ConnectionForm(
        region=region,
        endpoint=endpoint,
        project_id=project_id or "",
        kind=kind,
        access_key=access_key,
        secret_key=secret_key,
        security_token=security_token,
        iam_username=iam_username,
        iam_password=iam_password,
        iam_domain=iam_domain,
    )


def _valid_endpoint(value: str, *, any_http: bool = False) -> str | None:
    """The endpoint without a trailing slash, or None unless it is https (or http on loopback).

    ``any_http``: an allow-list decides about plain http afterwards.
    """
    if len(value) > MAX_ENDPOINT:
        return None
    try:
        url = parse_endpoint(value)
    except BadEndpointURL:
        return None
    if url.scheme == "https" or any_http or url.host in _LOCAL_HOSTS:
        return value.rstrip("/")
    return None


# --- guardrails modal ---------------------------------------------------------------------------


def guardrails_modal(guardrails: Guardrails, *, locale: str = DEFAULT_LOCALE) -> dict[str, Any]:
    """Limit ``/task`` to some channels and/or one user group; both empty means everyone, everywhere."""
    channels = compose(
        "multi_conversations_select",
        action_id=GuardrailsInput.CHANNELS.action_id,
        placeholder=_placeholder(text("guardrails_channels_placeholder", locale)),
        filter={"include": ["public", "private"], "exclude_bot_users": True},
        max_selected_items=MAX_CHANNELS,
        initial_conversations=list(guardrails.channels[:MAX_CHANNELS]) or None,
    )
    group = _text_input(
        GuardrailsInput.USERGROUP.action_id,
        text("guardrails_usergroup_placeholder", locale),
        initial=guardrails.usergroup_id,
        max_length=81,
    )
    blocks = [
        _section(text("guardrails_intro", locale)),
        _field(GuardrailsInput.CHANNELS, channels, locale),
        _field(GuardrailsInput.USERGROUP, group, locale),
    ]
    return _modal(GUARDRAILS_MODAL, text("guardrails_modal_title", locale), blocks, locale)


def parse_guardrails(
    view_state: dict[str, Any], *, locale: str = DEFAULT_LOCALE
) -> tuple[list[str], str | None] | dict[str, str]:
    """(channel ids, user group) or ``{block_id: sentence}``.

    The user group is an id (``S0123ABCD``, see ``is_usergroup_id``) or a handle returned as
    ``@handle``, lowercased, for the caller to resolve with ``usergroups.list``.
    """
    errors: dict[str, str] = {}
    payload = view_state.get(GuardrailsInput.CHANNELS, {}).get(GuardrailsInput.CHANNELS.action_id, {})
    selected = payload.get("selected_conversations") or []
    channels = list(dict.fromkeys(str(channel) for channel in selected))
    if len(channels) > MAX_CHANNELS or not all(_CHANNEL_ID.fullmatch(channel) for channel in channels):
        errors[GuardrailsInput.CHANNELS] = text("guardrails_error_channels", locale)

    group = _value(view_state, GuardrailsInput.USERGROUP)
    usergroup: str | None = None
    if group is not None:
        bare = group.removeprefix("@")
        if _USERGROUP_ID.fullmatch(bare):
            usergroup = bare
        elif _USERGROUP_HANDLE.fullmatch(bare.lower()):
            usergroup = "@" + bare.lower()
        else:
            errors[GuardrailsInput.USERGROUP] = text("guardrails_error_usergroup", locale)
    if errors:
        return errors
    return channels, usergroup


def is_usergroup_id(value: str) -> bool:
    """True for a user group id (``S…``); False for a ``@handle`` from ``parse_guardrails``."""
    return bool(_USERGROUP_ID.fullmatch(value))


# --- state access -------------------------------------------------------------------------------


def _value(state: dict[str, Any], field: ModalInput, *, strip: bool = True) -> str | None:
    """A text input's value; None when empty or blank."""
    value = state.get(field, {}).get(field.action_id, {}).get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip() if strip else value


def _selected(state: dict[str, Any], field: ModalInput) -> str | None:
    chosen = state.get(field, {}).get(field.action_id, {}).get("selected_option") or {}
    value = chosen.get("value")
    return value if isinstance(value, str) and value else None


def is_channel_id(value: str) -> bool:
    """True for a public or private channel id (``C…``/``G…``), as the guardrails store them."""
    return bool(_CHANNEL_ID.fullmatch(value))


# --- blocks -------------------------------------------------------------------------------------


def _placeholder(value: str) -> dict[str, Any]:
    """The grey text of an empty input or menu, cut to what Slack takes there."""
    return _plain(value, MAX_PLACEHOLDER)


def _text_input(
    action_id: str, placeholder: str, *, initial: str | None, max_length: int, multiline: bool = False
) -> dict[str, Any]:
    return compose(
        "plain_text_input",
        action_id=action_id,
        placeholder=_placeholder(placeholder),
        max_length=max_length,
        multiline=multiline or None,
        initial_value=initial[:max_length] if initial else None,
    )


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str | None = None
) -> dict[str, Any]:
    return compose(
        "input",
        block_id=block_id,
        label=_plain(label, MAX_LABEL),
        element=element,
        optional=optional,
        hint=_plain(hint, MAX_HINT) if hint else None,
    )


def _field(block_id: str, element: dict[str, Any], locale: str, *, hint_key: str = "") -> dict[str, Any]:
    """An optional input of a settings modal. Its block id is also the catalog key of its label,
    and ``<block id>_hint`` that of its hint unless ``hint_key`` names another."""
    hint = text(hint_key or f"{block_id}_hint", locale)
    return _input(block_id, text(block_id, locale), element, optional=True, hint=hint)


def _modal(callback_id: str, title: str, blocks: list[dict[str, Any]], locale: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, MAX_VIEW_TITLE),
        "submit": _plain(text("modal_save", locale), MAX_VIEW_TITLE),
        "close": _plain(text("modal_cancel", locale), MAX_VIEW_TITLE),
        "blocks": blocks,
    }
