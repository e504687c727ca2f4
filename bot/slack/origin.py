"""Where a Slack request came from (``Origin``) and what taskbot answers (``Answer``).

``origin_from_body`` is the one place that reads team, channel, user and response URL out of
any Bolt body: slash commands, block actions, view submissions and events each put them in
different spots. Nothing here talks to Slack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "Origin", "belongs_to", "origin_from_body", "private"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from and how to answer it."""

    team_id: str | None
    channel_id: str | None
    user_id: str | None
    response_url: str | None = None
    # The catalog id for replies only this person sees; set after the ack (bot/slack/locales.py).
    locale: str = "en"


@dataclass(slots=True)
class Answer:
    """What taskbot answers a Slack request with: a message for the asker alone, or for the channel."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = True
    request_id: str | None = None
    task_id: str | None = None
    public: bool = True
    replace_original: bool = False
    # The workspace has no MetaStudio connection: the wording depends on who asks.
    needs_connection: bool = False


def private(text: str, *, ok: bool = True, blocks: list[dict[str, Any]] | None = None) -> Answer:
    """A reply only the person who asked sees."""
    return Answer(text=text, blocks=blocks or [], ok=ok, public=False)


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def origin_from_body(body: Mapping[str, Any]) -> Origin:
    """The origin of any Bolt request body.

    Slash commands carry flat ``team_id``/``channel_id``/``user_id``; block actions and view
    submissions nest them under ``team``, ``user``, ``channel`` and ``container``; events put
    the user in ``event``. Modal submissions have no channel.
    """
    team, user, channel = (
        _mapping(body.get("team")),
        _mapping(body.get("user")),
        _mapping(body.get("channel")),
    )
    container, event = _mapping(body.get("container")), _mapping(body.get("event"))
    return Origin(
        team_id=_id(body.get("team_id")) or _id(team.get("id")) or _id(user.get("team_id")),
        channel_id=_id(body.get("channel_id")) or _id(container.get("channel_id")) or _id(channel.get("id")),
        user_id=_id(body.get("user_id")) or _id(user.get("id")) or _id(event.get("user")),
        response_url=_id(body.get("response_url")),
    )


def belongs_to(user: Mapping[str, Any], team_id: str | None) -> bool:
    """Whether a ``users.info`` user is a member of the workspace ``team_id`` (Slack Connect).

    Their home workspace, or (Enterprise Grid) one of the org's workspaces they were added to.
    An answer without a ``team_id`` cannot tell, and is taken as a member: Slack always sends one.
    """
    home = user.get("team_id")
    if not team_id or not home or home == team_id:
        return True
    grid = user.get("enterprise_user")
    teams = grid.get("teams") if isinstance(grid, Mapping) else None
    return isinstance(teams, list) and team_id in teams
