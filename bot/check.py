"""``taskbot check``: does this configuration work? One line per thing checked."""

from __future__ import annotations

import sys
from typing import TextIO

from slack_sdk.errors import SlackApiError

from bot.config import ConfigError, load_settings
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.errors import MetaStudioError

OK, FAIL = "ok  ", "FAIL"


async def run_check(out: TextIO = sys.stdout) -> int:
    from bot.app import slack_client

    settings = load_settings()
    results: list[bool] = []

    def line(ok: bool, what: str, detail: str) -> None:
        results.append(ok)
        print(f"{OK if ok else FAIL}  {what}: {detail}", file=out)

    problems = settings.slack_problems() + settings.endpoint_problems()
    line(not problems, "configuration", "complete" if not problems else "; ".join(problems))

    if settings.slack_bot_token is None:
        line(False, "Slack auth.test", "skipped: SLACK_BOT_TOKEN is not set")
    else:
        try:
            auth = await slack_client(settings, settings.slack_bot_token.get_secret_value()).auth_test()
            line(True, "Slack auth.test", f"bot {auth.get('user')} in workspace {auth.get('team')} ({auth.get('team_id')})")
        except SlackApiError as exc:
            line(False, "Slack auth.test", f"Slack answered {exc.response.get('error')}")
        except Exception as exc:
            line(False, "Slack auth.test", f"could not reach Slack ({type(exc).__name__})")

    try:
        client = MetaStudioClient.from_settings(settings)
    except ConfigError as exc:
        line(False, "MetaStudio list call", "; ".join(exc.problems))
    else:
        async with client:
            try:
                page = await client.list_tasks(limit=1)
                line(
                    True,
                    "MetaStudio list call",
                    f"{page.value.count} tasks visible at {settings.metastudio_endpoint} (request {page.request_id})",
                )
            except MetaStudioError as exc:
                suffix = f" (request {exc.request_id})" if exc.request_id else ""
                line(False, "MetaStudio list call", exc.user_message + suffix)
    return 0 if all(results) else 1
