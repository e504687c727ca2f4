"""The App Home tab: the workspace's MetaStudio connection, guardrails, channel language and,
for admins, the Configure buttons and the audit log.

A pure function of what the database says (``home_view``); no secret is ever shown, only the
masked access key, and only to admins. The modals those buttons open are ``bot.slack.modals``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from bot.db.workspaces import AuditEntry, Connection, Guardrails
from bot.messages import DEFAULT_LOCALE, SUPPORTED, text
from bot.messages.format import join, number
from bot.metastudio.credentials import CredentialKind
from bot.slack.blocks import actions as _actions
from bot.slack.blocks import button as _button
from bot.slack.blocks import code as _code_text
from bot.slack.blocks import context as _context
from bot.slack.blocks import fields as _fields_of
from bot.slack.blocks import header as _header
from bot.slack.blocks import mrkdwn as _mrkdwn
from bot.slack.blocks import option, slack_date
from bot.slack.blocks import section as _section
from bot.slack.ids import ACTION_CHANNEL_LANGUAGE, ACTION_CONFIGURE, ACTION_GUARDRAILS, LANGUAGE_FOLLOW
from bot.slack.modals import is_channel_id, is_usergroup_id

__all__ = ["home_view"]

# Ours: how much of the App Home one view lists.
MAX_AUDIT: Final = 10
MAX_ADMIN_MENTIONS: Final = 10

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


# --- App Home ----------------------------------------------------------------------------------


def home_view(
    *,
    connection: Connection | None,
    guardrails: Guardrails,
    audit: Sequence[AuditEntry],
    active_watches: int,
    is_admin: bool,
    admin_ids: Sequence[str] = (),
    locale: str = DEFAULT_LOCALE,
) -> dict[str, Any]:
    """The App Home tab. Admins get the Configure buttons and the audit log; others the status only."""
    blocks: list[dict[str, Any]] = [_header(text("home_connection_header", locale))]
    blocks += _connection_blocks(connection, active_watches, show_hint=is_admin, locale=locale)
    if is_admin:
        style = "primary" if connection is None else None
        blocks.append(_actions(_button(text("home_button_configure", locale), ACTION_CONFIGURE, style=style)))
    blocks += [
        {"type": "divider"},
        _header(text("home_guardrails_header", locale)),
        _section(_guardrails_text(guardrails, locale)),
    ]
    if is_admin:
        blocks.append(_actions(_button(text("home_button_guardrails", locale), ACTION_GUARDRAILS)))
    blocks += [{"type": "divider"}, _header(text("home_language_header", locale))]
    blocks.append(_language_block(guardrails.channel_language, is_admin=is_admin, locale=locale))
    if is_admin:
        blocks += [{"type": "divider"}, _header(text("home_audit_header", locale))]
        entries = list(audit)[:MAX_AUDIT]
        if not entries:
            blocks.append(_context(text("home_audit_empty", locale)))
        blocks += [_context(_audit_line(entry, locale)) for entry in entries]
    else:
        mentions = [f"<@{user}>" for user in admin_ids if _USER_ID.fullmatch(user)][:MAX_ADMIN_MENTIONS]
        who = (
            text("home_admins_ask", locale, admins=join(mentions, locale))
            if mentions
            else text("home_admins_only", locale)
        )
        blocks.append(_context(who))
    return {"type": "home", "blocks": blocks}


def _connection_blocks(
    connection: Connection | None, active_watches: int, *, show_hint: bool, locale: str
) -> list[dict[str, Any]]:
    watches = text("home_field_watches", locale) + "\n" + number(max(0, active_watches), locale)
    if connection is None:
        return [_section(text("home_not_connected", locale)), _fields_list([watches])]
    if connection.last_error_at is not None and (
        connection.last_ok_at is None or connection.last_error_at >= connection.last_ok_at
    ):
        status = text("home_status_error", locale)
    elif connection.last_ok_at is not None:
        status = text("home_status_ok", locale)
    else:
        status = text("home_status_untested", locale)
    last_error = text("home_never", locale)
    if connection.last_error_at is not None:
        last_error = slack_date(connection.last_error_at)
        if connection.last_error:
            last_error = text(
                "home_last_error_value", locale, error=_mrkdwn(connection.last_error, 300), date=last_error
            )
    fields = [
        text("home_field_region", locale)
        + "\n"
        + (_code(connection.region) if connection.region else text("not_set", locale)),
        text("home_field_project", locale) + "\n" + _code(connection.project_id),
        text("home_field_credentials", locale)
        + "\n"
        + _credentials_text(connection, show_hint=show_hint, locale=locale),
        text("home_field_endpoint", locale)
        + "\n"
        + (_code(connection.endpoint) if connection.endpoint else text("home_endpoint_default", locale)),
        text("home_field_last_ok", locale)
        + "\n"
        + (slack_date(connection.last_ok_at) if connection.last_ok_at else text("home_never", locale)),
        text("home_field_last_error", locale) + "\n" + last_error,
        watches,
    ]
    blocks = [_section(status), _fields_list(fields)]
    if not connection.has_secret:
        blocks.append(_context(text("home_incomplete", locale)))
    return blocks


def _credentials_text(connection: Connection, *, show_hint: bool, locale: str) -> str:
    label = text(f"credential_{connection.kind.value}", locale)
    if connection.kind is CredentialKind.IAM_PASSWORD and connection.iam_username:
        return text(
            "home_credentials_iam",
            locale,
            kind=label,
            user=_code(connection.iam_username),
            domain=_code(connection.iam_domain or ""),
        )
    if show_hint and connection.access_key_hint:
        return text("home_credentials_aksk", locale, kind=label, hint=_code(connection.access_key_hint))
    return label


def _language_label(language: str | None, locale: str) -> str:
    return text(f"language_name_{language}", locale) if language else text("home_language_follow", locale)


def _language_block(language: str | None, *, is_admin: bool, locale: str) -> dict[str, Any]:
    """The channel language: a menu for admins (saved on change), the current choice for others."""
    hint = text("home_language_hint", locale)
    current = _language_label(language, locale)
    if not is_admin:
        return _section(f"*{current}*\n{hint}")
    options = [option(_language_label(None, locale), LANGUAGE_FOLLOW)]
    options += [option(_language_label(lang, locale), lang) for lang in SUPPORTED]
    section = _section(hint)
    section["accessory"] = {
        "type": "static_select",
        "action_id": ACTION_CHANNEL_LANGUAGE,
        "options": options,
        "initial_option": option(current, language or LANGUAGE_FOLLOW),
    }
    return section


def _guardrails_text(guardrails: Guardrails, locale: str) -> str:
    if guardrails.unrestricted:
        return text("home_guardrails_unrestricted", locale)
    channels = [f"<#{channel}>" for channel in guardrails.channels if is_channel_id(channel)]
    lines = [
        text("home_guardrails_channels", locale, channels=join(channels, locale))
        if channels
        else text("home_guardrails_any_channel", locale),
        text("home_guardrails_usergroup", locale, group=_usergroup_mention(guardrails.usergroup_id))
        if guardrails.usergroup_id
        else text("home_guardrails_anyone", locale),
    ]
    return "\n".join(lines)


def _usergroup_mention(value: str) -> str:
    # A user group mention in App Home notifies nobody; a handle that was never resolved is shown as code.
    return f"<!subteam^{value}>" if is_usergroup_id(value) else _code(value)


def _audit_line(entry: AuditEntry, locale: str) -> str:
    key = "audit_" + entry.action.replace(".", "_")
    try:
        action = text(key, locale)
    except KeyError:
        action = text("audit_other", locale, action=_code(entry.action))
    user = f"<@{entry.user_id}>" if _USER_ID.fullmatch(entry.user_id) else _code(entry.user_id)
    return text(
        "home_audit_line",
        locale,
        date=slack_date(entry.at),
        user=user,
        action=action,
        detail=_code(entry.detail),
    )


# --- blocks -------------------------------------------------------------------------------------


def _code(value: str) -> str:
    return f"`{_code_text(value)}`"


def _fields_list(values: Sequence[str]) -> dict[str, Any]:
    return _fields_of(*values)
