"""bot.slack.home: the App Home tab, validated with slack_sdk's models, in English and Chinese."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.db.workspaces import AuditEntry, Connection, Guardrails
from bot.slack.home import home_view
from bot.slack.ids import ACTION_CONFIGURE, ACTION_GUARDRAILS
from tests.slack.views import (
    AUDIT,
    CONNECTION,
    GUARDRAILS,
    IAM,
    LONG_ZH,
    NOW,
    OPEN,
    PROJECT,
    actions,
    validated,
)

# --- App Home -----------------------------------------------------------------------------------


@pytest.mark.parametrize("connection", [None, CONNECTION, IAM, replace(CONNECTION, has_secret=False)])
@pytest.mark.parametrize("guardrails", [GUARDRAILS, OPEN])
@pytest.mark.parametrize("is_admin", [True, False])
def test_home_views_are_valid(connection: Connection | None, guardrails: Guardrails, is_admin: bool) -> None:
    view = validated(
        home_view(
            connection=connection, guardrails=guardrails, audit=AUDIT, active_watches=3, is_admin=is_admin
        )
    )
    assert view["type"] == "home"


def test_admin_home_shows_status_buttons_and_audit() -> None:
    view = home_view(
        connection=CONNECTION, guardrails=GUARDRAILS, audit=AUDIT, active_watches=1234, is_admin=True
    )
    dump = json.dumps(view, ensure_ascii=False)

    assert actions(view) == {ACTION_CONFIGURE, ACTION_GUARDRAILS}
    assert "`cn-north-4`" in dump and f"`{PROJECT}`" in dump and "AK/SK, access key `HPUA…3456`" in dump
    assert "1,234" in dump and "The last call to MetaStudio failed" in dump
    ts = int(NOW.timestamp())
    assert f"<!date^{ts}^{{date_short_pretty}} {{time}}|2025-05-01 12:30 UTC>" in dump  # last error
    assert f"<!date^{ts - 3600}^" in dump  # last success
    assert "&lt;!channel&gt;" in dump and "<!channel>" not in dump  # stored text cannot ping
    assert "<#C0AAAAAAA>, <#C0BBBBBBB>" in dump and "<!subteam^S0ONCALL1>" in dump
    assert "Recent changes" in dump and "<@U0OWNER> changed the MetaStudio connection" in dump
    assert "did `team.something_new`" in dump
    assert "Only" not in dump


def test_non_admin_home_shows_status_only_and_who_can_change_it() -> None:
    view = home_view(
        connection=CONNECTION,
        guardrails=GUARDRAILS,
        audit=AUDIT,
        active_watches=2,
        is_admin=False,
        admin_ids=["U0OWNER", "U0ADMIN", "<!here>"],
    )
    dump = json.dumps(view, ensure_ascii=False)

    assert actions(view) == set()
    assert f"`{PROJECT}`" in dump and "AK/SK" in dump and "<#C0AAAAAAA>" in dump
    assert "HPUA" not in dump  # even the masked key is for admins
    assert "Recent changes" not in dump and "connection.updated" not in dump and "kind=aksk" not in dump
    assert (
        "Only a workspace admin or owner can change these settings: ask <@U0OWNER>, <@U0ADMIN>, who set"
        in dump
    )
    assert "here" not in dump

    anonymous = json.dumps(
        home_view(connection=None, guardrails=OPEN, audit=(), active_watches=0, is_admin=False)
    )
    assert "Only a workspace admin or owner can change these settings." in anonymous
    assert "Not connected yet" in anonymous and "Everyone in this workspace, in any channel." in anonymous


def test_home_states_and_limits() -> None:
    untested = replace(CONNECTION, last_ok_at=None, last_error=None, last_error_at=None)
    assert "no call to MetaStudio" in json.dumps(
        home_view(connection=untested, guardrails=OPEN, audit=(), active_watches=0, is_admin=True)
    )
    healthy = replace(CONNECTION, last_error_at=NOW - timedelta(days=1))
    assert "Connected: the last call" in json.dumps(
        home_view(connection=healthy, guardrails=OPEN, audit=(), active_watches=0, is_admin=True)
    )
    assert "IAM user `taskbot-reader` of account `acme`" in json.dumps(
        home_view(connection=IAM, guardrails=OPEN, audit=(), active_watches=0, is_admin=False),
        ensure_ascii=False,
    )

    huge = replace(CONNECTION, last_error="é" * 5000, project_id="p" * 5000, endpoint="https://" + "h" * 5000)
    many = [AuditEntry("T1", f"U{n:05d}", "connection.updated", "d" * 5000, NOW) for n in range(50)]
    view = validated(
        home_view(connection=huge, guardrails=GUARDRAILS, audit=many, active_watches=10**9, is_admin=True)
    )
    assert sum("<@U" in json.dumps(block) for block in view["blocks"] if block["type"] == "context") == 10
    assert "No changes yet." in json.dumps(
        home_view(connection=None, guardrails=OPEN, audit=(), active_watches=0, is_admin=True)
    )


# --- in Simplified Chinese ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "connection", [None, CONNECTION, IAM, replace(CONNECTION, last_error=LONG_ZH, has_secret=False)]
)
@pytest.mark.parametrize("is_admin", [True, False])
def test_chinese_home_views_stay_within_limits(connection: Connection | None, is_admin: bool) -> None:
    view = validated(
        home_view(
            connection=connection,
            guardrails=GUARDRAILS,
            audit=AUDIT,
            active_watches=25_001,
            is_admin=is_admin,
            admin_ids=["U0ADMIN01", "U0ADMIN02"],
            locale="zh-CN",
        )
    )
    shown = json.dumps(view, ensure_ascii=False)
    assert "MetaStudio 连接" in shown and "*进行中的关注*\\n25,001" in shown
    if not is_admin:
        assert "<@U0ADMIN01>、<@U0ADMIN02>" in shown
