"""All configuration as one typed object, read from the environment by pydantic-settings.

Names follow the Huawei Cloud SDK's own conventions (``HUAWEICLOUD_SDK_*``, the profile file
``~/.huaweicloud/credentials``) and the seed sample's ``CLOUD_SDK_AK``/``CLOUD_SDK_SK``, so an
operator who already uses the SDK configures nothing new.
"""

from __future__ import annotations

import configparser
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REGION_ENDPOINTS: dict[str, str] = {
    "cn-north-4": "https://metastudio.cn-north-4.myhuaweicloud.com",
    "cn-east-3": "https://metastudio.cn-east-3.myhuaweicloud.com",
    "ap-southeast-3": "https://metastudio.ap-southeast-3.myhuaweicloud.com",
}
SDK_REGION_ENV_PREFIX = "HUAWEICLOUD_SDK_REGION_METASTUDIO_"
DEFAULT_CREDENTIALS_FILE = Path.home() / ".huaweicloud" / "credentials"


class CredentialKind(StrEnum):
    AKSK = "aksk"
    TEMPORARY_AKSK = "temporary_aksk"
    IAM_PASSWORD = "iam_password"
    IAM_TOKEN = "iam_token"


class CloudCredentials(BaseModel):
    """What the client signs or authenticates with. Secrets stay ``SecretStr`` until the wire."""

    kind: CredentialKind
    project_id: str
    access_key: str | None = None
    secret_key: SecretStr | None = None
    security_token: SecretStr | None = None
    iam_username: str | None = None
    iam_password: SecretStr | None = None
    iam_domain: str | None = None
    auth_token: SecretStr | None = None


class ConfigError(Exception):
    """Configuration that cannot work. ``problems`` names each variable and what is wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def render(self) -> str:
        lines = ["taskbot cannot start: the configuration is incomplete or invalid."]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append("See the README's table of environment variables.")
        return "\n".join(lines)


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, case_sensitive=False
    )

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    port: int = Field(default=3000, ge=1, le=65535)
    database_url: str = "sqlite+aiosqlite:///taskbot.db"

    # MetaStudio credentials
    cloud_ak: str | None = Field(default=None, validation_alias=AliasChoices("HUAWEICLOUD_SDK_AK", "CLOUD_SDK_AK"))
    cloud_sk: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HUAWEICLOUD_SDK_SK", "CLOUD_SDK_SK")
    )
    cloud_project_id: str | None = Field(
        default=None, validation_alias=AliasChoices("HUAWEICLOUD_SDK_PROJECT_ID", "METASTUDIO_PROJECT_ID")
    )
    cloud_security_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HUAWEICLOUD_SDK_SECURITY_TOKEN")
    )
    cloud_credentials_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("HUAWEICLOUD_SDK_CREDENTIALS_FILE")
    )
    iam_username: str | None = Field(default=None, validation_alias=AliasChoices("METASTUDIO_IAM_USERNAME"))
    iam_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("METASTUDIO_IAM_PASSWORD")
    )
    iam_domain: str | None = Field(default=None, validation_alias=AliasChoices("METASTUDIO_IAM_DOMAIN"))
    iam_endpoint: str | None = Field(default=None, validation_alias=AliasChoices("METASTUDIO_IAM_ENDPOINT"))
    auth_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("METASTUDIO_AUTH_TOKEN"))

    # MetaStudio endpoint and transport
    region: str = Field(default="cn-north-4", validation_alias=AliasChoices("METASTUDIO_REGION"))
    endpoint: str | None = Field(default=None, validation_alias=AliasChoices("METASTUDIO_ENDPOINT"))
    connect_timeout: float = Field(
        default=3.0, gt=0, validation_alias=AliasChoices("METASTUDIO_CONNECT_TIMEOUT")
    )
    read_timeout: float = Field(default=10.0, gt=0, validation_alias=AliasChoices("METASTUDIO_READ_TIMEOUT"))
    max_retries: int = Field(default=3, ge=0, le=10, validation_alias=AliasChoices("METASTUDIO_MAX_RETRIES"))

    # taskbot behaviour
    finished_status_codes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("TASKBOT_FINISHED_STATUS_CODES")
    )
    log_format: Literal["text", "json"] = Field(default="text", validation_alias=AliasChoices("TASKBOT_LOG_FORMAT"))
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("TASKBOT_LOG_LEVEL"))

    @field_validator("finished_status_codes", mode="before")
    @classmethod
    def _split_codes(cls, value: object) -> object:
        return _csv(value)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def finished_codes(self) -> frozenset[str]:
        return frozenset(self.finished_status_codes)

    @property
    def metastudio_endpoint(self) -> str:
        """Explicit override first, then the SDK's per-region variable, then the known region table."""
        if self.endpoint:
            return self.endpoint.rstrip("/")
        sdk_override = os.environ.get(SDK_REGION_ENV_PREFIX + self.region.replace("-", "_").upper())
        if sdk_override:
            return sdk_override.split(",")[0].strip().rstrip("/")
        return REGION_ENDPOINTS[self.region]

    @property
    def iam_url(self) -> str:
        if self.iam_endpoint:
            return self.iam_endpoint.rstrip("/")
        if self.endpoint or os.environ.get(SDK_REGION_ENV_PREFIX + self.region.replace("-", "_").upper()):
            # A custom endpoint (a proxy, the simulator) serves IAM too unless told otherwise.
            return self.metastudio_endpoint
        return f"https://iam.{self.region}.myhuaweicloud.com"

    def cloud_credentials(self) -> CloudCredentials:
        """Credentials from the environment, else from the SDK profile file. Raises ConfigError."""
        values: dict[str, object | None] = {
            "project_id": self.cloud_project_id,
            "access_key": self.cloud_ak,
            "secret_key": self.cloud_sk,
            "security_token": self.cloud_security_token,
        }
        if not (self.cloud_ak and self.cloud_sk):
            profile = _read_profile(self.cloud_credentials_file)
            for key, profile_key in (
                ("access_key", "ak"),
                ("secret_key", "sk"),
                ("security_token", "security_token"),
                ("project_id", "project_id"),
            ):
                if not values[key] and profile.get(profile_key):
                    values[key] = profile[profile_key]
        problems: list[str] = []
        if not values["project_id"]:
            problems.append("HUAWEICLOUD_SDK_PROJECT_ID is not set (the MetaStudio project id)")
        if values["access_key"] and values["secret_key"]:
            kind = CredentialKind.TEMPORARY_AKSK if values["security_token"] else CredentialKind.AKSK
        elif self.auth_token:
            kind = CredentialKind.IAM_TOKEN
        elif self.iam_username and self.iam_password:
            kind = CredentialKind.IAM_PASSWORD
            if not self.iam_domain:
                problems.append("METASTUDIO_IAM_DOMAIN is not set (the account name that owns the IAM user)")
        else:
            kind = CredentialKind.AKSK
            problems.append(
                "no MetaStudio credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, "
                "or METASTUDIO_IAM_USERNAME and METASTUDIO_IAM_PASSWORD, or METASTUDIO_AUTH_TOKEN"
            )
        if problems:
            raise ConfigError(problems)
        return CloudCredentials(
            kind=kind,
            iam_username=self.iam_username,
            iam_password=self.iam_password,
            iam_domain=self.iam_domain,
            auth_token=self.auth_token,
            **values,  # type: ignore[arg-type]
        )

    def endpoint_problems(self) -> list[str]:
        has_override = self.endpoint or os.environ.get(
            SDK_REGION_ENV_PREFIX + self.region.replace("-", "_").upper()
        )
        if not has_override and self.region not in REGION_ENDPOINTS:
            known = ", ".join(sorted(REGION_ENDPOINTS))
            return [f"METASTUDIO_REGION={self.region!r} is not a known region ({known}); set METASTUDIO_ENDPOINT"]
        return []

    def slack_problems(self) -> list[str]:
        problems: list[str] = []
        if not self.slack_bot_token:
            problems.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        if not self.slack_app_token and not self.slack_signing_secret:
            problems.append("SLACK_SIGNING_SECRET is not set (needed in HTTP mode; or set SLACK_APP_TOKEN for Socket Mode)")
        return problems


def _read_profile(path: Path | None) -> dict[str, str]:
    candidate = path or DEFAULT_CREDENTIALS_FILE
    if not candidate.is_file():
        return {}
    parser = configparser.ConfigParser()
    try:
        parser.read(candidate, encoding="utf-8")
    except configparser.Error:
        return {}
    return dict(parser["basic"]) if parser.has_section("basic") else {}


def load_settings() -> Settings:
    """Read the environment. Raises ConfigError naming every invalid variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "?"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError(problems) from None
