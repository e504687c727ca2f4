"""Shared fixtures: the whole stack (simulator, Slack stand-in, bot) on loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.devtools.demo import LocalStack, demo_stack

# The database fixtures (sqlite_url, postgres_url, database_url), for every module.
pytest_plugins = ["tests.databases"]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalStack]:
    async with demo_stack(tmp_path) as local:
        yield local


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client
