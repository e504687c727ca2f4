"""Slack listeners, one module per kind. Each module has one ``register(app)``, on ids that
``bot.slack.ids`` declares (``tests/slack/test_ids.py`` checks it).

Listeners parse, ack and hand over: they read the use case they need from Bolt's context
(``commands``, ``background``, ``admin``, ``leaving``, ``steps``; see ``bot.app.Runtime.context``) and
never call MetaStudio, the database or Slack before the ack. One write comes after ``ack()`` but
before Bolt sends the answer: ``app_uninstalled`` records the departure (``handlers.events``),
because Slack never redelivers an acknowledged event.
"""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import actions, commands, events, functions, views


def register_all(app: AsyncApp) -> None:
    for module in (commands, actions, views, events, functions):
        module.register(app)
