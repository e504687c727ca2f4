"""The cloud credentials tests sign with: an AK/SK pair, permanent or temporary."""

from __future__ import annotations

from pydantic import SecretStr

import bot.devtools.simulator as simulation
from bot.metastudio.credentials import AkSk, TemporaryAkSk


def aksk(
    ak: str = simulation.DEMO_ACCESS_KEY,
    sk: str = simulation.DEMO_SECRET_KEY,
    *,
    token: str | None = None,
    project_id: str = simulation.DEMO_PROJECT_ID,
) -> AkSk | TemporaryAkSk:
    """AK/SK credentials (the simulator's demo pair by default); a ``token`` makes them temporary."""
    if token:
        return TemporaryAkSk(
            project_id=project_id, access_key=ak, secret_key=SecretStr(sk), security_token=SecretStr(token)
        )
    return AkSk(project_id=project_id, access_key=ak, secret_key=SecretStr(sk))
