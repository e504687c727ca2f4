"""The layout is the architecture: the layers import downwards only, there are no import cycles,
and the runtime never imports the dev tools.

Imports are read from the source with ``ast`` (``TYPE_CHECKING`` and function-level imports
included), so a cycle hidden behind a lazy import still fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers")
DEVTOOLS = "bot.devtools"
# What `taskbot serve` imports; the CLI's demo and simulator commands import dev tools lazily.
RUNTIME_ROOTS = ("bot.app", "handlers")
# Lowest first, as docs/architecture.md draws them: a module may import its own layer and the
# layers below it, never one above. So the MetaStudio client knows nothing of Slack, settings or
# UI text, and the Slack builders know nothing of the follow-ups or the use cases.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bot.aio",),
    ("bot", "bot.logs", "bot.metrics"),
    ("bot.metastudio",),
    ("bot.messages",),
    ("bot.config",),
    ("bot.db",),
    ("bot.slack",),
    ("bot.followups",),
    ("bot.services",),
    ("handlers", "bot.servers"),
    ("bot.app",),
    ("bot.devtools",),
    ("bot.cli",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of ours that ``name`` imports, resolved to the most specific known module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _layer(module: str) -> int:
    """The index in ``LAYERS`` of the most specific package that holds ``module``."""
    best, found = -1, -1
    for index, packages in enumerate(LAYERS):
        for package in packages:
            if (module == package or module.startswith(package + ".")) and len(package) > best:
                best, found = len(package), index
    assert found >= 0, f"{module} is in no layer of LAYERS"
    return found


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if _layer(target) > _layer(module)
    )


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _reachable(graph: dict[str, set[str]], roots: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    todo = [root for root in roots if root in graph]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return seen


def test_no_import_cycle_in_bot_or_handlers() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_layer_imports_only_the_layers_below_it() -> None:
    assert _upward(_graph()) == []


def test_the_layer_check_sees_an_upward_import() -> None:
    graph = {"bot.metastudio.client": {"bot.config"}, "bot.config": {"bot.metastudio.regions"}}
    assert _upward(graph) == ["bot.metastudio.client -> bot.config"]


def test_the_runtime_never_imports_the_dev_tools() -> None:
    graph = _graph()
    runtime = _reachable(graph, RUNTIME_ROOTS)
    assert len(runtime) > 30  # the walk does see the runtime
    leaks = sorted(module for module in runtime if module == DEVTOOLS or module.startswith(DEVTOOLS + "."))
    assert leaks == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert _cycle(graph) == expected


# The sentence of a package docstring that says what the package may import: "May import ...",
# "it imports only ...", "It imports nothing of ours" (not "import/export", not "never imports").
_IMPORT_RULE = re.compile(
    r"(?:\bmay import|\bimports only|\bimports nothing)\b(?:[^.]|\.(?=\w))*", re.IGNORECASE
)
_NAMED_MODULE = re.compile(r"``((?:bot|handlers)(?:\.\w+)*)``")


def _import_rule_problems(package: str, docstring: str) -> list[str]:
    """What is wrong with the import rule ``package``'s docstring states, checked against LAYERS.

    The modules it allows (named before any "never") must sit in its own layer or below; those
    it forbids (named after "never") above it.
    """
    rule = _IMPORT_RULE.search(docstring)
    if rule is None:
        return [f"{package}'s docstring does not say what it may import"]
    allowed, _, forbidden = rule.group(0).partition("never")
    own = _layer(package)
    return [
        f"{package} may import {m}, a higher layer" for m in _NAMED_MODULE.findall(allowed) if _layer(m) > own
    ] + [
        f"{package} never imports {m}, which is not above it"
        for m in _NAMED_MODULE.findall(forbidden)
        if _layer(m) <= own
    ]


@pytest.mark.parametrize(
    "package", ["aio", "metastudio", "messages", "db", "slack", "followups", "services", "devtools"]
)
def test_every_package_states_what_it_owns_and_may_import(package: str) -> None:
    path = ROOT / "bot" / package / "__init__.py"
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    assert docstring, f"{path} has no docstring"
    assert _import_rule_problems(f"bot.{package}", docstring) == []


@pytest.mark.parametrize(
    ("docstring", "problem"),
    [
        ("Shows MetaStudio import/export tasks.", "bot.db's docstring does not say what it may import"),
        ("Runtime code never imports this package.", "bot.db's docstring does not say what it may import"),
        ("May import ``bot.config`` and ``bot.services``.", "bot.db may import bot.services, a higher layer"),
        (
            "May import ``bot.config``; never ``bot.metastudio``.",
            "bot.db never imports bot.metastudio, which is not above it",
        ),
    ],
)
def test_the_docstring_check_sees_a_missing_or_wrong_import_rule(docstring: str, problem: str) -> None:
    assert _import_rule_problems("bot.db", docstring) == [problem]


def test_every_module_states_its_job() -> None:
    missing = [
        str(path.relative_to(ROOT))
        for path in _modules().values()
        if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert missing == []


# A module longer than this holds more than one job; migrations are records and may be longer.
MAX_MODULE_LINES = 700


def _line_counts() -> dict[str, int]:
    return {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in _modules().items()
        if ".migrations." not in f"{name}."
    }


def _too_long(counts: dict[str, int], limit: int) -> list[str]:
    return [f"{name}: {lines} lines" for name, lines in sorted(counts.items()) if lines > limit]


def test_no_module_in_bot_or_handlers_is_over_700_lines() -> None:
    assert _too_long(_line_counts(), MAX_MODULE_LINES) == []


def test_the_length_check_sees_a_long_module() -> None:
    counts = _line_counts()
    longest = max(counts, key=counts.__getitem__)
    assert _too_long(counts, counts[longest] - 1) == [f"{longest}: {counts[longest]} lines"]
    assert not any(".migrations." in name for name in counts)
    assert "bot.followups.watches" in counts  # the walk reaches nested packages
