"""``taskbot check``: does this configuration work? One line per thing checked.

One workspace: the settings, the database (reachable, and is its schema current), Slack's ``auth.test`` with the bot token and
MetaStudio's list call. Many workspaces: tokens and cloud connections live in the database, so
the settings, the encryption key (it must open the secrets already stored) and the database are
checked, and how many workspaces are installed and connected is reported.

Exit code: 0 when every line is ok, 2 when any line fails (a variable missing, invalid, or
pointing at something that does not work), as ``serve`` exits 2 for a configuration it refuses.
"""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import column, func, inspect, select, text
from sqlalchemy import table as sql_table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.config import ConfigError, Settings, load_settings_and_mistakes
from bot.db.base import Database
from bot.db.preflight import database_problem, failure_reason, sqlite_path, stored_secrets_fit
from bot.db.schema import SchemaStatus, code_head, schema_status
from bot.db.workspaces import ConnectionRow
from bot.metastudio.errors import MetaStudioError
from bot.metastudio.regions import endpoint_problems
from bot.services.connections import env_client, environment_endpoints
from bot.slack.clients import web_client
from bot.slack.cloud_errors import error_text

OK, FAIL = "ok  ", "FAIL"
CONFIG_EXIT: Final = 2
INSTALLATIONS_TABLE = SQLAlchemyInstallationStore.default_installations_table_name


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.results: list[bool] = []

    def line(self, ok: bool, what: str, detail: str) -> None:
        self.results.append(ok)
        print(f"{OK if ok else FAIL}  {what}: {detail}", file=self.out)


async def run_check(out: TextIO = sys.stdout) -> int:
    # The report is the output: a client's log record (say, a failed call) must not print
    # through logging's last-resort handler ahead of or between its lines.
    logging.getLogger().addHandler(logging.NullHandler())
    # Every invalid variable is named below, and the rest is still checked.
    settings, first = load_settings_and_mistakes()
    report = _Report(out)
    found = settings.slack_problems()
    if not settings.multi_workspace:
        found += endpoint_problems(settings.region, settings.endpoint)
    problems = first.problems + first.besides(found)
    report.line(not problems, "configuration", "complete" if not problems else "; ".join(problems))
    await _check_database(settings, report)
    if settings.multi_workspace:
        await _check_encryption_key(settings, report)
    else:
        await _check_slack(settings, report)
        await _check_metastudio(settings, report)
    # One rule, as for serve: anything that fails is something to fix in the configuration or
    # what it points at, and each FAIL line names the variable to look at.
    return 0 if all(report.results) else CONFIG_EXIT


async def _check_database(settings: Settings, report: _Report) -> None:
    # The URL without its password: a check's output is often pasted into tickets.
    url = make_url(settings.database_url)
    shown = url.render_as_string(hide_password=True)
    problem = await database_problem(settings.database_url)
    if problem is not None:
        report.line(False, "database", problem)
        return
    path = sqlite_path(url)
    if path is not None and not path.exists():
        # Opening it would create it: a check leaves no taskbot.db behind in the current folder.
        report.line(True, "database", f"no SQLite file at {path} yet; `taskbot serve` creates it there")
        _report_schema(settings, SchemaStatus("empty", None, code_head()), report)
        return
    database = Database(settings.database_url)
    try:
        async with database.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            detail = f"reachable at {shown}"
            if settings.multi_workspace:
                installed = await _count(conn, INSTALLATIONS_TABLE)
                connected = await _count(conn, ConnectionRow.__tablename__)
                detail += f"; {installed} workspace(s) installed, {connected} connected to MetaStudio"
        report.line(True, "database", detail)
        _report_schema(settings, await schema_status(database.engine), report)
    except (OSError, SQLAlchemyError) as exc:
        report.line(
            False,
            "database",
            f"cannot open {shown} ({failure_reason(exc)}); check DATABASE_URL and the server",
        )
    finally:
        await database.dispose()


def _report_schema(settings: Settings, status: SchemaStatus, report: _Report) -> None:
    """Current, or what ``taskbot serve`` will do about it; FAIL when serve would refuse to start."""
    detail = status.describe()
    if status.current:
        report.line(True, "schema", detail)
    elif status.state == "ahead":
        report.line(False, "schema", detail)
    elif settings.migrate_on_start:
        report.line(True, "schema", f"{detail}; `taskbot serve` migrates it at start")
    else:
        report.line(False, "schema", f"{detail}; run `taskbot migrate` (TASKBOT_MIGRATE_ON_START is off)")


async def _count(conn: AsyncConnection, table: str) -> int:
    """Workspaces in one of our tables; 0 before the first start has created it.

    Distinct teams, not rows: slack_sdk's store keeps a row for every install of a workspace.
    """
    if not await conn.run_sync(lambda sync: inspect(sync).has_table(table)):
        return 0
    teams = select(func.count(func.distinct(column("team_id")))).select_from(sql_table(table))
    return int((await conn.execute(teams)).scalar_one())


async def _check_encryption_key(settings: Settings, report: _Report) -> None:
    from bot.db.crypto import SecretBox

    if settings.encryption_key is None:
        return  # already named by the configuration line
    try:
        box = SecretBox.from_setting(settings.encryption_key.get_secret_value())
    except ConfigError as exc:
        report.line(False, "encryption key", "; ".join(exc.problems))
        return
    path = sqlite_path(make_url(settings.database_url))
    if (path is not None and not path.exists()) or await database_problem(settings.database_url):
        report.line(True, "encryption key", "valid Fernet key(s); no stored secret to try yet")
        return
    database = Database(settings.database_url)
    try:
        fit = await stored_secrets_fit(database.engine, box)
    except (OSError, SQLAlchemyError) as exc:
        report.line(False, "encryption key", f"could not read the stored secrets ({failure_reason(exc)})")
        return
    finally:
        await database.dispose()
    if fit.problem is not None:
        report.line(False, "encryption key", fit.problem)
    else:
        report.line(True, "encryption key", f"valid Fernet key(s); opens all {fit.stored} stored secrets")


async def _check_slack(settings: Settings, report: _Report) -> None:
    if settings.slack_bot_token is None:
        report.line(False, "Slack auth.test", "skipped: SLACK_BOT_TOKEN is not set")
        return
    try:
        auth = await web_client(
            settings.slack_bot_token.get_secret_value(), api_url=settings.slack_api_url
        ).auth_test()
        report.line(
            True,
            "Slack auth.test",
            f"bot {auth.get('user')} in workspace {auth.get('team')} ({auth.get('team_id')})",
        )
    except SlackApiError as exc:
        url = settings.slack_api_url or "https://slack.com/api/"
        report.line(
            False,
            "Slack auth.test",
            f"Slack answered {exc.response.get('error')} at {url}auth.test; check SLACK_BOT_TOKEN "
            "(the Bot User OAuth Token, xoxb-…, of this app's workspace)",
        )
    except Exception as exc:
        url = settings.slack_api_url or "https://slack.com/api/"
        report.line(
            False,
            "Slack auth.test",
            f"could not reach Slack at {url} ({type(exc).__name__}); check the network and proxy, "
            "or SLACK_API_URL if you set it (it must end in /api/)",
        )


async def _check_metastudio(settings: Settings, report: _Report) -> None:
    try:
        client = env_client(settings)
    except ConfigError as exc:
        report.line(False, "MetaStudio list call", "; ".join(exc.problems))
        return
    endpoint = environment_endpoints(settings).metastudio
    async with client:
        try:
            page = await client.list_tasks(limit=1)
            report.line(
                True,
                "MetaStudio list call",
                f"{page.value.count} tasks visible at {endpoint} (request {page.request_id})",
            )
        except MetaStudioError as exc:
            suffix = f" (request {exc.request_id})" if exc.request_id else ""
            report.line(
                False,
                "MetaStudio list call",
                f"{endpoint}: {error_text(exc).rstrip('.')}{suffix}; "
                "check METASTUDIO_ENDPOINT (or METASTUDIO_REGION) and the credentials",
            )
