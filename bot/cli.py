"""``taskbot``: serve, migrate, simulator, demo, playground, check, rotate-keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib.metadata
import logging
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

import uvicorn
from slack_sdk.errors import SlackApiError

from bot import logs
from bot.aio.backoff import backoff_delay
from bot.config import ConfigError, Settings, load_settings, load_settings_and_mistakes

log = logging.getLogger("taskbot")
T = TypeVar("T")
# One Socket Mode attempt (apps.connections.open, then the websocket) is given this long.
SOCKET_MODE_ATTEMPT_SECONDS: Final = 10.0


def _secrets(settings: Settings) -> list[str]:
    values = [
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        settings.slack_client_secret,
        settings.cloud_sk,
        settings.cloud_security_token,
        settings.iam_password,
        settings.auth_token,
        settings.encryption_key,
    ]
    return [v.get_secret_value() for v in values if v is not None]


def _settings_for_serving() -> tuple[Settings, list[str], frozenset[str]]:
    """The settings, every problem they have, and the fields that were invalid (at their defaults)."""
    # Go on past invalid variables, so one message lists every mistake, not the first few.
    settings, first = load_settings_and_mistakes()
    problems = settings.slack_problems()
    if not settings.multi_workspace:
        # One workspace takes its MetaStudio project from the environment; installs connect their own.
        from bot.metastudio.regions import endpoint_problems
        from bot.services.connections import environment_credentials

        problems += endpoint_problems(settings.region, settings.endpoint)
        try:
            environment_credentials(settings)
        except ConfigError as exc:
            problems += exc.problems
    elif settings.encryption_key is not None:
        from bot.db.crypto import SecretBox

        try:
            SecretBox.from_setting(settings.encryption_key.get_secret_value())
        except ConfigError as exc:
            problems += exc.problems
    return settings, first.problems + first.besides(problems), first.invalid


def serve(port: int | None) -> int:
    settings, problems, invalid = _settings_for_serving()
    port = port or settings.port
    # What only trying can tell, listed at once with the settings' own problems; a variable
    # already named as invalid is not tried at its default.
    if "database_url" not in invalid:
        problems.append(asyncio.run(_database_problem(settings)) or "")
    if "port" not in invalid and "host" not in invalid:
        problems.append(port_problem(port, settings.host) or "")
    problems = [p for p in problems if p]
    if problems:
        raise ConfigError(problems)
    from bot.db.preflight import claim_sqlite_file

    if problem := claim_sqlite_file(settings.database_url):
        raise ConfigError([problem])
    logs.configure(settings.log_format, settings.log_level, _secrets(settings))
    from bot.servers import ServerStartupFailed

    try:
        return run_fast(_serve(settings, port))
    except ServerStartupFailed as failed:
        # uvicorn has logged why; the exit code stays the one uvicorn gives a failed startup.
        return failed.exit_code
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
            raise
        # Another process took the port between port_problem() and our bind.
        raise ConfigError([_port_sentence(port, exc, settings.host)]) from None


async def _database_problem(settings: Settings) -> str | None:
    from bot.db.preflight import database_problem

    return await database_problem(settings.database_url)


def port_problem(port: int, host: str = "0.0.0.0") -> str | None:
    """None when ``host:port`` can be listened on; else one sentence naming PORT or HOST."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # As serve_asgi binds: SO_REUSEADDR lets a restart reuse a port in TIME_WAIT, not a live one.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        return _port_sentence(port, exc, host)
    finally:
        probe.close()
    return None


def _port_sentence(port: int, exc: OSError, host: str = "0.0.0.0") -> str:
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"HOST={host!r} is not an IPv4 address of this machine; "
            "use e.g. HOST=0.0.0.0 (every interface) or HOST=127.0.0.1 (this machine only)"
        )
    why = (
        "is already in use by another process"
        if exc.errno == errno.EADDRINUSE
        else "cannot be listened on by this user"
        if exc.errno == errno.EACCES
        else f"cannot be listened on ({errno.errorcode.get(exc.errno or 0, 'error')})"
    )
    return f"PORT={port}: port {port} {why}; stop that process or choose a free port, e.g. PORT=3001"


def run_fast(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (it comes with uvicorn[standard]); plain asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _serve(settings: Settings, port: int) -> int:
    """HTTP mode, or Socket Mode when SLACK_APP_TOKEN is set; SIGTERM and SIGINT stop it gracefully."""
    # The schema first, before any server: a schema this code cannot run on ends the process
    # with one sentence (main() prints it), not with a failed ASGI lifespan and its traceback.
    await _prepare_schema(settings)
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from starlette.applications import Starlette

    from bot.app import Runtime, create_asgi, create_bolt_app, health_routes, running
    from bot.servers import serve_asgi

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if settings.slack_app_token is None:
        async with serve_asgi(create_asgi(settings), host=settings.host, port=port):
            log.info("serving HTTP on %s:%s", settings.host, port)
            await stop.wait()
            log.info("shutting down")
        return 0

    runtime = Runtime(settings)
    bolt = create_bolt_app(settings, runtime, socket_mode=True)
    handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
    async with (
        running(runtime, bolt),
        serve_asgi(Starlette(routes=health_routes(runtime)), host=settings.host, port=port),
    ):
        try:
            if await _connect_socket_mode(handler, settings, stop):
                log.info("connected in Socket Mode; health and metrics on port %s", port)
                await stop.wait()
            log.info("shutting down")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(handler.close_async(), 5)
    return 0


class _Stopped(Exception):
    pass


async def _unless_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event, timeout: float | None) -> T:
    """``work``'s result; raises ``_Stopped`` (cancelling it) the moment ``stop`` is set."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return task.result()
        if stopping in done:
            raise _Stopped()
        raise TimeoutError()
    finally:
        for pending in (task, stopping):
            pending.cancel()


async def _connect_socket_mode(handler: Any, settings: Settings, stop: asyncio.Event) -> bool:
    """Open the Socket Mode connection, retrying with backoff until it works or ``stop`` is set.

    slack_sdk's own connect loop retries forever with a traceback per attempt and does not
    notice SIGTERM; here the WSS URL is fetched by us (``apps.connections.open``), one log line
    per failed attempt, capped exponential backoff (1 s doubling to 60 s), and a stop request
    ends any attempt or wait at once. Returns False when stopped before connecting.
    """
    from slack_sdk.web.async_client import AsyncWebClient

    client = handler.client
    api_url = settings.slack_api_url or "https://slack.com/api/"
    # Its own client without retry handlers: this loop is the retry policy, one line per attempt.
    opener = AsyncWebClient(base_url=api_url, timeout=int(SOCKET_MODE_ATTEMPT_SECONDS), retry_handlers=[])
    attempt = 0
    while not stop.is_set():
        attempt += 1
        delay = backoff_delay(retries=attempt - 1, first=1.0, ceiling=60.0)
        try:
            opened = await _unless_stopped(
                opener.apps_connections_open(app_token=client.app_token),
                stop,
                SOCKET_MODE_ATTEMPT_SECONDS,
            )
            client.wss_uri = opened["url"]
            # With the URL in hand, slack_sdk only opens the websocket.
            await _unless_stopped(handler.connect_async(), stop, SOCKET_MODE_ATTEMPT_SECONDS)
            return True
        except _Stopped:
            return False
        except Exception as exc:  # every failure is retried; the reason is logged, not a traceback
            client.wss_uri = None
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning(
                "Socket Mode: could not connect through %s (attempt %d: %s); retrying in %.0f s",
                api_url,
                attempt,
                reason,
                delay,
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return False


async def _prepare_schema(settings: Settings) -> None:
    """The schema current, and the encryption key able to open the stored secrets."""
    from bot.db.base import Database
    from bot.db.crypto import SecretBox
    from bot.db.preflight import stored_secrets_fit
    from bot.db.schema import ensure_schema

    storage = Database(settings.database_url)
    try:
        await ensure_schema(storage.engine, migrate_on_start=settings.migrate_on_start)
        if settings.multi_workspace and settings.encryption_key is not None:
            box = SecretBox.from_setting(settings.encryption_key.get_secret_value())
            fit = await stored_secrets_fit(storage.engine, box)
            if fit.problem is not None and fit.opened == 0:
                # A wrong key, not one stale row: every request would fail, so do not start.
                raise ConfigError([fit.problem])
            if fit.problem is not None:
                log.warning("%s", fit.problem)
    finally:
        await storage.dispose()


async def migrate() -> int:
    """Upgrade DATABASE_URL to this release's schema and say what was done."""
    from sqlalchemy.engine import make_url

    from bot.db.base import Database
    from bot.db.schema import migrate as upgrade

    settings = load_settings()
    if problem := await _database_problem(settings):
        raise ConfigError([problem])
    storage = Database(settings.database_url)
    try:
        report = await upgrade(storage.engine)
    finally:
        await storage.dispose()
    print(f"Database {make_url(settings.database_url).render_as_string(hide_password=True)}:")
    for line in report.lines():
        print(f"  {line}")
    return 0


def simulator(host: str, port: int, tasks: str | None) -> int:
    from bot.devtools.simulator import (
        DEMO_ACCESS_KEY,
        DEMO_PROJECT_ID,
        DEMO_REGION,
        DEMO_SECRET_KEY,
        Simulator,
    )

    sim = Simulator.from_json_file(tasks) if tasks else Simulator()
    print(
        simulator_banner(host, port, DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_PROJECT_ID, DEMO_REGION),
        flush=True,
    )
    uvicorn.run(sim.app, host=host, port=port, log_level="warning")
    return 0


def simulator_banner(
    host: str, port: int, access_key: str, secret_key: str, project_id: str, region: str
) -> str:
    """What to paste into the shell that runs ``taskbot serve``; the values are the simulator's demo ones."""
    return "\n".join(
        [
            f"MetaStudio simulator on http://{host}:{port} (demo credentials, accepted only by the simulator).",
            "Point taskbot at it from another shell:",
            f"  export METASTUDIO_ENDPOINT=http://{host}:{port}",
            f"  export METASTUDIO_REGION={region}",
            f"  export HUAWEICLOUD_SDK_AK={access_key}",
            f"  export HUAWEICLOUD_SDK_SK={secret_key}",
            f"  export HUAWEICLOUD_SDK_PROJECT_ID={project_id}",
        ]
    )


async def rotate_keys() -> int:
    """Re-encrypt every workspace's stored secrets (cloud credentials and Slack tokens) with the first key."""
    from bot.db.base import Database
    from bot.db.crypto import SecretBox, SecretUnreadable
    from bot.db.installations import EncryptedInstallationStore
    from bot.db.schema import ensure_schema
    from bot.db.workspaces import WorkspaceStore

    settings = load_settings()
    if not settings.multi_workspace or settings.encryption_key is None:
        raise ConfigError(
            ["rotate-keys needs SLACK_CLIENT_ID and TASKBOT_ENCRYPTION_KEY (new key first, then the old)"]
        )
    box = SecretBox.from_setting(settings.encryption_key.get_secret_value())
    if problem := await _database_problem(settings):
        raise ConfigError([problem])
    database = Database(settings.database_url)
    try:
        await ensure_schema(database.engine, migrate_on_start=settings.migrate_on_start)
        installations = EncryptedInstallationStore(
            client_id=settings.slack_client_id or "", engine=database.engine, box=box
        )
        # Each step is one transaction; what the first did stays readable with the new key,
        # so running the command again after a failure is safe.
        try:
            tokens = await installations.rotate_keys()
        except SecretUnreadable as exc:
            print(f"Nothing changed: {exc}.", file=sys.stderr)
            return 1
        try:
            touched = await WorkspaceStore(database, box).rotate_keys()
        except SecretUnreadable as exc:
            done = (
                "Nothing changed" if not tokens.rows else "Slack tokens re-encrypted, no connection changed"
            )
            print(f"{done}: {exc}.", file=sys.stderr)
            return 1
    finally:
        await database.dispose()
    print(f"{touched} workspace connection(s) re-encrypted with the first key.")
    legacy = f" ({tokens.plaintext} token(s) were stored in plaintext before and are now encrypted)"
    print(
        f"{tokens.rows} Slack installation row(s) re-encrypted{legacy if tokens.plaintext else ''}; "
        "the other keys can now be dropped."
    )
    return 0


def _version() -> str:
    """The installed distribution's version (pyproject.toml's), as pip knows it."""
    try:
        return importlib.metadata.version("taskbot")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Every ``taskbot`` subcommand and option; the docs' commands are checked against it."""
    parser = argparse.ArgumentParser(prog="taskbot", description="MetaStudio import/export tasks in Slack.")
    parser.add_argument("--version", action="version", version=f"taskbot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser(
        "serve", help="run the Slack app (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)"
    )
    serve_parser.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000)")
    sim_parser = sub.add_parser("simulator", help="run the MetaStudio simulator")
    sim_parser.add_argument("--port", type=int, default=8080)
    sim_parser.add_argument("--host", default="127.0.0.1")
    sim_parser.add_argument(
        "--tasks", default=None, help="JSON file of tasks (default: the built-in demo set)"
    )
    demo_parser = sub.add_parser("demo", help="run everything on loopback and show what a channel would see")
    demo_parser.add_argument("--no-color", action="store_true")
    sub.add_parser(
        "migrate", help="upgrade the database schema to this release (serve does it at start by default)"
    )
    sub.add_parser(
        "playground", help="type /task commands against the real server, a simulator and a Slack stand-in"
    )
    sub.add_parser("check", help="verify the configuration against Slack and MetaStudio")
    sub.add_parser(
        "rotate-keys", help="re-encrypt stored workspace secrets with the first TASKBOT_ENCRYPTION_KEY"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args.port)
        if args.command == "simulator":
            return simulator(args.host, args.port, args.tasks)
        if args.command == "demo":
            from bot.devtools.demo import run_demo

            return asyncio.run(run_demo(color=not args.no_color and sys.stdout.isatty()))
        if args.command == "playground":
            from bot.devtools.playground import run_playground

            return run_playground()
        if args.command == "migrate":
            return asyncio.run(migrate())
        if args.command == "check":
            from bot.services.check import run_check

            return asyncio.run(run_check())
        if args.command == "rotate-keys":
            return asyncio.run(rotate_keys())
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except Exception as exc:
        # Imported here: bot.db.schema pulls in Alembic, which `taskbot simulator` has no use for.
        from bot.db.schema import SchemaError

        if not isinstance(exc, SchemaError):
            raise
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
