"""Settings from the environment and the SDK profile file, as the MetaStudio client consumes them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from huaweicloudsdkcore.auth.internal import IamHelper
from pydantic import ValidationError

from bot.config import ConfigError, Settings, load_settings
from bot.db.crypto import SecretBox
from bot.db.workspaces import ConnectionForm, WorkspaceStore
from bot.metastudio import regions
from bot.metastudio.client import MetaStudioClient
from bot.metastudio.credential_chain import default_profile_path
from bot.metastudio.credentials import AkSk, CredentialKind, IamPassword, IamToken, KeyPair, TemporaryAkSk
from bot.metastudio.endpoints import BadEndpointURL, parse_endpoint
from bot.metastudio.regions import REGION_ENDPOINTS
from bot.services.connections import env_client, environment_credentials, environment_endpoints
from bot.slack.modals import parse_connection
from tests.databases import open_database
from tests.support.credentials import aksk
from tests.support.forms import connection_state

PROJECT = "0b1f5e2d9c8a4b7e8f6a5d4c3b2a1f0e"
OWN_PREFIXES = ("HUAWEICLOUD_SDK_", "CLOUD_SDK_", "METASTUDIO_", "TASKBOT_", "SLACK_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No variable of ours from the outer environment, and a HOME without a profile file."""
    for name in list(os.environ):
        if name.upper().startswith(OWN_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield home


def endpoint_problems(settings: Settings) -> list[str]:
    return regions.endpoint_problems(settings.region, settings.endpoint)


def write_profile(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def test_aksk_from_huaweicloud_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKENV")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SKENV")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    creds = environment_credentials(Settings())
    assert isinstance(creds, AkSk) and creds.kind is CredentialKind.AKSK
    assert creds.access_key == "AKENV"
    assert creds.secret_key.get_secret_value() == "SKENV"
    assert creds.project_id == PROJECT
    assert "SKENV" not in repr(creds)


def test_aksk_from_the_seed_sample_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUD_SDK_AK", "AKSEED")
    monkeypatch.setenv("CLOUD_SDK_SK", "SKSEED")
    monkeypatch.setenv("METASTUDIO_PROJECT_ID", PROJECT)
    creds = environment_credentials(Settings())
    assert isinstance(creds, AkSk)
    assert (creds.kind, creds.access_key, creds.project_id) == (CredentialKind.AKSK, "AKSEED", PROJECT)


def test_lower_case_names_work_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("huaweicloud_sdk_ak", "AKLOW")
    monkeypatch.setenv("huaweicloud_sdk_sk", "SKLOW")
    monkeypatch.setenv("huaweicloud_sdk_project_id", PROJECT)
    creds = environment_credentials(Settings())
    assert isinstance(creds, AkSk) and creds.access_key == "AKLOW"


def test_security_token_makes_temporary_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKTMP")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SKTMP")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "STS-TOKEN")
    creds = environment_credentials(Settings())
    assert isinstance(creds, TemporaryAkSk) and creds.kind is CredentialKind.TEMPORARY_AKSK
    assert creds.security_token.get_secret_value() == "STS-TOKEN"


def test_profile_file_in_home(clean_env: Path) -> None:
    write_profile(
        clean_env / ".huaweicloud" / "credentials",
        f"[basic]\nak = AKFILE\nsk = SK%with%percent\nproject_id = {PROJECT}\n",
    )
    assert default_profile_path() == clean_env / ".huaweicloud" / "credentials"
    creds = environment_credentials(Settings())
    assert isinstance(creds, AkSk) and creds.kind is CredentialKind.AKSK
    assert creds.access_key == "AKFILE"
    assert creds.secret_key.get_secret_value() == "SK%with%percent"
    assert creds.project_id == PROJECT


def test_profile_file_named_by_env_with_security_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_profile(
        tmp_path / "elsewhere" / "creds.ini",
        f"[global]\nak = NOTTHIS\nsk = NOTTHIS\n\n[basic]\nak = AKF\nsk = SKF\nsecurity_token = STSF\n"
        f"project_id = {PROJECT}\n",
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(path))
    creds = environment_credentials(Settings())
    assert isinstance(creds, TemporaryAkSk) and creds.kind is CredentialKind.TEMPORARY_AKSK
    assert creds.access_key == "AKF"
    assert creds.security_token.get_secret_value() == "STSF"


def test_env_project_id_is_not_mixed_into_profile_credentials(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    # The SDK's ProfileCredentialProvider reads the file only: an env project id does not complete it.
    write_profile(
        clean_env / ".huaweicloud" / "credentials", "[basic]\nak = A\nsk = S\nproject_id = fromfile\n"
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    assert environment_credentials(Settings()).project_id == "fromfile"


def test_env_aksk_never_takes_the_profiles_project_id(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    write_profile(
        clean_env / ".huaweicloud" / "credentials",
        "[basic]\nak = A\nsk = S\nproject_id = fromfile\niam_endpoint = https://iam.example.com\n",
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKENV")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SKENV")
    creds = environment_credentials(Settings())
    # Empty: the client looks it up in IAM, as the SDK does, instead of borrowing the profile's.
    assert isinstance(creds, AkSk) and creds.project_id == ""
    assert creds.iam_endpoint is None


def test_profile_iam_endpoint_is_carried(clean_env: Path) -> None:
    write_profile(
        clean_env / ".huaweicloud" / "credentials",
        "[basic]\nak = A\nsk = S\niam_endpoint = https://iam.example.com/\n",
    )
    creds = environment_credentials(Settings())
    assert isinstance(creds, AkSk)
    assert (creds.project_id, creds.iam_endpoint) == ("", "https://iam.example.com")


def test_env_aksk_wins_over_profile(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    write_profile(clean_env / ".huaweicloud" / "credentials", "[basic]\nak = AKFILE\nsk = SKFILE\n")
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKENV")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SKENV")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    creds = environment_credentials(Settings())
    assert isinstance(creds, AkSk) and creds.access_key == "AKENV"
    assert creds.secret_key.get_secret_value() == "SKENV"


def test_env_token_wins_over_a_forgotten_profile(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    write_profile(
        clean_env / ".huaweicloud" / "credentials",
        f"[basic]\nak = AKFILE\nsk = SKFILE\nproject_id = {PROJECT}\n",
    )
    monkeypatch.setenv("METASTUDIO_AUTH_TOKEN", "MIIgiven")
    # No mixing (SDK rule): the profile's project id does not complete the environment's token.
    with pytest.raises(ConfigError) as caught:
        environment_credentials(Settings())
    assert any("HUAWEICLOUD_SDK_PROJECT_ID" in p for p in caught.value.problems)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", "fromenv")
    creds = environment_credentials(Settings())
    assert isinstance(creds, IamToken) and creds.kind is CredentialKind.IAM_TOKEN
    assert not hasattr(creds, "access_key") and not hasattr(creds, "secret_key")
    assert creds.project_id == "fromenv"


def test_half_an_aksk_pair_is_an_error_not_a_mix(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    write_profile(
        clean_env / ".huaweicloud" / "credentials", f"[basic]\nak = AKF\nsk = SKF\nproject_id = {PROJECT}\n"
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AKENV")
    with pytest.raises(ConfigError) as caught:
        environment_credentials(Settings())
    assert caught.value.problems == ["HUAWEICLOUD_SDK_SK is not set (an AK and an SK work only as a pair)"]


def test_named_profile_file_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_CREDENTIALS_FILE", str(tmp_path / "missing.ini"))
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    with pytest.raises(ConfigError) as caught:
        environment_credentials(Settings())
    assert any(
        "HUAWEICLOUD_SDK_CREDENTIALS_FILE" in p and "does not exist" in p for p in caught.value.problems
    )


def test_profile_without_basic_section_gives_no_credentials(clean_env: Path) -> None:
    write_profile(clean_env / ".huaweicloud" / "credentials", "[global]\nak = A\nsk = S\n")
    with pytest.raises(ConfigError) as caught:
        environment_credentials(Settings())
    problems = caught.value.problems
    assert any(p.startswith("no MetaStudio credentials") for p in problems)
    assert "taskbot cannot start" in caught.value.render()


def test_iam_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_IAM_USERNAME", "bot-user")
    monkeypatch.setenv("METASTUDIO_IAM_PASSWORD", "pa55word")
    monkeypatch.setenv("METASTUDIO_IAM_DOMAIN", "acme")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    creds = environment_credentials(Settings())
    assert isinstance(creds, IamPassword) and creds.kind is CredentialKind.IAM_PASSWORD
    assert (creds.iam_username, creds.iam_domain) == ("bot-user", "acme")
    assert creds.iam_password.get_secret_value() == "pa55word"


def test_iam_password_needs_a_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_IAM_USERNAME", "bot-user")
    monkeypatch.setenv("METASTUDIO_IAM_PASSWORD", "pa55word")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    with pytest.raises(ConfigError) as caught:
        environment_credentials(Settings())
    assert [p for p in caught.value.problems if "METASTUDIO_IAM_DOMAIN" in p]
    assert "pa55word" not in str(caught.value)


def test_given_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_AUTH_TOKEN", "MIItoken")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    creds = environment_credentials(Settings())
    assert isinstance(creds, IamToken) and creds.kind is CredentialKind.IAM_TOKEN
    assert creds.auth_token.get_secret_value() == "MIItoken"


PROFILE = f"[basic]\nak = AKFILE\nsk = SKFILE\nproject_id = {PROJECT}\nsecurity_token = STSFILE\n"


@pytest.mark.parametrize(
    ("environment", "profile"),
    [
        ({"HUAWEICLOUD_SDK_AK": "AKENV", "HUAWEICLOUD_SDK_SK": "SKENV"}, PROFILE),
        (
            {
                "HUAWEICLOUD_SDK_AK": "AKENV",
                "HUAWEICLOUD_SDK_SK": "SKENV",
                "HUAWEICLOUD_SDK_PROJECT_ID": PROJECT,
                "HUAWEICLOUD_SDK_SECURITY_TOKEN": "STSENV",
            },
            None,
        ),
        ({"HUAWEICLOUD_SDK_PROJECT_ID": "not-the-profiles"}, PROFILE),
        ({}, PROFILE + "iam_endpoint = https://iam.example.com\n"),
        ({}, "[basic]\nak = AKFILE\nsk = SKFILE\n"),
    ],
)
def test_the_chain_answers_as_the_sdks_provider_chain(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, environment: dict[str, str], profile: str | None
) -> None:
    """Whatever the SDK's own chain (environment, then profile file) reads, ours reads the same:
    the same source wins, and nothing of the other is mixed in."""
    from huaweicloudsdkcore.auth.provider import (
        CredentialProviderChain,
        EnvCredentialProvider,
        ProfileCredentialProvider,
    )

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if profile is not None:
        write_profile(clean_env / ".huaweicloud" / "credentials", profile)
    sdk = CredentialProviderChain(
        (EnvCredentialProvider.get_basic(), ProfileCredentialProvider.get_basic())
    ).get_credentials()
    ours = environment_credentials(Settings())
    assert isinstance(ours, KeyPair)
    token = ours.security_token if isinstance(ours, TemporaryAkSk) else None
    assert (
        ours.access_key,
        ours.secret_key.get_secret_value(),
        ours.project_id or None,
        token.get_secret_value() if token else None,
        ours.iam_endpoint,
    ) == (sdk.ak, sdk.sk, sdk.project_id, sdk.security_token, sdk.iam_endpoint)


def test_nothing_set_names_every_missing_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        environment_credentials(Settings())
    text = caught.value.render()
    for name in (
        "HUAWEICLOUD_SDK_PROJECT_ID",
        "HUAWEICLOUD_SDK_AK",
        "METASTUDIO_IAM_USERNAME",
        "METASTUDIO_AUTH_TOKEN",
    ):
        assert name in text


def test_default_region_and_endpoints() -> None:
    settings = Settings()
    assert settings.region == "cn-north-4"
    assert environment_endpoints(settings).metastudio == "https://metastudio.cn-north-4.myhuaweicloud.com"
    assert environment_endpoints(settings).iam == "https://iam.cn-north-4.myhuaweicloud.com"
    assert endpoint_problems(settings) == []


@pytest.mark.parametrize("region", sorted(REGION_ENDPOINTS))
def test_known_regions(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    monkeypatch.setenv("METASTUDIO_REGION", region)
    settings = Settings()
    assert environment_endpoints(settings).metastudio == REGION_ENDPOINTS[region]
    assert environment_endpoints(settings).iam == f"https://iam.{region}.myhuaweicloud.com"


# --- the IAM endpoint: one rule (bot.metastudio.regions.iam_url) ------------------------------

OUTSIDE_IAM_TABLE = "xx-north-9"  # a region id the SDK's IAM table does not list


@pytest.mark.parametrize("region", sorted(regions.IAM_REGIONS | {OUTSIDE_IAM_TABLE, "cn-north-4"}))
def test_iam_url_follows_the_sdks_iam_helper(monkeypatch: pytest.MonkeyPatch, region: str) -> None:
    official = f"https://metastudio.{region}.myhuaweicloud.com"
    assert regions.iam_url(region) == IamHelper.get_iam_endpoint(region)
    # The SDK asks IAM by region id; an official endpoint names that region.
    assert regions.iam_url("cn-north-4", official) == IamHelper.get_iam_endpoint(region)
    monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", "https://iam.example.com")
    assert regions.iam_url(region, official, named="https://iam.example.com") == IamHelper.get_iam_endpoint(
        region
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        None,
        "https://metastudio.ap-southeast-1.myhuaweicloud.com",  # in the IAM table, not in ours
        f"https://metastudio.{OUTSIDE_IAM_TABLE}.myhuaweicloud.com",
        "http://127.0.0.1:8081/",  # a proxy or the simulator serves IAM too
    ],
)
async def test_environment_and_app_home_reach_the_same_iam(
    monkeypatch: pytest.MonkeyPatch, sqlite_url: str, endpoint: str | None
) -> None:
    if endpoint:
        monkeypatch.setenv("METASTUDIO_ENDPOINT", endpoint)
    from_environment = environment_endpoints(Settings()).iam

    form = parse_connection(
        connection_state(endpoint=endpoint, access_key="HPUAQWERTYUIOP123456", secret_key="sk-0123456789"),
        None,
    )
    assert isinstance(form, ConnectionForm)
    async with open_database(sqlite_url) as database:
        store = WorkspaceStore(database, SecretBox([SecretBox.generate_key()]))
        await store.save_connection("T1", form, user_id="U1")
        from_app_home = await store.endpoint_for("T1")
    assert from_app_home is not None
    assert from_app_home.iam == from_environment
    expected = {
        None: "https://iam.cn-north-4.myhuaweicloud.com",
        "http://127.0.0.1:8081/": "http://127.0.0.1:8081",
    }.get(endpoint, IamHelper.get_iam_endpoint(regions.official_region(endpoint or "")))
    assert from_environment == expected


# --- endpoint URLs: one check (bot.metastudio.endpoints.parse_endpoint) ---------------------------

ENDPOINT_URLS = {
    "https://metastudio.cn-north-4.myhuaweicloud.com": True,
    "http://127.0.0.1:8081/": True,
    "https://[::1]:8443/base/": True,
    "127.0.0.1:8080": False,  # no scheme
    "ftp://metastudio.example.com": False,
    "https://": False,
    "https://user:secret@metastudio.example.com": False,
    "https://metastudio.example.com/?project=1": False,
    "https://metastudio.example.com/#top": False,
    "https://metastudio.example.com/a b": False,
    "https://metastudio.example.com:99999": False,
    "https://metastudio.example.com:port": False,
}


@pytest.mark.parametrize(("url", "good"), ENDPOINT_URLS.items())
def test_every_endpoint_url_passes_one_check(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path, url: str, good: bool
) -> None:
    """The environment, the modal, the SDK's region variable and regions file, and the client
    accept exactly the URLs ``parse_endpoint`` accepts."""
    accepted: dict[str, bool] = {}
    try:
        parse_endpoint(url)
        accepted["parse_endpoint"] = True
    except BadEndpointURL:
        accepted["parse_endpoint"] = False

    monkeypatch.setenv("METASTUDIO_ENDPOINT", url)
    try:
        accepted["METASTUDIO_ENDPOINT"] = environment_endpoints(Settings()).metastudio == url.rstrip("/")
    except ValidationError:
        accepted["METASTUDIO_ENDPOINT"] = False
    monkeypatch.delenv("METASTUDIO_ENDPOINT")

    monkeypatch.setenv("METASTUDIO_REGION", "cn-east-3")
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_EAST_3", url)
    accepted["region variable"] = endpoint_problems(Settings()) == []
    monkeypatch.delenv("HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_EAST_3")
    regions_file = write_profile(
        clean_env / "regions.yaml", f"metastudio:\n  - id: cn-east-3\n    endpoint: '{url}'\n"
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGIONS_FILE", str(regions_file))
    accepted["regions file"] = endpoint_problems(Settings()) == []

    form = parse_connection(
        connection_state(endpoint=url, access_key="HPUAQWERTYUIOP123456", secret_key="s"), None
    )
    accepted["modal"] = isinstance(form, ConnectionForm)

    try:
        MetaStudioClient(endpoint=url, credentials=aksk())
        accepted["client"] = True
    except ValueError:
        accepted["client"] = False
    assert accepted == dict.fromkeys(accepted, good)


def test_explicit_endpoint_serves_iam_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_ENDPOINT", "http://127.0.0.1:8081/")
    settings = Settings()
    assert environment_endpoints(settings).metastudio == "http://127.0.0.1:8081"
    assert environment_endpoints(settings).iam == "http://127.0.0.1:8081"
    monkeypatch.setenv("METASTUDIO_IAM_ENDPOINT", "http://127.0.0.1:9000/")
    assert environment_endpoints(Settings()).iam == "http://127.0.0.1:9000"


def test_official_endpoint_of_an_unlisted_region_uses_that_regions_iam(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("METASTUDIO_REGION", "ap-southeast-1")
    monkeypatch.setenv("METASTUDIO_ENDPOINT", "https://metastudio.ap-southeast-1.myhuaweicloud.com")
    settings = Settings()
    assert endpoint_problems(settings) == []
    assert environment_endpoints(settings).iam == "https://iam.ap-southeast-1.myhuaweicloud.com"


def test_sdk_region_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_REGION", "cn-east-3")
    monkeypatch.setenv(
        "HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_EAST_3", "http://127.0.0.1:7000/, https://backup.example"
    )
    settings = Settings()
    assert environment_endpoints(settings).metastudio == "http://127.0.0.1:7000"
    assert environment_endpoints(settings).iam == "http://127.0.0.1:7000"
    monkeypatch.setenv("METASTUDIO_ENDPOINT", "https://explicit.example")
    assert environment_endpoints(Settings()).metastudio == "https://explicit.example"


def test_unknown_region_is_a_config_error_not_a_key_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_REGION", "mars-1")
    settings = Settings()
    assert endpoint_problems(settings) and "mars-1" in endpoint_problems(settings)[0]
    with pytest.raises(ConfigError):
        environment_endpoints(settings)


def test_transport_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.connect_timeout, defaults.read_timeout, defaults.max_retries) == (3.0, 10.0, 3)
    monkeypatch.setenv("METASTUDIO_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("METASTUDIO_READ_TIMEOUT", "4")
    monkeypatch.setenv("METASTUDIO_MAX_RETRIES", "0")
    monkeypatch.setenv("TASKBOT_FINISHED_STATUS_CODES", " 2, 3 ,,")
    settings = Settings()
    assert (settings.connect_timeout, settings.read_timeout, settings.max_retries) == (1.5, 4.0, 0)
    assert settings.finished_codes == frozenset({"2", "3"})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("METASTUDIO_READ_TIMEOUT", "0"),
        ("METASTUDIO_MAX_RETRIES", "-1"),
        ("METASTUDIO_CONNECT_TIMEOUT", "soon"),
    ],
)
def test_invalid_transport_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems[0].startswith(f"{name}={value!r}: ")


async def test_client_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "AK")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "SK")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    async with env_client(Settings()) as client:
        assert isinstance(client, MetaStudioClient)


@pytest.mark.parametrize("region", ["mars-1", None])
def test_client_from_settings_raises_config_error(
    monkeypatch: pytest.MonkeyPatch, region: str | None
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    if region:
        monkeypatch.setenv("METASTUDIO_REGION", region)
        monkeypatch.setenv("METASTUDIO_AUTH_TOKEN", "MIItoken")
    with pytest.raises(ConfigError):
        env_client(Settings())


@pytest.mark.parametrize("endpoint", ["metastudio.example.com", "ftp://metastudio.example.com", "http://"])
def test_client_from_settings_rejects_a_non_http_endpoint(
    monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setenv("METASTUDIO_AUTH_TOKEN", "MIItoken")
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", PROJECT)
    monkeypatch.setenv("METASTUDIO_ENDPOINT", endpoint)
    # Refused when the settings are read, before any client exists.
    with pytest.raises(ConfigError) as caught:
        env_client(load_settings())
    assert caught.value.problems[0].startswith(f"METASTUDIO_ENDPOINT={endpoint!r} is not a URL with a scheme")


def test_ap_southeast_3_needs_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # MetaStudioRegion (SDK 3.1.219) knows cn-north-4 and cn-east-3 only.
    assert sorted(REGION_ENDPOINTS) == ["cn-east-3", "cn-north-4"]
    monkeypatch.setenv("METASTUDIO_REGION", "ap-southeast-3")
    [problem] = endpoint_problems(Settings())
    assert "METASTUDIO_ENDPOINT" in problem and "HUAWEICLOUD_SDK_REGION_METASTUDIO_AP_SOUTHEAST_3" in problem


def test_regions_file_as_the_sdk_reads_it(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    from huaweicloudsdkcore.region.cache import ProfileRegionCache

    path = clean_env / ".huaweicloud" / "regions.yaml"
    write_profile(
        path,
        "metastudio:\n"
        "  - id: ap-southeast-3\n    endpoint: https://ms.example.com/\n"
        "  - id: cn-south-1\n    endpoints: [https://a.example.com, https://b.example.com]\n"
        "    endpoint: https://c.example.com\n"
        "iam:\n  - id: cn-south-1\n    endpoint: https://not-metastudio.example.com\n",
    )
    sdk_view = ProfileRegionCache._resolve_profile()
    for region in ("ap-southeast-3", "cn-south-1"):
        monkeypatch.setenv("METASTUDIO_REGION", region)
        settings = Settings()
        assert endpoint_problems(settings) == []
        # The SDK's first endpoint is the one we use.
        assert environment_endpoints(settings).metastudio == sdk_view["METASTUDIO" + region].endpoints[
            0
        ].rstrip("/")
    assert environment_endpoints(settings).metastudio == "https://a.example.com"
    # Named elsewhere through the SDK's variable; the environment override still wins over the file.
    moved = write_profile(
        clean_env / "other.yaml", "metastudio:\n  - id: cn-south-1\n    endpoint: https://d.example.com\n"
    )
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGIONS_FILE", str(moved))
    assert environment_endpoints(Settings()).metastudio == "https://d.example.com"
    monkeypatch.setenv(
        "HUAWEICLOUD_SDK_REGION_METASTUDIO_CN_SOUTH_1", "https://e.example.com,https://f.example.com"
    )
    assert environment_endpoints(Settings()).metastudio == "https://e.example.com"


def test_bad_regions_file_names_the_variable(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    bad = write_profile(clean_env / "bad.yaml", "metastudio: [unclosed\n")
    monkeypatch.setenv("HUAWEICLOUD_SDK_REGIONS_FILE", str(bad))
    monkeypatch.setenv("METASTUDIO_REGION", "cn-south-1")
    [problem] = endpoint_problems(Settings())
    assert problem.startswith("HUAWEICLOUD_SDK_REGIONS_FILE=")


def test_sdk_iam_endpoint_variable_and_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METASTUDIO_IAM_ENDPOINT", "https://alias.example.com")
    assert environment_endpoints(Settings()).iam == "https://alias.example.com"
    monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", "https://sdk.example.com/")
    assert environment_endpoints(Settings()).iam == "https://sdk.example.com"


def test_dotenv_in_the_working_folder_is_read_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".env").write_text(
        "# comment\nTASKBOT_POLL_SECONDS=42\nPORT=4000\nHOST=127.0.0.1\nUNRELATED_THING=ignored\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PORT", "5000")
    settings = load_settings()
    assert (settings.poll_seconds, settings.host, settings.port) == (42.0, "127.0.0.1", 5000)
    monkeypatch.chdir(tmp_path)  # no .env here
    assert (load_settings().poll_seconds, load_settings().host) == (10.0, "0.0.0.0")


def test_a_blank_line_of_env_example_counts_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A copy of .env.example with the Slack lines left blank: "not set", not "not a bot token".
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=\nSLACK_SIGNING_SECRET=\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.slack_bot_token is None and settings.slack_signing_secret is None
    assert any(problem.startswith("SLACK_BOT_TOKEN is not set") for problem in settings.slack_problems())


def test_a_bad_value_in_dotenv_is_named_like_one_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("PORT=eighty\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.problems[0].startswith("PORT='eighty'")
    assert "docs/configuration.md" in caught.value.render()


def test_tests_run_outside_the_clone_so_its_dotenv_stays_out(outside_the_clone: Path) -> None:
    clone = Path(__file__).resolve().parent.parent
    assert Path.cwd() == outside_the_clone and Path.cwd() != clone
    assert not (Path.cwd() / ".env").exists()
