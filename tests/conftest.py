"""Shared fixtures: the whole stack (simulator, Slack stand-in, bot) on loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from bot.devtools.demo import LocalStack, demo_stack

# The database fixtures (sqlite_url, postgres_url, database_url), for every module.
pytest_plugins = ["tests.databases"]


@pytest.fixture(scope="session", autouse=True)
def outside_the_clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Run every test, and every ``taskbot`` it starts, from a scratch folder.

    taskbot reads ``.env`` from its working folder, and the README has people create one in
    the clone; its values must not leak into tests that mean to give their own.
    """
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("cwd")
        patch.chdir(folder)
        yield folder


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    async with demo_stack(tmp_path) as local:
        yield local


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client
