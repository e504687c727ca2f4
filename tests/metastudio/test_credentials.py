"""Each kind of credentials holds exactly the parts it needs, and says which are missing."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from bot.metastudio.credentials import (
    AkSk,
    CredentialKind,
    CredentialsIncomplete,
    IamPassword,
    IamToken,
    TemporaryAkSk,
    credentials_of,
    parts_of,
)

SECRET = "s3cr3t-value"


def test_each_kind_names_the_parts_it_needs() -> None:
    assert parts_of(CredentialKind.AKSK) == ("access_key", "secret_key")
    assert parts_of(CredentialKind.TEMPORARY_AKSK) == ("access_key", "secret_key", "security_token")
    assert parts_of(CredentialKind.IAM_PASSWORD) == ("iam_username", "iam_password", "iam_domain")
    assert parts_of(CredentialKind.IAM_TOKEN) == ("auth_token",)


@pytest.mark.parametrize(
    ("kind", "project_id", "parts", "model"),
    [
        (CredentialKind.AKSK, "", {"access_key": "AK", "secret_key": SECRET}, AkSk),
        (
            CredentialKind.TEMPORARY_AKSK,
            "p",
            {"access_key": "AK", "secret_key": SECRET, "security_token": SecretStr(SECRET)},
            TemporaryAkSk,
        ),
        (
            CredentialKind.IAM_PASSWORD,
            "p",
            {"iam_username": "u", "iam_password": SECRET, "iam_domain": "d", "access_key": "ignored"},
            IamPassword,
        ),
        (CredentialKind.IAM_TOKEN, "p", {"auth_token": SECRET}, IamToken),
    ],
)
def test_complete_parts_make_the_kinds_model_with_secrets_hidden(
    kind: CredentialKind, project_id: str, parts: dict[str, str | SecretStr], model: type
) -> None:
    credentials = credentials_of(kind, project_id, parts)
    assert type(credentials) is model and credentials.kind is kind
    assert credentials.project_id == project_id
    assert SECRET not in repr(credentials) and SECRET not in str(credentials.model_dump())


@pytest.mark.parametrize(
    ("kind", "project_id", "parts", "named"),
    [
        (CredentialKind.AKSK, "p", {"access_key": "AK", "secret_key": None}, "secret_key"),
        (CredentialKind.AKSK, "p", {"access_key": "", "secret_key": SECRET}, "access_key"),
        (CredentialKind.TEMPORARY_AKSK, "p", {"access_key": "AK", "secret_key": SECRET}, "security_token"),
        (CredentialKind.IAM_TOKEN, "p", {}, "auth_token"),
        (CredentialKind.IAM_PASSWORD, "p", {"iam_username": "u", "iam_password": SECRET}, "iam_domain"),
        (
            CredentialKind.IAM_PASSWORD,
            "",
            {"iam_username": "u", "iam_password": SECRET, "iam_domain": "d"},
            "project_id",
        ),
    ],
)
def test_missing_parts_are_a_value_error_naming_them_never_a_value(
    kind: CredentialKind, project_id: str, parts: dict[str, str | None], named: str
) -> None:
    # A ValueError like the form's other refusals, so the connection modal answers in one sentence.
    with pytest.raises(CredentialsIncomplete) as caught:
        credentials_of(kind, project_id, parts)
    assert isinstance(caught.value, ValueError)
    assert caught.value.problems == [f"{kind.value} credentials need: {named}"]
    assert SECRET not in str(caught.value)


def test_a_model_refuses_an_empty_secret_without_quoting_the_input() -> None:
    with pytest.raises(ValidationError) as caught:
        AkSk(access_key=SECRET, secret_key=SecretStr(""))
    assert "secret_key" in str(caught.value) and SECRET not in str(caught.value)
