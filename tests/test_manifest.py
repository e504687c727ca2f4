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
from bot.slack.clients import BOT_SCOPES
from bot.slack.steps import GET_TASK, OUTPUT_NAMES, WAIT_FOR_TASK

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
        "token_rotation_enabled": True,
        "function_runtime": "remote",
    }
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_the_two_workflow_steps(manifest: dict[str, Any]) -> None:
    functions = manifest["functions"]
    assert set(functions) == {GET_TASK, WAIT_FOR_TASK}
    for callback_id, function in functions.items():
        inputs, outputs = function["input_parameters"], function["output_parameters"]
        assert inputs["required"] == ["task_id"], callback_id
        assert inputs["properties"]["user"]["type"] == "slack#/types/user_context"
        # Every output the code sends is declared, and nothing else (bot/slack/steps.py).
        assert tuple(outputs["properties"]) == OUTPUT_NAMES, callback_id
        assert set(outputs["required"]) <= set(OUTPUT_NAMES)
        assert outputs["properties"]["begin_time"]["type"] == "slack#/types/timestamp"
    assert functions[WAIT_FOR_TASK]["input_parameters"]["properties"]["timeout_hours"]["type"] == "number"
    assert "timeout_hours" not in functions[GET_TASK]["input_parameters"]["properties"]


def test_a_step_declared_wrong_is_rejected(manifest: dict[str, Any]) -> None:
    """The functions part of the validation can fail: a parameter list in version 1's shape is refused."""
    validator = Draft7Validator(schema("schemas/manifest.schema.2.0.0.json"))
    step = manifest["functions"][GET_TASK]
    bad = {**step, "input_parameters": [{"name": "task_id", "type": "string"}]}
    assert not validator.is_valid({**manifest, "functions": {GET_TASK: bad}})
    assert not validator.is_valid({**manifest, "functions": {GET_TASK: {**step, "inputs": {}}}})


def test_step_outputs_are_what_the_manifest_declares() -> None:
    from bot.metastudio.models import Task
    from bot.slack.steps import outputs

    task = Task(
        task_id="f" * 32,
        task_name="Import",
        task_status="SUCCEED",
        operator="ops",
        resource="knowledge-intent-question-create",
        begin_time=1_700_000_000_000,
        end_time=1_700_000_600_000,
        total_count=8,
        success_count=6,
        failure_count=2,
    )
    values = outputs(task, frozenset())
    assert tuple(values) == OUTPUT_NAMES
    assert values["finished"] is True and values["success_rate"] == 75.0
    assert (values["begin_time"], values["end_time"]) == (1_700_000_000, 1_700_000_600)
    # A value MetaStudio did not give is left out rather than sent as null.
    assert set(outputs(Task(task_id="f" * 32), frozenset())) == {
        "finished",
        "total_count",
        "success_count",
        "failure_count",
    }
