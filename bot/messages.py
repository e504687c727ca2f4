"""The one catalog of user-facing text.

Every sentence a Slack user or an operator reads comes from here, so wording stays consistent
and a translation is one more dictionary. Placeholders use ``str.format`` names.
"""

from __future__ import annotations

from typing import Any

EN: dict[str, str] = {
    # Usage and command parsing
    "usage": (
        "*Usage*\n"
        "• `/task &lt;task id&gt;`: show an import/export task, e.g. `/task fd1c56acbb2c4b1aa24ba37df99f3129`\n"
        "• `/task recent [resource]`: the 10 newest tasks, e.g. `/task recent knowledge-intent-question-create`\n"
        "• `/task help`: this message"
    ),
    "usage_hint": "[task id | recent [resource] | help]",
    "error_unknown_subcommand": (
        "I don't know `{word}`. Try `/task &lt;32-character task id&gt;`, `/task recent` or `/task help`."
    ),
    "error_invalid_task_id": (
        "`{task_id}` is not a task id: ids are 32 hexadecimal characters, "
        "like `fd1c56acbb2c4b1aa24ba37df99f3129`."
    ),
    "error_too_many_arguments": "`/task` takes one task id at a time. Try `/task {task_id}`.",
    # MetaStudio errors: one sentence, what went wrong and what to do
    "error_unexpected": "Something went wrong while asking MetaStudio. Please try again in a minute.",
    "error_mss_failed": "MetaStudio could not complete the request. Please try again in a minute.",
    "error_mss_internal": "MetaStudio had an internal error. Please try again in a minute.",
    "error_mss_invalid_parameter": "MetaStudio rejected the request as invalid. Check the task id and try again.",
    "error_auth": "MetaStudio did not accept taskbot's credentials. Ask an admin to check the AK/SK or IAM user.",
    "error_forbidden": (
        "taskbot's credentials may not read import/export tasks. "
        "Ask an admin to grant MetaStudio read permission."
    ),
    "error_not_found": "No task with that id exists in this project. Check the id and the region, then try again.",
    "error_throttled": "MetaStudio is busy right now (rate limited). Please try again in a minute.",
    "error_server": "MetaStudio is having trouble right now. Please try again in a few minutes.",
    "error_connection": "taskbot could not reach MetaStudio. Please try again in a few minutes.",
    "error_timeout": "MetaStudio took too long to answer. Please try again in a minute.",
    "error_bad_response": "MetaStudio sent an answer taskbot could not read. Please try again in a minute.",
    "error_not_configured": "taskbot is not connected to a MetaStudio project yet. Ask an admin to set it up.",
    "error_request_id": "Request id: `{request_id}`",
    # Cards
    "card_title_fallback": "Task {task_id}",
    "card_text": "{name}: {status}, {processed} of {total} processed",
    "status_finished": "Finished",
    "status_running": "Running",
    "status_not_started": "Not started",
    "status_with_code": "{emoji} *{label}* (status code `{code}`)",
    "status_no_code": "{emoji} *{label}* (no status code)",
    "field_status": "*Status*",
    "field_total": "*Total*",
    "field_succeeded": "*Succeeded*",
    "field_failed": "*Failed*",
    "field_type": "*Type*",
    "field_resource": "*Resource*",
    "field_operator": "*Operator*",
    "field_started": "*Started*",
    "field_ended": "*Ended*",
    "field_duration": "*Duration*",
    "progress_line": "`{bar}` {percent}  ({processed} of {total})",
    "progress_unknown": "Progress unknown: the task reports no total yet.",
    "not_set": "—",
    "context_line": "Task `{task_id}` · user `{user_id}` · request `{request_id}`",
    "button_refresh": "Refresh",
    "button_open": "Open",
    "recent_header": "Newest import/export tasks",
    "recent_header_resource": "Newest import/export tasks for {resource}",
    "recent_empty": "No import/export tasks found.",
    "recent_line": "{emoji} *{name}*\n`{task_id}` · {status} · {processed} of {total} processed",
    "error_card": ":warning: {message}",
    # Card details (cards.py)
    "emoji_finished": ":white_check_mark:",
    "emoji_running": ":hourglass_flowing_sand:",
    "emoji_not_started": ":white_circle:",
    "card_text_no_total": "{name}: {status}, {processed} processed",
    "field_failed_value": ":warning: {count}",
    "duration_days": "{days} d {hours:02d} h",
    "duration_hours": "{hours} h {minutes:02d} min",
    "duration_minutes": "{minutes} min {seconds:02d} s",
    "duration_seconds": "{seconds} s",
    "duration_instant": "under 1 s",
    "duration_so_far": "{duration} so far",
    "context_task": "Task `{task_id}`",
    "context_user": "user `{user_id}`",
    "context_request": "request `{request_id}`",
    "context_updated": "Updated {time}",
    "button_watch": "Notify this channel when done",
    "recent_status": "{label}, code `{code}`",
    "recent_status_no_code": "{label}, no status code",
    "recent_failed": ":warning: {count} failed",
    "recent_started": "started {date}",
    "recent_context": "Showing {shown} of {count}",
    # Slack delivery
    "error_slack": "taskbot could not post the card in this channel. Invite it with `/invite @taskbot` and try again.",
}

CATALOGS: dict[str, dict[str, str]] = {"en": EN}


def text(key: str, /, locale: str = "en", **values: Any) -> str:
    """The catalog entry ``key`` in ``locale`` (falling back to English), formatted with ``values``."""
    template = CATALOGS.get(locale, EN).get(key) or EN[key]
    return template.format(**values) if values else template
