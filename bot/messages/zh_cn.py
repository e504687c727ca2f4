"""简体中文 (Simplified Chinese), for the ``zh-CN`` and ``zh`` Slack locales.

Written for MetaStudio users, with the terms of the Chinese API reference and the console:
导入导出任务, 任务状态, 成功数, 失败数, 操作人. The ``MSS.*`` sentences use that reference's own
descriptions of the codes (失败, 内部错误, 非法参数, 非法访问，未鉴权或者鉴权失败).

Conventions (checked by tests/test_messages.py): full-width punctuation in Chinese sentences;
ids, codes and commands stay in ``code`` spans; a space separates Chinese from Latin text, numbers,
``*bold*`` and ``code`` spans, because Slack renders ``*…*`` and backticks only at word boundaries.
Same keys and placeholder names as ``en.py``.
"""

from __future__ import annotations

CATALOG: dict[str, str] = {
    # Usage and command parsing
    "usage": (
        "*用法*\n"
        "• `/task &lt;任务 ID&gt;`：查看一个导入导出任务，例如 `/task fd1c56acbb2c4b1aa24ba37df99f3129`\n"
        "• `/task recent [资源] [page N]`：最新的 10 个任务（`page 2`：再往后 10 个），例如 `/task recent knowledge-intent-question-create`\n"
        "• `/task watch &lt;任务 ID&gt;`：任务结束时通知本频道；`/task unwatch &lt;任务 ID&gt;` 取消\n"
        "• `/task watching`：本频道关注的内容，附“停止”按钮\n"
        "• `/task subscribe [资源 …] [failed] [by:&lt;操作人&gt;]`：从现在起，项目中每个结束的任务都在本频道通报"
        "（`failed`：只通报有失败的任务；`by:&lt;名称&gt;`：只通报该操作人的任务）；"
        "`/task unsubscribe` 取消\n"
        "• `/task digest daily|weekdays HH:MM [quiet]`、`/task digest weekly mon HH:MM [quiet]`：按你的时区，"
        "在该时间发送项目已结束任务的汇总（`quiet`：没有结束的任务时不发送）；`/task digest` 查看设置，"
        "`/task digest off` 关闭\n"
        "• `/task help`：显示本帮助"
    ),
    "usage_hint": "[任务 ID | recent | watch <ID> | watching | subscribe | help]",
    "error_unknown_subcommand": (
        "无法识别 `{word}`。请试试 `/task &lt;32 位任务 ID&gt;`、`/task recent` 或 `/task help`。"
    ),
    "error_invalid_task_id": (
        "`{task_id}` 不是任务 ID：任务 ID 由 32 个十六进制字符组成，例如 `fd1c56acbb2c4b1aa24ba37df99f3129`。"
    ),
    "error_takes_no_arguments": "`/task {word}` 不带参数，请直接输入 `/task {word}`。",
    "error_needs_task_id": "`/task {word}` 需要一个任务 ID，例如 `/task {word} fd1c56acbb2c4b1aa24ba37df99f3129`。",
    "error_too_many_arguments": "`/task` 每次只能查看一个任务 ID，请试试 `/task {task_id}`。",
    # MetaStudio errors: one sentence, what went wrong and what to do
    "error_unexpected": "向 MetaStudio 查询时出错，请一分钟后重试。",
    "error_database_unavailable": "taskbot 暂时无法连接其数据库，因此无法在此工作区作答，请几分钟后重试。",
    "error_workspace_unreadable": "taskbot 无法打开此工作区保存的令牌（其加密密钥已更改），请联系 taskbot 的运维人员检查 TASKBOT_ENCRYPTION_KEY。",
    "error_internal": "taskbot 内部出错（已记录日志，供运维人员排查），请一分钟后重试。",
    "error_mss_failed": "MetaStudio 返回“失败”，请求未能完成，请一分钟后重试。",
    "error_mss_internal": "MetaStudio 返回“内部错误”，请一分钟后重试。",
    "error_mss_invalid_parameter": "MetaStudio 返回“非法参数”，拒绝了该请求，请检查任务 ID 后重试。",
    "error_auth": "MetaStudio 返回“非法访问，未鉴权或者鉴权失败”，请联系管理员检查 AK/SK 或 IAM 用户。",
    "error_forbidden": "taskbot 的凭证无权读取导入导出任务，请联系管理员授予 MetaStudio 的读取权限。",
    "error_not_found": "本项目中没有该 ID 的任务，请检查任务 ID 和区域后重试。",
    "error_throttled": "MetaStudio 当前繁忙（请求被限流），请一分钟后重试。",
    "error_server": "MetaStudio 当前服务异常，请几分钟后重试。",
    "error_connection": "taskbot 无法连接 MetaStudio，请几分钟后重试。",
    "error_timeout": "MetaStudio 响应超时，请一分钟后重试。",
    "error_bad_response": "MetaStudio 返回了 taskbot 无法解析的响应，请一分钟后重试。",
    "error_metastudio_said": "MetaStudio 返回 `{code}`：“{message}”。",
    "error_metastudio_said_request": "MetaStudio 返回 `{code}`：“{message}”（请求 ID `{request_id}`）。",
    "error_project_not_found": "IAM 中没有与这组密钥对应、名为 `{region}` 的唯一 MetaStudio 项目，请联系管理员填写项目 ID。",
    "error_not_configured": "taskbot 尚未连接 MetaStudio 项目，请联系管理员完成配置。",
    "not_connected_admin": "本工作区尚未连接 MetaStudio：请打开 taskbot 的 *主页* 标签，选择 *配置连接*。",
    "not_connected_member": "本工作区尚未连接 MetaStudio：请联系工作区管理员或所有者在 taskbot 的 *主页* 标签中完成连接。",
    "watch_started": (
        "*{name}* 结束时，我会通知本频道（{hours} 小时后停止关注）。`/task watching` 可查看本频道关注的内容。"
    ),
    "watch_already": "本频道已在关注 *{name}*，任务结束时会通知一次。",
    "watch_already_finished": "*{name}* 已经结束，无需关注。`/task &lt;任务 ID&gt;` 可查看其卡片。",
    "unwatch_done": "本频道已不再关注 `{task_id}`。",
    "unwatch_none": "本频道并未关注 `{task_id}`。`/task watching` 可查看本频道关注的内容。",
    "subscribe_scope_all": "所有资源",
    "subscribe_started": "从现在起，{scope}中每个结束的任务都会在本频道通报。",
    "subscribe_updated": "本频道的项目通报现已覆盖{scope}。",
    "unsubscribe_done": "本频道的项目通报已关闭。",
    "unsubscribe_none": "本频道没有项目通报。`/task subscribe` 可开启。",
    "error_request_id": "请求 ID：`{request_id}`",
    # Cards
    "card_title_fallback": "任务 {task_id}",
    "card_text": "{name}：{status}，已处理 {processed} / {total}",
    "status_finished": "已结束",
    "status_running": "进行中",
    "status_not_started": "未开始",
    "status_with_code": "{emoji} *{label}*（任务状态 `{code}`）",
    "status_no_code": "{emoji} *{label}*（无任务状态）",
    "field_status": "*任务状态*",
    "field_total": "*总数*",
    "field_succeeded": "*成功数*",
    "field_failed": "*失败数*",
    "field_type": "*任务类型*",
    "field_resource": "*资源*",
    "field_operator": "*操作人*",
    "field_started": "*开始时间*",
    "field_ended": "*结束时间*",
    "field_duration": "*耗时*",
    "progress_line": "`{bar}` {percent}（已处理 {processed} / {total}）",
    "progress_unknown": "进度未知：任务尚未返回总数。",
    "not_set": "—",
    "context_line": "任务 `{task_id}` · 操作用户 `{user_id}` · 请求 `{request_id}`",
    "button_refresh": "刷新",
    "button_open": "查看",
    "recent_header": "最新的导入导出任务",
    "recent_header_resource": "{resource} 最新的导入导出任务",
    "recent_empty": "没有找到导入导出任务。",
    "recent_line": "{emoji} *{name}*\n`{task_id}` · {status} · 已处理 {processed} / {total}",
    "error_card": ":warning: {message}",
    # Card details (cards.py)
    "emoji_finished": ":white_check_mark:",
    "emoji_running": ":hourglass_flowing_sand:",
    "emoji_not_started": ":white_circle:",
    "card_text_no_total": "{name}：{status}，已处理 {processed}",
    "field_failed_value": ":warning: {count}",
    "duration_days": "{days} 天 {hours} 小时",
    "duration_hours": "{hours} 小时 {minutes} 分钟",
    "duration_minutes": "{minutes} 分钟 {seconds} 秒",
    "duration_seconds": "{seconds} 秒",
    "duration_instant": "不到 1 秒",
    "duration_so_far": "已进行 {duration}",
    "context_task": "任务 `{task_id}`",
    "context_user": "操作用户 `{user_id}`",
    "context_request": "请求 `{request_id}`",
    "context_updated": "更新于 {time}",
    "button_watch": "结束时通知本频道",
    "recent_status": "{label}，任务状态 `{code}`",
    "recent_status_no_code": "{label}，无任务状态",
    "recent_failed": ":warning: 失败 {count}",
    "recent_started": "开始于 {date}",
    "recent_context": "显示 {shown} 个，共 {count} 个",
    # Slack delivery
    "error_slack": "taskbot 无法在本频道发布卡片。请用 `/invite @taskbot` 邀请它后重试。",
    # Follow-ups (bot/slack/alerts.py, bot/followups/)
    "alert_finished": "{mention}{emoji} *{name}* 已结束。",
    "alert_failed_warning": ":warning: *失败 {count}*",
    "alert_succeeded_value": "{succeeded} / {total}",
    "alert_failed_value": ":warning: *{count}*",
    "alert_field_rate": "*成功率*",
    "alert_rate_value": "{percent}%",
    "alert_context_status": "任务状态 `{code}`",
    "alert_context_feed": "来自本频道的项目通报",
    "alert_finished_text": "{mention}{name} 已结束：成功 {succeeded} / {total}",
    "alert_finished_text_failed": "{mention}{name} 已结束：成功 {succeeded} / {total}，失败 {failed}",
    "alert_expired": "{mention}已停止关注 *{name}*（`{task_id}`）：{hours} 小时后任务仍未结束。",
    "alert_expired_last": "最后一次查看：已处理 {processed} / {total}。",
    "alert_expired_last_no_total": "最后一次查看：已处理 {processed}。",
    "alert_not_found": "{mention}已停止关注任务 `{task_id}`：MetaStudio 在本项目中已找不到该任务。",
    "alert_that_channel": "某个频道",
    "slack_reason_channel_not_found": "该频道已不存在，或我无法访问",
    "slack_reason_not_in_channel": "我不是该频道的成员",
    "slack_reason_is_archived": "该频道已归档",
    "slack_reason_restricted_action": "工作区设置不允许我在该频道发消息",
    "slack_reason_other": "Slack 拒绝了这条消息",
    "dm_cannot_post_watch": (
        "我无法在 {channel} 发布任务 `{task_id}` 的消息，原因是{reason}，因此该频道已不再关注此任务；"
        "请用 `/invite @taskbot` 邀请我，然后重新关注该任务。"
    ),
    "dm_cannot_post_feed": (
        "我无法在 {channel} 发布消息，原因是{reason}，因此该频道的项目通报已关闭；"
        "请用 `/invite @taskbot` 邀请我，然后重新订阅。"
    ),
    "watching_header": "本频道关注的内容",
    "watching_text": "本频道关注的任务：{count} 个",
    "watching_no_feed": "本频道没有项目通报。",
    "watching_feed_all": ":satellite_antenna: *项目通报：* 项目中每个结束的任务都会在这里通报。",
    "watching_feed_resources": ":satellite_antenna: *项目通报：* {resources} 中每个结束的任务都会在这里通报。",
    "watching_empty": "本频道没有关注任何任务。",
    "watching_item": ":eyes: `{task_id}` · 由 {mention} 发起 · 自 {since} · 至 {until}",
    "watching_more": "……另有 {count} 个。",
    "watching_note": ":eyes: 关注中：任务结束时会通知本频道。",
    "button_unwatch": "停止关注",
    "button_unsubscribe": "关闭通报",
    # Workspaces, App Home and the admin modals (bot/slack/home.py, bot/slack/modals.py, bot/db/workspaces.py)
    "home_connection_header": "MetaStudio 连接",
    "home_not_connected": (
        ":white_circle: 尚未连接：工作区管理员或所有者将本工作区连接到 MetaStudio 项目之前，"
        "`/task` 无法读取任何项目。"
    ),
    "home_status_ok": ":large_green_circle: 已连接：最近一次调用 MetaStudio 成功。",
    "home_status_error": ":red_circle: 最近一次调用 MetaStudio 失败。",
    "home_status_untested": ":white_circle: 已保存；上次修改后尚未调用过 MetaStudio。",
    "home_incomplete": ":warning: 部分凭证缺失：请打开“配置连接”重新填写。",
    "home_field_region": "*区域*",
    "home_field_endpoint": "*终端节点*",
    "home_field_project": "*项目 ID*",
    "home_field_credentials": "*凭证*",
    "home_field_last_ok": "*最近一次成功调用*",
    "home_field_last_error": "*最近一次错误*",
    "home_field_watches": "*进行中的关注*",
    "home_endpoint_default": "区域默认终端节点",
    "home_never": "从未",
    "home_last_error_value": "{error}\n{date}",
    "home_credentials_aksk": "{kind}，访问密钥 {hint}",
    "home_credentials_iam": "{kind} {user}（账号 {domain}）",
    "credential_aksk": "AK/SK",
    "credential_temporary_aksk": "临时 AK/SK",
    "credential_iam_password": "IAM 用户",
    "credential_iam_token": "IAM Token",
    "home_button_configure": "配置连接",
    "home_guardrails_header": "谁可以使用 /task",
    "home_guardrails_unrestricted": "本工作区的所有人，在任何频道均可使用。",
    "home_guardrails_channels": "*频道：* {channels}",
    "home_guardrails_any_channel": "*频道：* 任意",
    "home_guardrails_usergroup": "*人员：* {group} 的成员",
    "home_guardrails_anyone": "*人员：* 所有人",
    "home_button_guardrails": "修改 /task 的使用范围",
    "home_admins_only": "只有工作区管理员或所有者可以修改这些设置。",
    "home_admins_ask": "只有工作区管理员或所有者可以修改这些设置：请联系配置 taskbot 的 {admins}。",
    "outsider_denied": "你来自其他组织：在此共享频道中你可以查看任务，但只有本工作区的成员才能关注、停止、订阅或修改 taskbot 的设置。",
    "install_org_wide_refused": "taskbot 只能逐个安装到工作区，不能安装到整个 Enterprise Grid 组织；本次未安装任何内容，请让需要它的每个工作区的管理员在该工作区中安装。",
    "admin_only": "只有工作区管理员或所有者可以修改 taskbot 的设置；未做任何更改。",
    "connection_test_incomplete": "请先填写必填项，然后再测试。",
    "connection_test_failed": "测试调用失败：{error}",
    "connection_test_ok": ":white_check_mark: 已连接：MetaStudio 已响应，本项目中共有 {count} 个任务。",
    "guardrails_usergroup_unknown": "本工作区没有使用该名称的用户组；请输入用户组 ID（S…）或已有的 @名称。",
    "home_audit_header": "最近的更改",
    "home_audit_empty": "暂无更改。",
    "home_audit_line": "{date} · {user} {action} · {detail}",
    "audit_connection_updated": "修改了 MetaStudio 连接",
    "audit_language_updated": "修改了频道中的语言",
    "home_language_header": "频道中的语言",
    "home_language_hint": "频道中的任务卡片、完成提醒和通知使用此语言。只有本人可见的回复始终使用其 Slack 语言。",
    "home_language_follow": "跟随发起人的语言",
    "language_name_en": "English",
    "language_name_zh-CN": "简体中文",
    "audit_guardrails_updated": "修改了 /task 的使用范围",
    "audit_other": "执行了 {action}",
    "modal_save": "保存",
    "modal_cancel": "取消",
    "connection_modal_title": "MetaStudio 连接",
    "connection_intro": (
        "将本工作区连接到一个 MetaStudio 项目。密钥加密保存，之后不再显示：密钥留空即保留已保存的值。"
        "更换凭证类型时，需要填写该类型的全部字段。"
    ),
    "connection_region": "区域",
    "connection_region_placeholder": "选择区域",
    "connection_region_hint": "MetaStudio 项目所在的区域。",
    "connection_endpoint": "自定义终端节点",
    "connection_endpoint_placeholder": "https://metastudio.cn-north-4.myhuaweicloud.com",
    "connection_endpoint_hint": "可选：留空则使用该区域的终端节点。必须以 https:// 开头。",
    "connection_project_id": "项目 ID",
    "connection_project_id_placeholder": "0123456789abcdef0123456789abcdef",
    "connection_project_id_hint": "该区域的项目 ID，可在“我的凭证 > API 凭证”中找到。使用 AK/SK 时可留空，taskbot 会自动查询。",
    "connection_kind": "凭证类型",
    "connection_kind_aksk": "AK/SK",
    "connection_kind_temporary_aksk": "临时 AK/SK 和 SecurityToken",
    "connection_kind_iam_password": "IAM 用户名和密码",
    "connection_access_key": "访问密钥 ID（AK）",
    "connection_secret_key": "秘密访问密钥（SK）",
    "connection_security_token": "SecurityToken",
    "connection_iam_username": "IAM 用户名",
    "connection_iam_username_placeholder": "taskbot-reader",
    "connection_iam_password": "IAM 密码",
    "connection_iam_domain": "账号名（IAM 域）",
    "connection_iam_domain_placeholder": "IAM 用户所属的账号",
    "connection_hint_aksk": "用于 AK/SK 和临时 AK/SK。",
    "connection_hint_token": "仅用于临时 AK/SK。",
    "connection_hint_iam": "仅用于 IAM 用户。",
    "connection_secret_placeholder": "粘贴到这里",
    "connection_secret_stored": "已设置：留空即保留",
    "connection_access_key_stored": "已设置（{hint}）：留空即保留",
    "connection_test": "测试连接",
    "connection_test_result": ":test_tube: {result}",
    "connection_error_project_id_missing": "请输入项目 ID。",
    "connection_error_project_id_invalid": "项目 ID 由 8 到 64 个字母和数字组成，例如 0123456789abcdef0123456789abcdef。",
    "connection_error_endpoint": "请输入不含用户名、密码、查询参数或片段的 https:// 地址，或留空。",
    "connection_error_endpoint_not_https": "taskbot 只通过 https:// 发送密钥，请输入 https:// 地址。",
    "connection_error_endpoint_host": (
        "taskbot 只连接华为云主机（例如 metastudio.cn-north-4.myhuaweicloud.com）；"
        "如果该主机确实属于你们，请让运维人员将其加入允许列表。"
    ),
    "connection_error_endpoint_address": "该主机解析到私有、回环或链路本地地址，taskbot 拒绝连接；请输入华为云的公网终端节点。",
    "connection_error_endpoint_unresolved": "该主机名无法解析，请检查终端节点的拼写。",
    "connection_error_region": "请选择区域，或填写自定义终端节点。",
    "connection_error_kind": "请选择凭证类型。",
    "connection_error_access_key": "请输入访问密钥 ID（AK）：8 到 128 个字母和数字。",
    "connection_error_secret_key": "请输入与该访问密钥 ID 配对的秘密访问密钥（SK）。",
    "connection_error_secret_key_invalid": "秘密访问密钥不能包含空格，最多 256 个字符。",
    "connection_error_security_token": "请输入与这组临时凭证配对的 SecurityToken。",
    "connection_error_iam_username": "请输入 IAM 用户名。",
    "connection_error_iam_password": "请输入该 IAM 用户的密码。",
    "connection_error_iam_domain": "请输入 IAM 用户所属账号的名称。",
    "connection_error_invalid": "最多 {limit} 个字符，且只能有一行。",
    "connection_error_too_long": "最多 {limit} 个字符。",
    "guardrails_modal_title": "谁可以使用 /task",
    "guardrails_intro": (
        "可以把 `/task` 限制在某些频道、某个用户组的成员，或同时限制两者。两项都留空，则所有人在任何频道都能使用。"
    ),
    "guardrails_channels": "频道",
    "guardrails_channels_placeholder": "任意频道",
    "guardrails_channels_hint": "仅限这些频道。留空：任意频道。",
    "guardrails_usergroup": "用户组",
    "guardrails_usergroup_placeholder": "S0123ABCD 或 @oncall",
    "guardrails_usergroup_hint": "仅限该用户组的成员，填写 ID 或名称。留空：所有人。",
    "guardrails_error_channels": "只能选择公开或私有频道。",
    "guardrails_error_usergroup": "请输入用户组 ID（如 S0123ABCD）或名称（如 @oncall），或留空。",
    "guardrails_denied_channel": "在本工作区，`/task` 仅限在 {channels} 使用；如需调整，请联系工作区管理员或所有者。",
    "guardrails_denied_usergroup": (
        "在本工作区，`/task` 仅限 {group} 的成员使用；如需加入或调整，请联系工作区管理员或所有者。"
    ),
    # Workflow Builder 步骤（bot/slack/steps.py）：Slackbot 会把这些话告诉运行工作流的人
    "step_expired": "任务 {task_id} 在此步骤的时限内没有完成。",
    "step_task_gone": "此 MetaStudio 项目中已找不到任务 {task_id}，此步骤不再等待。",
    "step_invalid_timeout": "时限须为大于 0 且不超过 {hours} 的小时数。",
    "step_denied_usergroup": (
        "在本工作区，taskbot 仅限 {group} 的成员使用，而运行此工作流的人不是其成员；如需调整，请联系工作区管理员或所有者。"
    ),
    "step_denied_unknown_user": (
        "在本工作区，taskbot 仅限 {group} 的成员使用，而此步骤不知道是谁运行了工作流：请把“使用此工作流的人”填入它的 *User* 输入。"
    ),
    # Numbers and lists (bot/messages/format.py)
    "format_thousands": ",",
    "format_decimal": ".",
    "format_percent": "{value}%",
    "list_separator": "、",
    # 进度、趋势与停滞
    "pace_line": "约剩 {eta} · {rate}",
    "rate_per_second": "每秒 {rate} 条",
    "rate_per_minute": "每分钟 {rate} 条",
    "eta_minutes": "{minutes} 分钟",
    "eta_under_minute": "不到 1 分钟",
    "trend_line": "趋势 `{spark}`",
    "stalled_line": ":double_vertical_bar: *已停滞*：{duration} 没有进展，停在 {processed} / {total}",
    "stalled_line_no_total": ":double_vertical_bar: *已停滞*：{duration} 没有进展，停在 {processed}",
    "resumed_line": "停滞 {duration} 后已恢复",
    "stall_notice": ":double_vertical_bar: *{name}*：{duration} 没有进展，停在 {processed} / {total}。",
    "stall_notice_no_total": ":double_vertical_bar: *{name}*：{duration} 没有进展，停在 {processed}。",
    "type_code": "`{code}`（代码；API 未说明其取值）",
    # 通报筛选
    "feed_filter_failed": "只通报有失败的任务",
    "feed_filter_operator": "只通报操作人为 `{operator}` 的任务",
    "feed_filters": "筛选：{filters}。",
    "error_subscribe_operator": "`by:` 后面需要一个操作人名称，例如 `/task subscribe failed by:adminUserAccount`。",
    # /task recent 分页
    "recent_page_context": "第 {page} 页：第 {first} 至 {last} 个，共 {count} 个",
    "recent_more": "下 10 个：`/task recent {resources}page {page}`",
    "recent_paging_ignored": (
        "MetaStudio 没有返回这一页，而是再次返回了最新的任务：分页不在其文档化的任务列表接口中，"
        "因此只能显示最新的 10 个。`/task recent` 可查看。"
    ),
    "error_recent_page": "页码必须是 1 到 {max} 之间的整数，例如 `/task recent page 2`。",
    # Digests
    "error_digest_usage": "无法识别这个时间安排。请试试 `/task digest daily 09:00`、`/task digest weekdays 09:00`、`/task digest weekly mon 09:00` 或 `/task digest off`。",
    "digest_when_daily": "每天 {time}",
    "digest_when_weekdays": "每个工作日 {time}",
    "digest_when_weekly": "每{day} {time}",
    "digest_quiet": "没有结束的任务时不发送。",
    "digest_set": "本频道将在{when}（{timezone}）收到已结束任务的汇总。{quiet}",
    "digest_show": "本频道在{when}（{timezone}）收到已结束任务的汇总。{quiet}`/task digest off` 可关闭。",
    "digest_none": "本频道没有汇总。`/task digest daily 09:00` 可开启。",
    "digest_off_done": "本频道的汇总已关闭。",
    "watching_digest": ":calendar: *汇总：*{when}（{timezone}）。",
    "weekday_0": "周一",
    "weekday_1": "周二",
    "weekday_2": "周三",
    "weekday_3": "周四",
    "weekday_4": "周五",
    "weekday_5": "周六",
    "weekday_6": "周日",
    "digest_header": "导入导出任务汇总",
    "digest_period": "{since} 至 {until} 之间结束的任务。",
    "digest_late": ":hourglass: 这份汇总晚发了：预定时间 taskbot 没有运行。",
    "digest_summary": "结束 *{finished}* 个 · 有失败 *{with_failures}* 个 · 处理 *{items}* 条 · 成功率 *{rate}*",
    "digest_nothing": "这段时间没有结束的任务。",
    "digest_slowest": "*最慢的任务*",
    "digest_failed": "*有失败的任务*",
    "digest_item_slow": "*{name}* · 耗时 {duration}",
    "digest_item_failed": "*{name}* · {total} 条中失败 {failures} 条",
    "digest_more_failed": "……另有 {count} 个任务有失败：`/task recent` 列出最新的任务。",
    "digest_text": "汇总：结束 {finished} 个任务，其中 {with_failures} 个有失败。",
}
