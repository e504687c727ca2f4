"""What a MetaStudio client authenticates as: one model per kind of credentials.

Each model holds exactly the parts its kind needs, required where required, so credentials that
exist are complete: which parts a kind needs is said here and nowhere else (``parts_of`` lists
them for a store or a form; ``credentials_of`` builds them from parts and names what is missing).
Secrets stay ``SecretStr`` until the signer or the IAM request needs them, so no ``repr``, log
line or exception shows one; validation errors never quote an input either.

Which of the operator's sources answers (the environment, the SDK's profile file) is
``credential_chain``'s rule; a workspace's saved connection is ``bot.db``'s. Imports only pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Annotated, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

__all__ = [
    "AkSk",
    "CloudCredentials",
    "CredentialKind",
    "CredentialsIncomplete",
    "IamPassword",
    "IamToken",
    "KeyPair",
    "TemporaryAkSk",
    "credentials_of",
    "parts_of",
]


class CredentialKind(StrEnum):
    AKSK = "aksk"
    TEMPORARY_AKSK = "temporary_aksk"
    IAM_PASSWORD = "iam_password"
    IAM_TOKEN = "iam_token"


_Text = Annotated[str, Field(min_length=1)]
_Secret = Annotated[SecretStr, Field(min_length=1)]


class _Credentials(BaseModel):
    # Parts of other kinds are ignored: ``credentials_of`` takes whatever parts its caller holds.
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)


class KeyPair(_Credentials):
    """An AK/SK pair, permanent or temporary, signed with on every request (``AkSkAuthenticator``)."""

    project_id: str = ""
    """Empty: the client looks it up in IAM for its region, as the SDK does."""
    access_key: _Text
    secret_key: _Secret
    iam_endpoint: str | None = None
    """The profile's ``iam_endpoint``; like the SDK's ``BasicCredentials``, it wins over the environment."""


class AkSk(KeyPair):
    kind: Literal[CredentialKind.AKSK] = CredentialKind.AKSK


class TemporaryAkSk(KeyPair):
    """An AK/SK pair with the security token it was issued with (the SDK's ``BasicCredentials``)."""

    kind: Literal[CredentialKind.TEMPORARY_AKSK] = CredentialKind.TEMPORARY_AKSK
    security_token: _Secret


class IamPassword(_Credentials):
    """An IAM user, exchanged for a token for the named project (an IAM token names its project)."""

    kind: Literal[CredentialKind.IAM_PASSWORD] = CredentialKind.IAM_PASSWORD
    project_id: _Text
    iam_username: _Text
    iam_password: _Secret
    iam_domain: _Text
    """The account that owns the IAM user."""


class IamToken(_Credentials):
    """An IAM token as given, for the project it was issued for."""

    kind: Literal[CredentialKind.IAM_TOKEN] = CredentialKind.IAM_TOKEN
    project_id: _Text
    auth_token: _Secret


CloudCredentials: TypeAlias = Annotated[
    AkSk | TemporaryAkSk | IamPassword | IamToken, Field(discriminator="kind")
]
_ADAPTER: Final[TypeAdapter[CloudCredentials]] = TypeAdapter(CloudCredentials)
_MODELS: Final[Mapping[CredentialKind, type[_Credentials]]] = {
    CredentialKind.AKSK: AkSk,
    CredentialKind.TEMPORARY_AKSK: TemporaryAkSk,
    CredentialKind.IAM_PASSWORD: IamPassword,
    CredentialKind.IAM_TOKEN: IamToken,
}


class CredentialsIncomplete(ValueError):
    """Credentials of a kind that lack a part it needs; ``problems`` names each, never a value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    @classmethod
    def missing(cls, kind: CredentialKind, names: Sequence[str]) -> CredentialsIncomplete:
        """The parts (``parts_of``) that credentials of ``kind`` lack."""
        return cls([f"{kind.value} credentials need: {', '.join(names)}"])


def parts_of(kind: CredentialKind) -> tuple[str, ...]:
    """The parts besides the project that credentials of ``kind`` need, in their model's order."""
    return tuple(
        name
        for name, field in _MODELS[kind].model_fields.items()
        if field.is_required() and name != "project_id"
    )


def credentials_of(
    kind: CredentialKind, project_id: str, parts: Mapping[str, str | SecretStr | None]
) -> CloudCredentials:
    """Credentials of ``kind`` from named parts (plain text or ``SecretStr``); parts that are None
    or empty are missing, parts of other kinds are ignored.

    Raises ``CredentialsIncomplete`` naming every missing part, never a value.
    """
    given = {name: value for name, value in parts.items() if value is not None}
    try:
        return _ADAPTER.validate_python({**given, "kind": kind, "project_id": project_id})
    except ValidationError as exc:
        missing = [str(error["loc"][-1]) for error in exc.errors(include_input=False)]
        raise CredentialsIncomplete.missing(kind, missing) from None
