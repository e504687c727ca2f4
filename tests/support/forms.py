"""The connection forms tests save: an access-key pair, the way an admin's modal submits it."""

from __future__ import annotations

from bot.db.workspaces import ConnectionForm
from bot.metastudio.credentials import CredentialKind


def aksk_form(
    *,
    project_id: str,
    access_key: str,
    secret_key: str,
    endpoint: str | None = None,
    region: str = "cn-north-4",
) -> ConnectionForm:
    """A permanent AK/SK connection; every other credential field is empty."""
    return ConnectionForm(
        region=region,
        endpoint=endpoint,
        project_id=project_id,
        kind=CredentialKind.AKSK,
        access_key=access_key,
        secret_key=secret_key,
        security_token=None,
        iam_username=None,
        iam_password=None,
        iam_domain=None,
    )
