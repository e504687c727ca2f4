"""What a MetaStudio client authenticates as: the kinds of credentials and their one value type.

Secrets stay ``SecretStr`` until the signer or the IAM request needs them, so no ``repr``, log
line or exception shows one. Which of the operator's sources answers (the environment, the SDK's
profile file) is ``credential_chain``'s rule; a workspace's saved connection is ``bot.db``'s.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, SecretStr

__all__ = ["NO_PROJECT_ID", "CloudCredentials", "CredentialKind", "CredentialsIncomplete"]

NO_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID is not set (the MetaStudio project id)"


class CredentialKind(StrEnum):
    AKSK = "aksk"
    TEMPORARY_AKSK = "temporary_aksk"
    IAM_PASSWORD = "iam_password"
    IAM_TOKEN = "iam_token"


class CloudCredentials(BaseModel):
    """What the client signs or authenticates with. Secrets stay ``SecretStr`` until the wire."""

    kind: CredentialKind
    project_id: str
    """Empty for AK/SK credentials without one: the client looks it up in IAM, as the SDK does."""
    access_key: str | None = None
    secret_key: SecretStr | None = None
    security_token: SecretStr | None = None
    iam_username: str | None = None
    iam_password: SecretStr | None = None
    iam_domain: str | None = None
    auth_token: SecretStr | None = None
    iam_endpoint: str | None = None
    """The profile's ``iam_endpoint``; like the SDK's ``BasicCredentials``, it wins over the environment."""


class CredentialsIncomplete(ValueError):
    """Credentials of a kind that lack a part it needs; ``problems`` names each, never a value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))
