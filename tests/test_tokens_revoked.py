"""``tokens_revoked``: only a revoked bot token ends a workspace; a user's own token does not."""

from __future__ import annotations

from pathlib import Path

from tests.install_support import BOT_USER, GRID_ORG, multi_stack
from tests.support.waiting import eventually


async def test_user_token_revocation_keeps_the_workspace_bot_revocation_wipes_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with multi_stack(tmp_path, sqlite_url, {}) as stack:
        users = stack.workspace("T0USERTOK1", admin="U0ADMINA01", member="U0MEMBERA1")
        bots = stack.workspace("T0BOTTOKN2", admin="U0ADMINB02", member="U0MEMBERB2", enterprise_id=GRID_ORG)
        for team in (users, bots):
            assert (await team.install()).status_code == 200
            assert (await stack.rows_mentioning(team.team_id)).get("slack_installations")
        kept_before = await stack.rows_mentioning(users.team_id)

        # Slack's shapes: user tokens under "oauth" (only), bot tokens under "bot".
        for event in (
            {"type": "tokens_revoked", "tokens": {"oauth": ["U0MEMBERA1"]}},
            {"type": "tokens_revoked", "tokens": {"oauth": ["U0ADMINA01"], "bot": []}},
        ):
            assert (await users.event(event)).status_code == 200
        response = await bots.event({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [BOT_USER]}})
        assert response.status_code == 200

        async def bots_gone() -> bool:
            return not any((await stack.rows_mentioning(bots.team_id)).values())

        # The bot revocation was spawned after the user ones; once it is done, they are too.
        await eventually(bots_gone, what="every row of the bot-revoked workspace gone")
        assert await stack.rows_mentioning(users.team_id) == kept_before
        answer = await users.command("help", channel="C0USERTOK1")
        assert answer.status_code == 200 and "/task" in answer.json()["text"]
