"""What the App Home and modal tests share: stored rows to draw, and a check that a view is
Block Kit that slack_sdk accepts, within Slack's limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.db.workspaces import AuditEntry, Connection, Guardrails
from bot.metastudio.credentials import CredentialKind

NOW = datetime(2025, 5, 1, 12, 30, tzinfo=UTC)
PROJECT = "0123456789abcdef0123456789abcdef"
AK = "HPUAQWERTYUIOP123456"
SK = "sk-5ecret-0123456789abcdefghijklmnop"
TOKEN = "gQpjbi1ub3J0aC00" + "TokenBody" * 20
PASSWORD = "Pa55word-never-shown"

CONNECTION = Connection(
    team_id="T1",
    region="cn-north-4",
    endpoint=None,
    project_id=PROJECT,
    kind=CredentialKind.AKSK,
    access_key_hint="HPUA…3456",
    has_secret=True,
    iam_username=None,
    iam_domain=None,
    last_ok_at=NOW - timedelta(hours=1),
    last_error="MetaStudio had an internal error. <!channel> Please try again.",
    last_error_at=NOW,
    updated_by="U0ADMIN",
    updated_at=NOW,
)
IAM = replace(
    CONNECTION,
    kind=CredentialKind.IAM_PASSWORD,
    access_key_hint=None,
    iam_username="taskbot-reader",
    iam_domain="acme",
)
GUARDRAILS = Guardrails("T1", ("C0AAAAAAA", "C0BBBBBBB"), "S0ONCALL1", "U0ADMIN", NOW)
OPEN = Guardrails("T1", (), None, None, None)
AUDIT = [
    AuditEntry("T1", "U0ADMIN", "guardrails.updated", "channels=C0AAAAAAA usergroup=S0ONCALL1", NOW),
    AuditEntry(
        "T1", "U0OWNER", "connection.updated", f"region=cn-north-4 project_id={PROJECT} kind=aksk", NOW
    ),
    AuditEntry("T1", "U0OWNER", "team.something_new", "x", NOW),
]

# Block Kit limits: text object path suffix -> max characters.
LIMITS = {
    "title": 24,
    "submit": 24,
    "close": 24,
    "header": 150,
    "label": 2000,
    "hint": 2000,
    "placeholder": 150,
    "option": 75,
    "button": 75,
    "section": 3000,
    "field": 2000,
    "context": 3000,
}


def validated(view: dict[str, Any]) -> dict[str, Any]:
    parsed = View(**view)
    parsed.validate_json()
    assert parsed.to_dict() == view  # nothing we send is unknown to slack_sdk
    for block in view["blocks"]:
        model = Block.parse(block)
        assert model is not None
        model.validate_json()
    assert len(view["blocks"]) <= 100
    for kind, value in texts(view):
        assert len(value.encode("utf-16-le")) // 2 <= LIMITS[kind], (kind, value[:80])
    return view


def texts(view: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key in ("title", "submit", "close"):
        if key in view:
            yield key, view[key]["text"]
    for block in view["blocks"]:
        kind = block["type"]
        if kind == "header":
            yield "header", block["text"]["text"]
        elif kind == "section":
            if "text" in block:
                yield "section", block["text"]["text"]
            assert len(block.get("fields", [])) <= 10
            for field in block.get("fields", []):
                yield "field", field["text"]
        elif kind == "context":
            for element in block["elements"]:
                yield "context", element["text"]
        elif kind == "actions":
            for element in block["elements"]:
                yield "button", element["text"]["text"]
        elif kind == "input":
            yield "label", block["label"]["text"]
            if "hint" in block:
                yield "hint", block["hint"]["text"]
            element = block["element"]
            if "placeholder" in element:
                yield "placeholder", element["placeholder"]["text"]
            for option in element.get("options", []):
                yield "option", option["text"]["text"]


def actions(view: dict[str, Any]) -> set[str]:
    return {
        element["action_id"]
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }


def block_of(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(block for block in view["blocks"] if block.get("block_id") == block_id)


# Long Chinese text with an emoji ZWJ sequence: every cap must hold in UTF-16 units.
LONG_ZH = "客服知识库😀👩‍💻" * 400
