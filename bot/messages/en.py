"""English: the reference catalog.

Every other catalog has exactly these keys and, per key, the same placeholder names
(tests/test_messages.py enforces both). Placeholders use ``str.format`` names.
"""

from __future__ import annotations

CATALOG: dict[str, str] = {
    # Usage and command parsing
    "usage": (
        "*Usage*\n"
        "• `/task &lt;task id&gt;`: show an import/export task, e.g. `/task fd1c56acbb2c4b1aa24ba37df99f3129`\n"
        "• `/task recent [resource] [page N]`: the 10 newest tasks (`page 2`: the next ten), e.g. `/task recent knowledge-intent-question-create`\n"
        "• `/task watch &lt;task id&gt;`: tell this channel when the task finishes; `/task unwatch &lt;task id&gt;` stops\n"
        "• `/task watching`: what this channel follows, with Stop buttons\n"
        "• `/task subscribe [resource …] [failed] [by:operator]`: announce every task of the project "
        "that finishes from now on (`failed`: only tasks that had failures; `by:name`: only that "
        "operator's tasks); `/task unsubscribe` stops\n"
        "• `/task digest daily|weekdays HH:MM [quiet]`, `/task digest weekly mon HH:MM [quiet]`: a summary "
        "of the project's finished tasks at that hour, in your timezone (`quiet`: skip it when nothing "
        "finished); `/task digest` shows it, `/task digest off` stops\n"
        "• `/task help`: this message"
    ),
    "usage_hint": "[task id | recent | watch <id> | watching | subscribe | help]",
    "error_unknown_subcommand": (
        "I don't know `{word}`. Try `/task &lt;32-character task id&gt;`, `/task recent` or `/task help`."
    ),
    "error_invalid_task_id": (
        "`{task_id}` is not a task id: ids are 32 hexadecimal characters, "
        "like `fd1c56acbb2c4b1aa24ba37df99f3129`."
    ),
    "error_takes_no_arguments": "`/task {word}` takes no arguments. Try `/task {word}`.",
    "error_needs_task_id": "`/task {word}` needs one task id, e.g. `/task {word} fd1c56acbb2c4b1aa24ba37df99f3129`.",
    "error_too_many_arguments": "`/task` takes one task id at a time. Try `/task {task_id}`.",
    # MetaStudio errors: one sentence, what went wrong and what to do
    "error_unexpected": "Something went wrong while asking MetaStudio. Please try again in a minute.",
    "error_database_unavailable": "taskbot cannot reach its database right now, so it cannot answer in this workspace. Please try again in a few minutes.",
    "error_workspace_unreadable": "taskbot cannot open this workspace's saved tokens (its encryption key changed). Please ask whoever runs taskbot to check TASKBOT_ENCRYPTION_KEY.",
    "error_internal": "Something went wrong inside taskbot (it is logged for the operator). Please try again in a minute.",
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
    "error_metastudio_said": "MetaStudio said `{code}`: “{message}”.",
    "error_metastudio_said_request": "MetaStudio said `{code}`: “{message}” (request id `{request_id}`).",
    "error_project_not_found": (
        "IAM lists no single MetaStudio project named `{region}` for these keys. "
        "Ask an admin to enter the project id."
    ),
    "error_not_configured": "taskbot is not connected to a MetaStudio project yet. Ask an admin to set it up.",
    "not_connected_admin": (
        "This workspace is not connected to MetaStudio yet: open taskbot's *Home* tab and choose "
        "*Configure connection*."
    ),
    "not_connected_member": (
        "This workspace is not connected to MetaStudio yet: ask a workspace admin or owner to connect it "
        "in taskbot's *Home* tab."
    ),
    "watch_started": (
        "I'll tell this channel when *{name}* finishes (I stop watching after {hours} h). "
        "`/task watching` lists what this channel follows."
    ),
    "watch_already": "This channel is already watching *{name}*; it will be told once, when it finishes.",
    "watch_already_finished": "*{name}* has already finished, so there is nothing to watch. `/task &lt;task id&gt;` shows its card.",
    "unwatch_done": "This channel no longer watches `{task_id}`.",
    "unwatch_none": "This channel was not watching `{task_id}`. `/task watching` lists what it follows.",
    "subscribe_scope_all": "every resource",
    "subscribe_started": "This channel will hear about every task of {scope} that finishes from now on.",
    "subscribe_updated": "This channel's project feed now covers {scope}.",
    "unsubscribe_done": "This channel's project feed is off.",
    "unsubscribe_none": "This channel has no project feed. `/task subscribe` starts one.",
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
    # Follow-ups (bot/slack/alerts.py, bot/followups/)
    "alert_finished": "{mention}{emoji} *{name}* finished.",
    "alert_failed_warning": ":warning: *{count} failed*",
    "alert_succeeded_value": "{succeeded} of {total}",
    "alert_failed_value": ":warning: *{count}*",
    "alert_field_rate": "*Success rate*",
    "alert_rate_value": "{percent}%",
    "alert_context_status": "status code `{code}`",
    "alert_context_feed": "from this channel's project feed",
    "alert_finished_text": "{mention}{name} finished: {succeeded} of {total} succeeded",
    "alert_finished_text_failed": "{mention}{name} finished: {succeeded} of {total} succeeded, {failed} failed",
    "alert_expired": "{mention}I stopped watching *{name}* (`{task_id}`): it had not finished after {hours} h.",
    "alert_expired_last": "Last seen: {processed} of {total} processed.",
    "alert_expired_last_no_total": "Last seen: {processed} processed.",
    "alert_not_found": "{mention}I stopped watching task `{task_id}`: MetaStudio no longer finds it in this project.",
    "alert_that_channel": "a channel",
    "slack_reason_channel_not_found": "that channel no longer exists or I cannot see it",
    "slack_reason_not_in_channel": "I am not a member of it",
    "slack_reason_is_archived": "it is archived",
    "slack_reason_restricted_action": "a workspace setting stops me posting there",
    "slack_reason_other": "Slack refused the message",
    "dm_cannot_post_watch": (
        "I could not post in {channel} about task `{task_id}` because {reason}, so that channel no longer "
        "watches it; invite me with `/invite @taskbot` and watch the task again."
    ),
    "dm_cannot_post_feed": (
        "I could not post in {channel} because {reason}, so its project feed is off; "
        "invite me with `/invite @taskbot` and subscribe again."
    ),
    "watching_header": "Followed in this channel",
    "watching_text": "Tasks watched in this channel: {count}",
    "watching_no_feed": "No project feed in this channel.",
    "watching_feed_all": ":satellite_antenna: *Project feed:* every task of the project that finishes is announced here.",
    "watching_feed_resources": ":satellite_antenna: *Project feed:* every task of {resources} that finishes is announced here.",
    "watching_empty": "This channel is not watching any task.",
    "watching_item": ":eyes: `{task_id}` · asked by {mention} · since {since} · until {until}",
    "watching_more": "…and {count} more.",
    "watching_note": ":eyes: Watching: this channel is told when the task finishes.",
    "button_unwatch": "Stop watching",
    "button_unsubscribe": "Stop the feed",
    # Workspaces, App Home and the admin modals (bot/slack/home.py, bot/slack/modals.py, bot/db/workspaces.py)
    "home_connection_header": "MetaStudio connection",
    "home_not_connected": (
        ":white_circle: Not connected yet: `/task` cannot read any project until a workspace admin "
        "or owner connects this workspace to a MetaStudio project."
    ),
    "home_status_ok": ":large_green_circle: Connected: the last call to MetaStudio worked.",
    "home_status_error": ":red_circle: The last call to MetaStudio failed.",
    "home_status_untested": ":white_circle: Saved; no call to MetaStudio has been made since the last change.",
    "home_incomplete": ":warning: Some credentials are missing: open Configure connection and enter them again.",
    "home_field_region": "*Region*",
    "home_field_endpoint": "*Endpoint*",
    "home_field_project": "*Project id*",
    "home_field_credentials": "*Credentials*",
    "home_field_last_ok": "*Last successful call*",
    "home_field_last_error": "*Last error*",
    "home_field_watches": "*Active watches*",
    "home_endpoint_default": "The region's default",
    "home_never": "Never",
    "home_last_error_value": "{error}\n{date}",
    "home_credentials_aksk": "{kind}, access key {hint}",
    "home_credentials_iam": "{kind} {user} of account {domain}",
    "credential_aksk": "AK/SK",
    "credential_temporary_aksk": "Temporary AK/SK",
    "credential_iam_password": "IAM user",
    "credential_iam_token": "IAM token",
    "home_button_configure": "Configure connection",
    "home_guardrails_header": "Who can use /task",
    "home_guardrails_unrestricted": "Everyone in this workspace, in any channel.",
    "home_guardrails_channels": "*Channels:* {channels}",
    "home_guardrails_any_channel": "*Channels:* any",
    "home_guardrails_usergroup": "*People:* members of {group}",
    "home_guardrails_anyone": "*People:* anyone",
    "home_button_guardrails": "Change who can use /task",
    "home_admins_only": "Only a workspace admin or owner can change these settings.",
    "home_admins_ask": "Only a workspace admin or owner can change these settings: ask {admins}, who set taskbot up.",
    "outsider_denied": (
        "You're from another organisation: in this shared channel you can look at tasks, but only "
        "members of this workspace can watch, stop, subscribe or change taskbot's settings."
    ),
    "install_org_wide_refused": (
        "taskbot installs into one workspace at a time, not into a whole Enterprise Grid organisation; "
        "nothing was installed, so ask an admin of each workspace that wants it to install it there."
    ),
    "admin_only": "Only a workspace admin or owner can change taskbot's settings; nothing was changed.",
    "connection_test_incomplete": "Fill in the required fields first; then test again.",
    "connection_test_failed": "The test call failed: {error}",
    "connection_test_ok": ":white_check_mark: Connected: MetaStudio answered and lists {count} tasks in this project.",
    "guardrails_usergroup_unknown": "No user group has that handle in this workspace; enter its id (S…) or an existing @handle.",
    "home_audit_header": "Recent changes",
    "home_audit_empty": "No changes yet.",
    "home_audit_line": "{date} · {user} {action} · {detail}",
    "audit_connection_updated": "changed the MetaStudio connection",
    "audit_guardrails_updated": "changed who can use /task",
    "audit_language_updated": "changed the language in channels",
    "audit_other": "did {action}",
    "home_language_header": "Language in channels",
    "home_language_hint": (
        "Cards, completion alerts and notices in channels use this language. "
        "Replies only one person sees always use that person's Slack language."
    ),
    "home_language_follow": "Follow the person who asked",
    "language_name_en": "English",
    "language_name_zh-CN": "简体中文",
    "modal_save": "Save",
    "modal_cancel": "Cancel",
    "connection_modal_title": "MetaStudio connection",
    "connection_intro": (
        "Connect this workspace to one MetaStudio project. Secrets are encrypted and never shown again: "
        "leave a secret empty to keep the stored one. Changing the credential type needs all of its fields."
    ),
    "connection_region": "Region",
    "connection_region_placeholder": "Choose a region",
    "connection_region_hint": "The region of the MetaStudio project.",
    "connection_endpoint": "Endpoint override",
    "connection_endpoint_placeholder": "https://metastudio.cn-north-4.myhuaweicloud.com",
    "connection_endpoint_hint": "Optional: leave empty to use the region's endpoint. Must start with https://.",
    "connection_project_id": "Project id",
    "connection_project_id_placeholder": "0123456789abcdef0123456789abcdef",
    "connection_project_id_hint": "The project id for that region, under My Credentials > API Credentials. Leave it empty with AK/SK and taskbot looks it up.",
    "connection_kind": "Credential type",
    "connection_kind_aksk": "AK/SK",
    "connection_kind_temporary_aksk": "Temporary AK/SK and security token",
    "connection_kind_iam_password": "IAM user name and password",
    "connection_access_key": "Access key (AK)",
    "connection_secret_key": "Secret key (SK)",
    "connection_security_token": "Security token",
    "connection_iam_username": "IAM user name",
    "connection_iam_username_placeholder": "taskbot-reader",
    "connection_iam_password": "IAM password",
    "connection_iam_domain": "Account name (IAM domain)",
    "connection_iam_domain_placeholder": "The account that owns the IAM user",
    "connection_hint_aksk": "For AK/SK and temporary AK/SK.",
    "connection_hint_token": "For temporary AK/SK only.",
    "connection_hint_iam": "For an IAM user only.",
    "connection_secret_placeholder": "Paste it here",
    "connection_secret_stored": "Set: leave empty to keep it",
    "connection_access_key_stored": "Set ({hint}): leave empty to keep it",
    "connection_test": "Test connection",
    "connection_test_result": ":test_tube: {result}",
    "connection_error_project_id_missing": "Enter the project id.",
    "connection_error_project_id_invalid": (
        "A project id is 8 to 64 letters and digits, like 0123456789abcdef0123456789abcdef."
    ),
    "connection_error_endpoint": (
        "Enter an https:// address without a user name, password, query or fragment, or leave it empty."
    ),
    "connection_error_endpoint_not_https": "taskbot only sends your keys over https://, so enter an https:// address.",
    "connection_error_endpoint_host": (
        "taskbot only connects to Huawei Cloud hosts (like metastudio.cn-north-4.myhuaweicloud.com); "
        "ask the operator to allow this host if it is really yours."
    ),
    "connection_error_endpoint_address": (
        "That host resolves to a private, loopback or link-local address, which taskbot refuses; "
        "enter the public Huawei Cloud endpoint."
    ),
    "connection_error_endpoint_unresolved": "That host name does not resolve; check the spelling of the endpoint.",
    "connection_error_region": "Choose a region, or enter an endpoint override.",
    "connection_error_kind": "Choose a credential type.",
    "connection_error_access_key": "Enter the access key (AK): 8 to 128 letters and digits.",
    "connection_error_secret_key": "Enter the secret key (SK) that goes with the access key.",
    "connection_error_secret_key_invalid": "A secret key has no spaces and at most 256 characters.",
    "connection_error_security_token": "Enter the security token that goes with these temporary credentials.",
    "connection_error_iam_username": "Enter the IAM user name.",
    "connection_error_iam_password": "Enter the IAM user's password.",
    "connection_error_iam_domain": "Enter the name of the account that owns the IAM user.",
    "connection_error_invalid": "Use at most {limit} characters, on one line.",
    "connection_error_too_long": "Use at most {limit} characters.",
    "guardrails_modal_title": "Who can use /task",
    "guardrails_intro": (
        "Limit `/task` to some channels, to the members of one user group, or both. "
        "Leave both empty to let everyone use it everywhere."
    ),
    "guardrails_channels": "Channels",
    "guardrails_channels_placeholder": "Any channel",
    "guardrails_channels_hint": "Only in these channels. Empty: any channel.",
    "guardrails_usergroup": "User group",
    "guardrails_usergroup_placeholder": "S0123ABCD or @oncall",
    "guardrails_usergroup_hint": "Only members of this user group, by id or handle. Empty: anyone.",
    "guardrails_error_channels": "Choose public or private channels only.",
    "guardrails_error_usergroup": "Enter a user group id like S0123ABCD or a handle like @oncall, or leave it empty.",
    "guardrails_denied_channel": (
        "`/task` is limited to {channels} in this workspace; to change that, ask a workspace admin or owner."
    ),
    "guardrails_denied_usergroup": (
        "`/task` is limited to members of {group} in this workspace; to be added or to change that, "
        "ask a workspace admin or owner."
    ),
    # Workflow Builder steps (bot/slack/steps.py): Slackbot shows these to whoever ran the workflow
    "step_expired": "Task {task_id} had not finished when this step's time limit ran out.",
    "step_task_gone": "Task {task_id} no longer exists in this MetaStudio project, so this step stopped waiting for it.",
    "step_invalid_timeout": "The time limit must be a number of hours above 0 and at most {hours}.",
    "step_denied_usergroup": (
        "taskbot is limited to members of {group} in this workspace, and the person who ran this "
        "workflow is not one; to change that, ask a workspace admin or owner."
    ),
    "step_denied_unknown_user": (
        "taskbot is limited to members of {group} in this workspace, and this step does not know who "
        "ran the workflow: give its *User* input the person who used the workflow."
    ),
    # Numbers and lists (bot/messages/format.py): a language changes these, not the code.
    "format_thousands": ",",
    "format_decimal": ".",
    "format_percent": "{value}%",
    "list_separator": ", ",
    # Pace, trend and stalls (bot/slack/cards.py, bot/slack/alerts.py)
    "pace_line": "≈ {eta} left · {rate}",
    "rate_per_second": "{rate} items/s",
    "rate_per_minute": "{rate} items/min",
    "eta_minutes": "{minutes} min",
    "eta_under_minute": "under 1 min",
    "trend_line": "Trend `{spark}`",
    "stalled_line": ":double_vertical_bar: *Stalled*: no progress for {duration}, stuck at {processed} of {total}",
    "stalled_line_no_total": ":double_vertical_bar: *Stalled*: no progress for {duration}, stuck at {processed}",
    "resumed_line": "Moving again after a stall of {duration}",
    "stall_notice": ":double_vertical_bar: *{name}*: no progress for {duration}, stuck at {processed} of {total}.",
    "stall_notice_no_total": ":double_vertical_bar: *{name}*: no progress for {duration}, stuck at {processed}.",
    "type_code": "`{code}` (code; the API does not document its values)",
    # Feed filters
    "feed_filter_failed": "only tasks that had failures",
    "feed_filter_operator": "only tasks by `{operator}`",
    "feed_filters": "Filters: {filters}.",
    "error_subscribe_operator": (
        "`by:` needs one operator name, e.g. `/task subscribe failed by:adminUserAccount`."
    ),
    # /task recent paging
    "recent_page_context": "Page {page}: tasks {first} to {last} of {count}",
    "recent_more": "Next ten: `/task recent {resources}page {page}`",
    "recent_paging_ignored": (
        "MetaStudio sent the newest tasks again instead of that page: paging is not part of its "
        "documented task list, so only the newest ten can be shown. `/task recent` shows them."
    ),
    "error_recent_page": "The page must be a whole number from 1 to {max}, e.g. `/task recent page 2`.",
    # Digests
    "error_digest_usage": "I could not read that schedule. Try `/task digest daily 09:00`, `/task digest weekdays 09:00`, `/task digest weekly mon 09:00` or `/task digest off`.",
    "digest_when_daily": "every day at {time}",
    "digest_when_weekdays": "on weekdays at {time}",
    "digest_when_weekly": "every {day} at {time}",
    "digest_quiet": " Digests in which nothing finished are skipped.",
    "digest_set": "This channel gets a digest of finished tasks {when} ({timezone}).{quiet}",
    "digest_show": "This channel gets a digest of finished tasks {when} ({timezone}).{quiet} `/task digest off` stops it.",
    "digest_none": "This channel has no digest. `/task digest daily 09:00` starts one.",
    "digest_off_done": "This channel's digest is off.",
    "watching_digest": ":calendar: *Digest:* {when} ({timezone}).",
    "weekday_0": "Monday",
    "weekday_1": "Tuesday",
    "weekday_2": "Wednesday",
    "weekday_3": "Thursday",
    "weekday_4": "Friday",
    "weekday_5": "Saturday",
    "weekday_6": "Sunday",
    "digest_header": "Import/export digest",
    "digest_period": "Tasks that finished from {since} to {until}.",
    "digest_late": ":hourglass: This digest is late: taskbot was not running at its scheduled time.",
    "digest_summary": "*{finished}* finished · *{with_failures}* with failures · *{items}* items processed · success rate *{rate}*",
    "digest_nothing": "Nothing finished in this period.",
    "digest_slowest": "*Slowest*",
    "digest_failed": "*With failures*",
    "digest_item_slow": "*{name}* · took {duration}",
    "digest_item_failed": "*{name}* · {failures} of {total} failed",
    "digest_more_failed": "…and {count} more tasks with failures: `/task recent` lists the newest.",
    "digest_text": "Digest: {finished} tasks finished, {with_failures} with failures.",
}
