"""Which credentials the operator configured: the Huawei Cloud SDK's credential provider chain.

Mirrors ``huaweicloudsdkcore.auth.provider.CredentialProviderChain`` (3.1.219): each source is
asked in turn and the first that holds credentials gives all of them. Invariants:

1. Order: an AK/SK pair (the SDK's ``EnvCredentialProvider``: ``HUAWEICLOUD_SDK_AK``/``SK`` with
   ``HUAWEICLOUD_SDK_PROJECT_ID`` and ``HUAWEICLOUD_SDK_SECURITY_TOKEN``), then taskbot's IAM
   sources (``METASTUDIO_AUTH_TOKEN``, else ``METASTUDIO_IAM_USERNAME``/``PASSWORD``), then the
   profile file's ``[basic]`` section (the SDK's ``ProfileCredentialProvider``: ak, sk,
   project_id, security_token, iam_endpoint).
2. Values are never mixed across sources, as in the SDK: a project id in the profile does not
   complete AK/SK from the environment, nor the environment's project id a profile's AK/SK.
3. AK/SK without a project id are accepted: the client looks the project up in IAM
   (``GET /v3/projects?name=<region>``), as the SDK does.
4. Where the SDK's chain skips a source it cannot use, this one stops with ``CredentialsIncomplete``
   when a source is there in part (an AK without its SK, a token without a project id, a profile
   file named but missing or unreadable): a forgotten half must not let a later source answer
   unnoticed. Each sentence names the variable to set, never a value.

Sources are given values, not the environment: the caller reads its settings and builds them
(``bot.services.connections``).
"""

from __future__ import annotations

import configparser
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from bot.metastudio.credentials import (
    AkSk,
    CloudCredentials,
    CredentialsIncomplete,
    IamPassword,
    IamToken,
    TemporaryAkSk,
)

__all__ = [
    "NO_CREDENTIALS",
    "AkSkSource",
    "CredentialSource",
    "IamUserSource",
    "ProfileSource",
    "TokenSource",
    "default_profile_path",
    "first_credentials",
]

CREDENTIALS_FILE_ENV = "HUAWEICLOUD_SDK_CREDENTIALS_FILE"
NO_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID is not set (the MetaStudio project id)"
NO_CREDENTIALS = (
    "no MetaStudio credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK "
    "(HUAWEICLOUD_SDK_PROJECT_ID optional), or METASTUDIO_IAM_USERNAME and "
    "METASTUDIO_IAM_PASSWORD, or METASTUDIO_AUTH_TOKEN (both with HUAWEICLOUD_SDK_PROJECT_ID)"
)


class CredentialSource(Protocol):
    def credentials(self) -> CloudCredentials | None:
        """All of this source's credentials, or None when it holds none.

        Raises ``CredentialsIncomplete`` when it holds only part of them.
        """
        ...


def first_credentials(sources: Iterable[CredentialSource]) -> CloudCredentials:
    """The credentials of the first source that holds any. Raises ``CredentialsIncomplete``."""
    for source in sources:
        found = source.credentials()
        if found is not None:
            return found
    raise CredentialsIncomplete([NO_CREDENTIALS])


def _aksk(
    access_key: str,
    secret_key: SecretStr,
    project_id: str | None,
    security_token: SecretStr | None,
    iam_endpoint: str | None = None,
) -> AkSk | TemporaryAkSk:
    """AK/SK credentials; a security token makes them temporary, as in the SDK's ``BasicCredentials``."""
    if security_token:
        return TemporaryAkSk(
            project_id=project_id or "",
            access_key=access_key,
            secret_key=secret_key,
            security_token=security_token,
            iam_endpoint=iam_endpoint,
        )
    return AkSk(
        project_id=project_id or "", access_key=access_key, secret_key=secret_key, iam_endpoint=iam_endpoint
    )


@dataclass(frozen=True, slots=True)
class AkSkSource:
    """The SDK's ``EnvCredentialProvider``: an AK/SK pair, with a security token when temporary."""

    access_key: str | None
    secret_key: SecretStr | None
    project_id: str | None
    security_token: SecretStr | None

    def credentials(self) -> CloudCredentials | None:
        if bool(self.access_key) != bool(self.secret_key):
            missing = "HUAWEICLOUD_SDK_SK" if self.access_key else "HUAWEICLOUD_SDK_AK"
            raise CredentialsIncomplete([f"{missing} is not set (an AK and an SK work only as a pair)"])
        if not (self.access_key and self.secret_key):
            return None
        return _aksk(self.access_key, self.secret_key, self.project_id, self.security_token)


@dataclass(frozen=True, slots=True)
class TokenSource:
    """taskbot's own: an IAM token as given, for the project named with it."""

    project_id: str | None
    token: SecretStr | None

    def credentials(self) -> CloudCredentials | None:
        if not self.token:
            return None
        if not self.project_id:
            raise CredentialsIncomplete([NO_PROJECT_ID])
        return IamToken(project_id=self.project_id, auth_token=self.token)


@dataclass(frozen=True, slots=True)
class IamUserSource:
    """taskbot's own: an IAM user's name and password, for the project named with them."""

    project_id: str | None
    username: str | None
    password: SecretStr | None
    domain: str | None
    """The account that owns the IAM user."""

    def credentials(self) -> CloudCredentials | None:
        if not (self.username and self.password):
            return None
        if not (self.project_id and self.domain):
            problems = [] if self.project_id else [NO_PROJECT_ID]
            if not self.domain:
                problems.append("METASTUDIO_IAM_DOMAIN is not set (the account name that owns the IAM user)")
            raise CredentialsIncomplete(problems)
        return IamPassword(
            project_id=self.project_id,
            iam_username=self.username,
            iam_password=self.password,
            iam_domain=self.domain,
        )


def default_profile_path() -> Path:
    """The SDK's profile file; resolved on each call so a changed ``HOME`` is honoured."""
    return Path.home() / ".huaweicloud" / "credentials"


@dataclass(frozen=True, slots=True)
class ProfileSource:
    """The SDK's ``ProfileCredentialProvider``: the ``[basic]`` section of its credentials file."""

    named: Path | None
    """``HUAWEICLOUD_SDK_CREDENTIALS_FILE``, which must exist; None: ``default_profile_path()``."""

    def credentials(self) -> CloudCredentials | None:
        section = self._section()
        access_key, secret_key = section.get("ak"), section.get("sk")
        if not (access_key and secret_key):
            return None
        token = section.get("security_token")
        return _aksk(
            access_key,
            SecretStr(secret_key),
            section.get("project_id"),
            SecretStr(token) if token else None,
            # As the SDK's BasicCredentials.iam_endpoint, it wins over the environment's (see the client).
            iam_endpoint=(section.get("iam_endpoint") or "").rstrip("/") or None,
        )

    def _section(self) -> dict[str, str]:
        """The ``[basic]`` section; {} when the default file is absent or has none.

        A file that is there but cannot be used (unreadable, not an INI file, not text, a folder)
        is a problem naming the variable, whether the file was named or is the default.
        """
        if self.named is not None and not self.named.exists():
            raise CredentialsIncomplete([f"{CREDENTIALS_FILE_ENV}={str(self.named)!r} does not exist"])
        path = self.named or default_profile_path()
        try:
            return _read_basic(path)
        except _ProfileUnusable as exc:
            default = (
                "" if self.named is not None else f" (the default, as {CREDENTIALS_FILE_ENV} is not set)"
            )
            raise CredentialsIncomplete(
                [
                    f"{CREDENTIALS_FILE_ENV}={str(path)!r}{default}: {exc}; it must be a "
                    "readable text file with a [basic] section (ak = …, sk = …, project_id = …)"
                ]
            ) from None


class _ProfileUnusable(Exception):
    """The profile file is there but cannot be read as one; the text says why (never its content)."""


def _read_basic(path: Path) -> dict[str, str]:
    """The ``[basic]`` section, {} when the file is absent or has none; raises ``_ProfileUnusable``."""
    if not path.exists():
        return {}
    if path.is_dir():
        raise _ProfileUnusable("is a folder, not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise _ProfileUnusable("cannot be read by this user") from None
    except UnicodeDecodeError:
        raise _ProfileUnusable("is not UTF-8 text") from None
    except OSError as exc:
        raise _ProfileUnusable(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    if "\x00" in text:
        raise _ProfileUnusable("is not a text file")
    # No interpolation: a secret key may contain ``%``, which the default parser rejects.
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        # The parser's own message quotes the offending line, which may hold a secret key.
        raise _ProfileUnusable(f"is not an INI file ({type(exc).__name__})") from None
    if not parser.has_section("basic"):
        return {}
    return {key: value.strip() for key, value in parser["basic"].items()}
