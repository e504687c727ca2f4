"""Events API listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp


def register(app: AsyncApp) -> None:
    # No event subscriptions yet; workspace lifecycle events arrive with multi-workspace install.
    return None
