"""Slack listeners, one module per kind. Each module has one ``register(app)``."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from handlers import actions, commands, events, views


def register_all(app: AsyncApp) -> None:
    for module in (commands, actions, views, events):
        module.register(app)
