"""Who may do what: workspace admins (``users.info``), people of other organisations, and the
``/task`` guardrails.

Slack Connect: a shared channel holds people whose ``users.info`` names another workspace
(``team_id``) outside this one's Enterprise Grid org. They may read what the channel already
shows (``/task <id>``, ``recent``, ``watching``, Refresh and Open on cards) but change nothing:
no watch, no Stop, no feed, and never the workspace's settings, whatever ``is_admin`` says for
their own workspace. Changes use this workspace's MetaStudio keys and post in its name.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.db.workspaces import WorkspaceStore
from bot.metrics import SLACK_API_ERRORS
from bot.slack.delivery import slack_error
from bot.slack.locales import LocaleResolver
from bot.slack.origin import Origin, belongs_to

__all__ = ["Access"]


class Access:
    def __init__(self, workspaces: WorkspaceStore | None, people: LocaleResolver | None = None) -> None:
        self._workspaces = workspaces
        # Its users.info answers (one per person, cached) also say where they belong.
        self._people = people

    async def _user(self, client: AsyncWebClient, user_id: str | None) -> dict[str, Any] | None:
        if not user_id:
            return None
        try:
            user = (await client.users_info(user=user_id)).get("user")
        except SlackApiError as exc:
            SLACK_API_ERRORS.labels("users.info", slack_error(exc)).inc()
            return None
        return user if isinstance(user, dict) else None

    async def is_admin(self, client: AsyncWebClient, origin: Origin) -> bool:
        """Admins and owners of THIS workspace may configure taskbot (users.info says who they are);
        an admin of another organisation in a shared channel is not one of them."""
        user = await self._user(client, origin.user_id)
        if user is None or not belongs_to(user, origin.team_id):
            return False
        return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))

    async def outsider(self, client: AsyncWebClient, origin: Origin) -> bool:
        """Someone of another organisation (Slack Connect).

        When Slack cannot say (an error), the person is taken as a member: what this guards
        (a watch, Stop, a feed) is undone with one command, unlike settings (``is_admin``
        refuses then).
        """
        if self._people is not None and origin.team_id and origin.user_id:
            member = self._people.member(origin.team_id, origin.user_id)
            if member is not None:
                return not member
        user = await self._user(client, origin.user_id)
        return user is not None and not belongs_to(user, origin.team_id)

    async def refusal(self, origin: Origin, client: AsyncWebClient, *, changes: bool = False) -> str | None:
        """The sentence that refuses this user or channel, or None when /task is allowed here.

        ``changes``: the command or button changes something (watch, Stop, feed), which people
        of other organisations may not do.
        """
        if changes and await self.outsider(client, origin):
            return messages.text("outsider_denied", origin.locale)
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
