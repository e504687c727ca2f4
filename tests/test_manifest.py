"""manifest.yaml is a valid Slack app manifest that asks for exactly what taskbot needs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource

from bot.messages import text
from bot.slack import ids
from bot.slack.clients import BOT_SCOPES

ROOT = Path(__file__).resolve().parent.parent
# A copy vendored into the repo wins, so a clean clone needs nothing outside it.
SCHEMAS = next(
    (
        p
        for p in (ROOT / "tests/data/slack-manifest-schema", ROOT.parent / "shared/slack-manifest-schema")
        if p.is_dir()
    ),
    ROOT / "tests/data/slack-manifest-schema",
)
EVENTS_URL = "https://taskbot.example.com/slack/events"
# The all-versions schema points at these published copies; the local files are the same schemas.
PUBLISHED = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/{name}"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return loaded


def test_valid_against_the_schema_of_its_version(manifest: dict[str, Any]) -> None:
    # Workflow steps (``functions`` with properties/required parameters) exist from version 2.
    assert manifest["_metadata"]["major_version"] == 2
    validator = Draft7Validator(
        schema("schemas/manifest.schema.2.0.0.json"), format_checker=Draft7Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest)]
    assert errors == []


def test_valid_against_the_all_versions_schema(manifest: dict[str, Any]) -> None:
    registry: Registry[Any] = Registry().with_resources(
        (PUBLISHED.format(name=name), Resource.from_contents(schema(f"schemas/{name}")))
        for name in ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json")
    )
    validator = Draft7Validator(schema("manifest.schema.json"), registry=registry)
    assert [e.message for e in validator.iter_errors(manifest)] == []
    # Resolved offline from the local copies, and strict: an unknown setting still fails.
    assert not validator.is_valid({**manifest, "settings": {"socket_mode": False}})


def test_schema_catches_mistakes(manifest: dict[str, Any]) -> None:
    """The validation above can fail: a typo'd key or a bad command is rejected."""
    validator = Draft7Validator(schema("schemas/manifest.schema.2.0.0.json"))
    typo = {**manifest, "settings": {**manifest["settings"], "socket_mode": False}}
    assert not validator.is_valid(typo)
    bad_command = {**manifest, "features": {**manifest["features"], "slash_commands": [{"command": "task"}]}}
    assert not validator.is_valid(bad_command)


def test_identity(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert info["name"] == "taskbot"
    assert info["description"]
    # The schema spells this check "regex", which JSON Schema ignores, so check it here.
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])
    assert manifest["features"]["bot_user"] == {"display_name": "taskbot", "always_online": True}


def test_slash_command(manifest: dict[str, Any]) -> None:
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/task"
    assert command["url"] == EVENTS_URL
    assert command["description"]
    assert command["usage_hint"] == text("usage_hint")
    assert command["should_escape"] is False


def test_scopes_are_exactly_what_taskbot_needs(manifest: dict[str, Any]) -> None:
    # Adding a scope must be a deliberate change to this test, and to the OAuth install.
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert scopes == list(BOT_SCOPES)
    assert manifest["oauth_config"]["redirect_urls"] == ["https://taskbot.example.com/slack/oauth_redirect"]


def test_settings(manifest: dict[str, Any]) -> None:
    assert manifest["settings"] == {
        "event_subscriptions": {
            "request_url": EVENTS_URL,
            "bot_events": ["app_home_opened", "app_uninstalled", "tokens_revoked", "function_executed"],
        },
        "interactivity": {"is_enabled": True, "request_url": EVENTS_URL},
        # Custom steps need an org-ready app whose functions run on its own server.
        "org_deploy_enabled": True,
        "socket_mode_enabled": False,
        "token_rotation_enabled": False,
        "function_runtime": "remote",
    }
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_callback_ids_are_the_ones_taskbot_listens_on(manifest: dict[str, Any]) -> None:
    """Slack sends these back and ``handlers`` listens on ``bot.slack.ids``: the two must agree."""
    assert set(manifest["functions"]) == set(ids.FUNCTIONS)
    assert [command["command"] for command in manifest["features"]["slash_commands"]] == list(ids.COMMANDS)
    # A shortcut would need its callback id declared in bot.slack.ids and listened on first.
    assert "shortcuts" not in manifest["features"]
