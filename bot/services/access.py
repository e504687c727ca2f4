"""Who may do what: workspace admins (``users.info``) and the ``/task`` guardrails."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.db.workspaces import WorkspaceStore
from bot.metrics import SLACK_API_ERRORS
from bot.slack.delivery import slack_error
from bot.slack.origin import Origin

__all__ = ["Access"]


class Access:
    def __init__(self, workspaces: WorkspaceStore | None) -> None:
        self._workspaces = workspaces

    async def is_admin(self, client: AsyncWebClient, user_id: str | None) -> bool:
        """Workspace admins and owners may configure taskbot (users.info says who they are)."""
        if not user_id:
            return False
        try:
            user = (await client.users_info(user=user_id)).get("user") or {}
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("users.info", slack_error(exc)).inc()
            return False
        return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))

    async def refusal(self, origin: Origin, client: AsyncWebClient) -> str | None:
        """The sentence that refuses this user or channel, or None when /task is allowed here."""
        if self._workspaces is None or not origin.team_id:
            return None
        rules = await self._workspaces.get_guardrails(origin.team_id)
        if rules.unrestricted:
            return None
        if rules.channels and origin.channel_id not in rules.channels:
            listed = ", ".join(f"<#{channel}>" for channel in rules.channels[:10])
            return messages.text("guardrails_denied_channel", origin.locale, channels=listed)
        if rules.usergroup_id and not await self._member(client, rules.usergroup_id, origin.user_id):
            return messages.text(
                "guardrails_denied_usergroup", origin.locale, group=f"<!subteam^{rules.usergroup_id}>"
            )
        return None

    async def step_refusal(
        self, team_id: str, user_id: str | None, locale: str, client: AsyncWebClient
    ) -> str | None:
        """The sentence that refuses a Workflow Builder step, or None when it may run.

        The user-group rule applies to the person who ran the workflow; when Slack does not say
        who (the step's ``user`` input is empty), it refuses rather than guess. The channel rule
        does not apply: a step answers in no channel, only to its workflow.
        """
        if self._workspaces is None or not team_id:
            return None
        rules = await self._workspaces.get_guardrails(team_id)
        if not rules.usergroup_id:
            return None
        group = f"<!subteam^{rules.usergroup_id}>"
        if not user_id:
            return messages.text("step_denied_unknown_user", locale, group=group)
        if not await self._member(client, rules.usergroup_id, user_id):
            return messages.text("step_denied_usergroup", locale, group=group)
        return None

    @staticmethod
    async def _member(client: AsyncWebClient, usergroup_id: str, user_id: str | None) -> bool:
        try:
            members = (await client.usergroups_users_list(usergroup=usergroup_id)).get("users") or []
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("usergroups.users.list", slack_error(exc)).inc()
            members = []
        return user_id in members
