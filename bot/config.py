"""All configuration as one typed object, read from the environment by pydantic-settings.

Names follow the Huawei Cloud SDK's own conventions (``HUAWEICLOUD_SDK_*``, the profile file
``~/.huaweicloud/credentials``) and the seed sample's ``CLOUD_SDK_AK``/``CLOUD_SDK_SK``, so an
operator who already uses the SDK configures nothing new.

``Settings`` describes the environment and checks each value's shape; what the values stand
for together is the MetaStudio layer's rule, given the values by ``bot.services.connections``:
which credentials answer (``bot.metastudio.credential_chain``, the SDK's provider chain) and
where MetaStudio and IAM live (``bot.metastudio.regions``, the SDK's region chain).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot import messages
from bot.metastudio.endpoints import DEFAULT_ALLOWED_HOSTS, BadEndpointURL, EndpointPolicy, parse_endpoint

__all__ = [
    "ConfigError",
    "Settings",
    "load_settings",
    "load_settings_and_mistakes",
]


class ConfigError(Exception):
    """Configuration that cannot work. ``problems`` names each variable and what is wrong with it.

    From ``load_settings``, ``settings`` holds the rest of the configuration (each invalid
    variable at its default) and ``invalid`` the fields that were invalid, so a caller can go
    on to report every other problem in the same message.
    """

    def __init__(
        self, problems: list[str], *, settings: Settings | None = None, invalid: frozenset[str] = frozenset()
    ) -> None:
        self.problems = problems
        self.settings = settings
        self.invalid = invalid
        super().__init__("; ".join(problems))

    def besides(self, more: list[str]) -> list[str]:
        """``more`` without what names a variable already reported invalid ("X is not set" after "X=…: bad")."""
        names = tuple(_variable(field) for field in self.invalid)
        return [problem for problem in more if not names or not problem.startswith(names)]

    def render(self) -> str:
        lines = ["taskbot cannot start: the configuration is incomplete or invalid."]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append("Every variable is described in docs/configuration.md.")
        return "\n".join(lines)


LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SIGNING_SECRET: Final = re.compile(r"[0-9a-fA-F]{32}")
# Each Slack secret's expected shape, and the sentence that says what it should look like instead.
_SLACK_SECRET_SHAPES: Final[dict[str, tuple[Callable[[str], object], str]]] = {
    "slack_bot_token": (
        # A rotating token (xoxe.xoxb-) expires after 12 hours and this mode has no refresh token.
        lambda value: value.startswith("xoxb-"),
        "SLACK_BOT_TOKEN is not a lasting bot token: a bot token starts with xoxb- "
        "(e.g. xoxb-1234567890-1234567890123-AbCdEf…, from OAuth & Permissions); "
        "xoxp- is a user token, xapp- belongs in SLACK_APP_TOKEN, and xoxe.xoxb- is a rotating "
        "token that expires in 12 hours (create the app from manifest.yaml, which leaves token "
        "rotation off, or install per workspace with SLACK_CLIENT_ID)",
    ),
    "slack_app_token": (
        lambda value: value.startswith("xapp-"),
        "SLACK_APP_TOKEN is not an app-level token: it starts with xapp- "
        "(e.g. xapp-1-A0123456789-1234567890123-abc…, from Basic Information > App-Level Tokens, "
        "scope connections:write)",
    ),
    "slack_signing_secret": (
        _SIGNING_SECRET.fullmatch,
        "SLACK_SIGNING_SECRET is not a signing secret: Slack's is 32 hexadecimal characters "
        "(e.g. 8f14e45fceea167a5a36dedd4bea2543, from Basic Information > App Credentials; "
        "not the client secret, nor a token)",
    ),
}
DATABASE_EXAMPLES: Final = (
    "e.g. DATABASE_URL=sqlite+aiosqlite:///taskbot.db or "
    "DATABASE_URL=postgresql+asyncpg://taskbot:PASSWORD@db.internal:5432/taskbot"
)


def check_database_url(value: str) -> str:
    """``value`` if SQLAlchemy can parse it and it names an async driver taskbot ships with."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise ValueError(f"DATABASE_URL is not a database URL; {DATABASE_EXAMPLES}") from None
    shown = url.render_as_string(hide_password=True)
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend == "sqlite" and driver != "aiosqlite":
        fixed = url.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=True)
        raise ValueError(
            f"DATABASE_URL={shown!r} names the blocking SQLite driver; use sqlite+aiosqlite:///, e.g. DATABASE_URL={fixed}"
        )
    if backend == "postgresql" and driver != "asyncpg":
        fixed = url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=True)
        raise ValueError(
            f"DATABASE_URL={shown!r} names a blocking PostgreSQL driver; use postgresql+asyncpg://, e.g. DATABASE_URL={fixed}"
        )
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"DATABASE_URL={shown!r} is not SQLite or PostgreSQL; {DATABASE_EXAMPLES}")
    return value


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    # ``.env`` in the working folder, if there is one; pydantic-settings lets the environment win over
    # it. An empty value counts as unset (as the SDK's EnvCredentialProvider reads it), so a copy of
    # .env.example with blanks left says "not set", not "not a token".
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
    )

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    # Bodies of Slack requests over this many bytes get 413 before they are read (bot/slack/inbound.py).
    slack_max_request_bytes: int = Field(
        default=1024 * 1024, ge=64 * 1024, validation_alias=AliasChoices("TASKBOT_SLACK_MAX_REQUEST_BYTES")
    )
    encryption_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TASKBOT_ENCRYPTION_KEY")
    )
    # Where the HTTP server listens: every interface by default; 127.0.0.1 behind a proxy on the same host.
    host: str = Field(default="0.0.0.0", min_length=1)
    port: int = Field(default=3000, ge=1, le=65535)
    database_url: str = "sqlite+aiosqlite:///taskbot.db"
    # Off for operators who run `taskbot migrate` as a separate step (bot.db.schema).
    migrate_on_start: bool = Field(default=True, validation_alias=AliasChoices("TASKBOT_MIGRATE_ON_START"))

    # MetaStudio credentials
    cloud_ak: str | None = Field(
        default=None, validation_alias=AliasChoices("HUAWEICLOUD_SDK_AK", "CLOUD_SDK_AK")
    )
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
    # The SDK's name first; METASTUDIO_IAM_ENDPOINT is taskbot's own alias, which deployments still set.
    iam_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("HUAWEICLOUD_SDK_IAM_ENDPOINT", "METASTUDIO_IAM_ENDPOINT")
    )
    auth_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("METASTUDIO_AUTH_TOKEN"))

    # MetaStudio endpoint and transport
    region: str = Field(default="cn-north-4", validation_alias=AliasChoices("METASTUDIO_REGION"))
    endpoint: str | None = Field(default=None, validation_alias=AliasChoices("METASTUDIO_ENDPOINT"))
    connect_timeout: float = Field(
        default=3.0, gt=0, validation_alias=AliasChoices("METASTUDIO_CONNECT_TIMEOUT")
    )
    read_timeout: float = Field(default=10.0, gt=0, validation_alias=AliasChoices("METASTUDIO_READ_TIMEOUT"))
    max_retries: int = Field(default=3, ge=0, le=10, validation_alias=AliasChoices("METASTUDIO_MAX_RETRIES"))
    # One deadline per MetaStudio call: connect, headers, body, retries and their waits together.
    # The HTTP client's timeouts are per read, so a body trickling a byte a second never trips them.
    call_deadline: float = Field(
        default=15.0, gt=0, le=600, validation_alias=AliasChoices("TASKBOT_CALL_DEADLINE_SECONDS")
    )
    # Decoded bytes, so a gzip bomb stops here too; a task detail is under 1 KB.
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, validation_alias=AliasChoices("TASKBOT_MAX_RESPONSE_BYTES")
    )
    # Hosts a workspace admin may point the connection at (see bot.metastudio.endpoints).
    allowed_endpoint_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_HOSTS),
        validation_alias=AliasChoices("TASKBOT_ALLOWED_ENDPOINT_HOSTS"),
    )

    # taskbot behaviour
    finished_status_codes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=AliasChoices("TASKBOT_FINISHED_STATUS_CODES")
    )
    log_format: Literal["text", "json"] = Field(
        default="text", validation_alias=AliasChoices("TASKBOT_LOG_FORMAT")
    )
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("TASKBOT_LOG_LEVEL"))

    # Follow-ups
    poll_seconds: float = Field(default=10.0, gt=0, validation_alias=AliasChoices("TASKBOT_POLL_SECONDS"))
    max_poll_seconds: float = Field(
        default=300.0, gt=0, validation_alias=AliasChoices("TASKBOT_MAX_POLL_SECONDS")
    )
    watch_max_hours: float = Field(
        default=24.0, gt=0, validation_alias=AliasChoices("TASKBOT_WATCH_MAX_HOURS")
    )
    api_rate: float = Field(default=10.0, gt=0, validation_alias=AliasChoices("TASKBOT_API_RATE"))
    alert_mode: Literal["thread_and_channel", "thread", "channel"] = Field(
        default="thread_and_channel", validation_alias=AliasChoices("TASKBOT_ALERT_MODE")
    )
    card_update_seconds: float = Field(
        default=10.0, ge=0, validation_alias=AliasChoices("TASKBOT_CARD_UPDATE_SECONDS")
    )
    feed_poll_seconds: float = Field(
        default=30.0, gt=0, validation_alias=AliasChoices("TASKBOT_FEED_POLL_SECONDS")
    )
    # A watched task is stalled after this long without a change (never less than several of
    # its usual gaps between changes, see bot.metastudio.progress).
    stall_minutes: float = Field(default=30.0, gt=0, validation_alias=AliasChoices("TASKBOT_STALL_MINUTES"))
    # PostgreSQL only: how long a replica owns a workspace's polls without renewing (bot.followups.shards).
    lease_seconds: float = Field(
        default=30.0, ge=1.0, le=3600.0, validation_alias=AliasChoices("TASKBOT_LEASE_SECONDS")
    )
    # What channels read (cards, alerts, notices) in single-workspace mode: ``follow`` the person
    # who asked, or a catalog id. With many workspaces each admin sets it in App Home instead.
    channel_language: str = Field(default="follow", validation_alias=AliasChoices("TASKBOT_CHANNEL_LANGUAGE"))

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return check_database_url(value)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(
                f"TASKBOT_LOG_LEVEL={value!r} is not a log level; use one of {', '.join(LOG_LEVELS)} "
                "(e.g. TASKBOT_LOG_LEVEL=INFO)"
            )
        return level

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            parse_endpoint(value.strip())
        except BadEndpointURL as exc:
            raise ValueError(
                f"METASTUDIO_ENDPOINT={value!r} is not a URL with a scheme and a host ({exc}); "
                "use e.g. METASTUDIO_ENDPOINT=https://metastudio.cn-north-4.myhuaweicloud.com"
            ) from None
        return value.strip()

    # Slack secrets: the message names the shape, never the value.
    @field_validator(*_SLACK_SECRET_SHAPES)
    @classmethod
    def _slack_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        shape, problem = _SLACK_SECRET_SHAPES[info.field_name or ""]
        if value is not None and not shape(value.get_secret_value()):
            raise ValueError(problem)
        return value

    @field_validator("finished_status_codes", mode="before")
    @classmethod
    def _split_codes(cls, value: object) -> object:
        return _csv(value)

    @field_validator("channel_language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        wanted = value.strip()
        if wanted.lower() in ("", "follow"):
            return "follow"
        for locale in messages.SUPPORTED:
            if locale.lower() == wanted.replace("_", "-").lower():
                return locale
        raise ValueError(
            f"TASKBOT_CHANNEL_LANGUAGE={value!r} is not a language taskbot speaks; use follow or one of "
            f"{', '.join(messages.SUPPORTED)} (e.g. TASKBOT_CHANNEL_LANGUAGE=follow)"
        )

    @property
    def fixed_channel_language(self) -> str | None:
        """The catalog id every channel reads, or None to follow the person who asked."""
        return None if self.channel_language == "follow" else self.channel_language

    @field_validator("allowed_endpoint_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        return _csv(value)

    @field_validator("allowed_endpoint_hosts")
    @classmethod
    def _check_hosts(cls, value: list[str]) -> list[str]:
        EndpointPolicy.parse(value)
        return value

    @property
    def endpoint_policy(self) -> EndpointPolicy:
        return EndpointPolicy.parse(self.allowed_endpoint_hosts)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def finished_codes(self) -> frozenset[str]:
        return frozenset(self.finished_status_codes)

    @property
    def multi_workspace(self) -> bool:
        """OAuth installs into many workspaces when a client id is set; else one workspace by token."""
        return bool(self.slack_client_id)

    def slack_problems(self) -> list[str]:
        problems: list[str] = []
        if self.multi_workspace:
            if not self.slack_client_secret:
                problems.append("SLACK_CLIENT_SECRET is not set (needed with SLACK_CLIENT_ID for installs)")
            if not self.slack_signing_secret:
                problems.append("SLACK_SIGNING_SECRET is not set (verifies that requests come from Slack)")
            if not self.encryption_key:
                problems.append(
                    "TASKBOT_ENCRYPTION_KEY is not set (a Fernet key that encrypts each workspace's cloud credentials)"
                )
            return problems
        if not self.slack_bot_token:
            problems.append(
                "SLACK_BOT_TOKEN is not set (the bot token, xoxb-…; or SLACK_CLIENT_ID for installs)"
            )
        if not self.slack_app_token and not self.slack_signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET is not set "
                "(needed in HTTP mode; or set SLACK_APP_TOKEN for Socket Mode)"
            )
        return problems


def _variable(field: str) -> str:
    """The environment variable a field is read from (its first alias, else its name)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return field.upper()


def load_settings() -> Settings:
    """Read the environment. Raises ConfigError naming every invalid variable, all at once.

    The error carries the rest of the configuration (each invalid variable at its default), so
    ``serve`` and ``check`` can add what else is missing or wrong to the same message.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        invalid: set[str] = set()
        for error in exc.errors():
            # pydantic reports a field by the alias it was read from, else by its name.
            where = str(error["loc"][0]) if error["loc"] else "?"
            field = _FIELD_BY_ALIAS.get(where.upper(), where)
            invalid.add(field)
            name = _variable(field)
            if error["type"] == "value_error":
                # Our validators' sentences name the variable and give an example already;
                # a library's (the endpoint policy's) gets the variable put in front.
                sentence = str(error["ctx"]["error"])
                if not sentence.startswith(name):
                    shown = "" if field in _SECRET_FIELDS else f"={error['input']!r}"
                    sentence = f"{name}{shown}: {sentence}"
                problems.append(sentence)
            elif field in _SECRET_FIELDS:
                problems.append(f"{name}: {error['msg']}")
            else:
                default = Settings.model_fields[field].default if field in Settings.model_fields else None
                example = f" (e.g. {name}={default})" if default not in (None, "") else ""
                problems.append(f"{name}={error['input']!r}: {error['msg']}{example}")
        try:
            # Init arguments win over the environment: each invalid variable at its default.
            rest: Settings | None = Settings(
                **{
                    f: Settings.model_fields[f].get_default(call_default_factory=True)
                    for f in invalid
                    if f in Settings.model_fields
                }
            )
        except ValidationError:
            rest = None
        raise ConfigError(problems, settings=rest, invalid=frozenset(invalid)) from None


def load_settings_and_mistakes() -> tuple[Settings, ConfigError]:
    """The settings, each invalid variable at its default, and the error naming those variables.

    For ``serve`` and ``check``, which go on to add every other problem to the same message.
    Raises ConfigError only when even the rest of the configuration cannot be read.
    """
    try:
        return load_settings(), ConfigError([])
    except ConfigError as exc:
        if exc.settings is None:
            raise
        return exc.settings, exc


_FIELD_BY_ALIAS: Final = {
    alias.upper(): name
    for name, info in Settings.model_fields.items()
    if isinstance(info.validation_alias, AliasChoices)
    for alias in info.validation_alias.choices
    if isinstance(alias, str)
}
_SECRET_FIELDS: Final = frozenset(
    name
    for name, info in Settings.model_fields.items()
    if info.annotation is not None and "SecretStr" in str(info.annotation)
)
