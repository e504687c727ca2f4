"""The connection forms tests save (an access-key pair, the way an admin's modal submits it), and
the ``view.state.values`` that a submitted modal carries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.db.workspaces import ConnectionForm
from bot.metastudio.credentials import CredentialKind
from bot.slack.ids import ConnectionInput, ModalInput

PROJECT_ID = "0123456789abcdef0123456789abcdef"


def aksk_form(
    *,
    project_id: str,
    access_key: str,
    secret_key: str,
    endpoint: str | None = None,
    region: str = "cn-north-4",
) -> ConnectionForm:
    """A permanent AK/SK connection; every other credential field is empty."""
    return ConnectionForm(
        region=region,
        endpoint=endpoint,
        project_id=project_id,
        kind=CredentialKind.AKSK,
        access_key=access_key,
        secret_key=secret_key,
        security_token=None,
        iam_username=None,
        iam_password=None,
        iam_domain=None,
    )


def view_values(elements: Mapping[ModalInput, dict[str, Any]]) -> dict[str, Any]:
    """``view.state.values`` as Slack submits it: each element's state under its block and action id."""
    return {field: {field.action_id: element} for field, element in elements.items()}


def text_value(value: str | None) -> dict[str, Any]:
    """A plain text input's submitted state; None: left empty."""
    return {"type": "plain_text_input", "value": value}


def connection_state(
    *,
    region: str | None = "cn-north-4",
    endpoint: str | None = None,
    project_id: str | None = PROJECT_ID,
    kind: str | None = "aksk",
    **secrets: str | None,
) -> dict[str, Any]:
    """The connection modal's ``view.state.values``; secrets by action id (``secret_key=...``)."""

    def option(element: str, value: str | None) -> dict[str, Any]:
        selected = None if value is None else {"text": {"type": "plain_text", "text": value}, "value": value}
        return {"type": element, "selected_option": selected}

    elements = {
        ConnectionInput.REGION: option("static_select", region),
        ConnectionInput.ENDPOINT: text_value(endpoint),
        ConnectionInput.PROJECT_ID: text_value(project_id),
        ConnectionInput.KIND: option("radio_buttons", kind),
    }
    for field in ConnectionInput:
        elements.setdefault(field, text_value(secrets.get(field.action_id)))
    return view_values(elements)
