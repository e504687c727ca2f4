"""The README and docs/ against the code: commands that run as written, links that resolve,
and one table of variables that matches what taskbot reads."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import AliasChoices

from bot import metrics
from bot.cli import build_parser
from bot.config import Settings
from bot.metastudio import regions

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 150
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+(?:<REGION>)?)`")


def _shell_lines(text: str) -> list[str]:
    """Every command a reader would paste: lines of bash blocks and inline spans that start a command."""
    lines: list[str] = []
    for language, body in _FENCE.findall(text):
        if language == "bash":
            lines += [line for line in body.splitlines() if line.strip() and not line.startswith("#")]
    outside = _FENCE.sub("", text)
    lines += [
        span
        for span in _INLINE.findall(outside)
        if span.startswith((".venv/bin/", "python3 ")) and " " in span
    ]
    commands: list[str] = []
    for line in lines:
        line = line.split(" #")[0].strip()
        commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def _problem(command: str, folder: Path) -> str | None:
    """Why ``command`` would not work as written from a fresh clone; None when it would."""
    words = shlex.split(command)
    program, args = words[0], words[1:]
    if program == "taskbot":
        return "a bare taskbot is 'command not found' until the venv is activated; write .venv/bin/taskbot"
    if program == ".venv/bin/taskbot":
        if not (Path(sys.executable).parent / "taskbot").exists():
            return "the taskbot script is not installed next to this Python"
        try:
            build_parser().parse_args(args)
        except SystemExit as exit_:
            return None if exit_.code == 0 else f"taskbot rejects {args}"
        return None
    if program in (".venv/bin/python", "python3") and args[:1] == ["-m"]:
        module = args[1]
        if module == "venv":
            return None
        return None if importlib.util.find_spec(module) is not None else f"no module {module}"
    if program in (".venv/bin/python", "python3") and args[:1] == ["-c"]:
        compile(args[1], "<docs>", "exec")
        return None
    if program == ".venv/bin/pip" and args[:2] == ["install", "-e"]:
        spec = args[2]
        extras = re.fullmatch(r"\.(?:\[(\w+)\])?", spec)
        if extras is None:
            return f"pip installs {spec!r}, not this project"
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        wanted = extras.group(1)
        if wanted and wanted not in project["optional-dependencies"]:
            return f"no extra {wanted!r} in pyproject.toml"
        return None
    if program == "cp":
        return None if (ROOT / args[0]).exists() else f"{args[0]} does not exist"
    if program in ("export", "docker", "sudo", "pg_dump", "sqlite3", "systemd-analyze"):
        # Named files must exist in the repository; the programs are the operator's own.
        for word in args:
            candidate = word.split("=", 1)[-1]
            local = "/" in candidate and not candidate.startswith(("/", "http", "postgresql", "-"))
            if local and (ROOT / candidate).suffix and not (ROOT / candidate).exists():
                return f"{candidate} does not exist"
        return None
    return f"unknown program {program!r}"


def test_readme_is_short() -> None:
    assert len(README.read_text(encoding="utf-8").splitlines()) <= README_MAX_LINES


def test_readme_try_it_commands_are_the_ones_ci_runs() -> None:
    commands = _shell_lines(README.read_text(encoding="utf-8"))
    assert "python3 -m venv .venv" in commands
    assert ".venv/bin/pip install -e '.[test]'" in commands
    assert ".venv/bin/taskbot demo" in commands
    assert ".venv/bin/python -m pytest" in commands
    ci = (ROOT / ".ci" / "run").read_text()
    assert "-e '.[test]'" in ci and "-m pytest" in ci


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda path: path.name)
def test_every_command_works_as_written(document: Path) -> None:
    commands = _shell_lines(document.read_text(encoding="utf-8"))
    problems = {command: _problem(command, document.parent) for command in commands}
    assert {command: why for command, why in problems.items() if why} == {}


def test_the_command_check_catches_what_would_fail() -> None:
    assert _problem(".venv/bin/taskbot serv", ROOT)
    assert _problem(".venv/bin/taskbot simulator --prot 8080", ROOT)
    assert _problem("taskbot check", ROOT)
    assert _problem(".venv/bin/pip install -e '.[tests]'", ROOT)
    assert _problem("python -m pytest", ROOT)
    assert _problem("cp .env.sample .env", ROOT)
    assert _problem(".venv/bin/python -m no_such_module", ROOT)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@pytest.mark.parametrize("document", [README, *DOCS], ids=lambda path: path.name)
def test_every_link_resolves(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md":
            headings = re.findall(
                r"^#+ (.+)$", _FENCE.sub("", file.read_text(encoding="utf-8")), re.MULTILINE
            )
            if anchor not in {_slug(heading) for heading in headings}:
                broken.append(target)
    assert broken == []


def _documented_variables() -> set[str]:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = text.split("## Variables", 1)[1].split("\n## ", 1)[0]
    documented: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            documented |= set(_VARIABLE.findall(line.split("|")[1]))
    return documented


def _variables_read() -> set[str]:
    read: set[str] = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            read |= {str(choice) for choice in alias.choices}
        else:
            read.add(name.upper())
    # Read by bot/metastudio/regions.py (the SDK's region chain) and bot/metrics.py.
    return read | {regions.SDK_REGION_ENV_PREFIX + "<REGION>", regions.REGIONS_FILE_ENV, "TASKBOT_REPLICA_ID"}


def test_configuration_table_lists_exactly_the_variables_taskbot_reads() -> None:
    assert _documented_variables() == _variables_read()


def test_the_replica_id_variable_is_the_one_metrics_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKBOT_REPLICA_ID", "pod-7")
    assert metrics.replica_id() == "pod-7"


def test_env_example_names_every_variable_and_only_those() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+(?:<REGION>)?)=", text, re.MULTILINE))
    # The alternative names (CLOUD_SDK_AK, METASTUDIO_IAM_ENDPOINT…) are mentioned, not listed.
    primary = {
        str(info.validation_alias.choices[0])
        if isinstance(info.validation_alias, AliasChoices)
        else name.upper()
        for name, info in Settings.model_fields.items()
    }
    assert named == primary | {
        regions.SDK_REGION_ENV_PREFIX + "<REGION>",
        regions.REGIONS_FILE_ENV,
        "TASKBOT_REPLICA_ID",
    }


def test_the_license_is_the_one_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
