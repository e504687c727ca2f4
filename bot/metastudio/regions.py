"""Where MetaStudio and IAM live for a region, resolved the way ``huaweicloudsdkcore`` resolves it.

Invariants (mirroring ``huaweicloudsdkcore.region.provider.RegionProviderChain`` and
``huaweicloudsdkmetastudio.v1.region.metastudio_region.MetaStudioRegion.value_of``, 3.1.219):

1. ``HUAWEICLOUD_SDK_REGION_METASTUDIO_<REGION>`` (region id upper-cased, ``-`` as ``_``):
   comma-separated endpoints; the first is used.
2. The regions file ``HUAWEICLOUD_SDK_REGIONS_FILE`` (default ``~/.huaweicloud/regions.yaml``),
   shaped ``metastudio: [{id: <region>, endpoints: [...], endpoint: ...}]``. As in the SDK, the
   ``endpoints`` list comes first and ``endpoint`` is appended after it; service names match
   case-insensitively.
3. The SDK's static table: ``cn-north-4`` and ``cn-east-3`` only (the official endpoint table
   agrees). Any other region needs ``METASTUDIO_ENDPOINT`` or one of the two overrides above.

The operator's own connection (single-workspace mode, ``taskbot check``) is ``operator_endpoints``:
``METASTUDIO_ENDPOINT`` first, then the chain above; ``endpoint_problems`` says why it fails.
A workspace's saved connection is ``region_endpoints``: its own endpoint, else the region's.

IAM: ``iam_url`` is the one rule, for the operator's connection (``operator_endpoints``) and for a
workspace's connection (``region_endpoints``). It follows
``huaweicloudsdkcore.auth.internal.IamHelper.get_iam_endpoint``: a profile's ``iam_endpoint`` first
(``BasicCredentials.iam_endpoint`` wins over the environment in the SDK, see ``credentials.KeyPair``),
then the operator's ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, then ``iam.<region>.myhuaweicloud.com`` for
regions the SDK's IAM table knows, else the SDK's default ``https://iam.myhuaweicloud.com``. The
SDK derives IAM from the region id only, never from the service endpoint; an official
``metastudio.<region>.myhuaweicloud.com`` endpoint names its region, so it gets that region's
IAM by the same table. Any other endpoint (a proxy, the simulator) serves IAM too: taskbot's rule,
so one override points every call at one place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import yaml

from bot.metastudio.endpoints import BadEndpointURL, parse_endpoint

SERVICE = "METASTUDIO"
SDK_REGION_ENV_PREFIX = "HUAWEICLOUD_SDK_REGION_METASTUDIO_"
REGIONS_FILE_ENV = "HUAWEICLOUD_SDK_REGIONS_FILE"
IAM_ENDPOINT_ENV = "HUAWEICLOUD_SDK_IAM_ENDPOINT"

# MetaStudioRegion.static_fields, 3.1.219, and no more: a region neither the SDK nor Huawei's
# endpoint table lists (ap-southeast-3, say) needs METASTUDIO_ENDPOINT.
REGION_ENDPOINTS: dict[str, str] = {
    "cn-north-4": "https://metastudio.cn-north-4.myhuaweicloud.com",
    "cn-east-3": "https://metastudio.cn-east-3.myhuaweicloud.com",
}

# huaweicloudsdkcore.auth.endpoint's IAM table (3.1.219): these regions have a regional IAM host.
IAM_REGIONS: frozenset[str] = frozenset(
    {
        "cn-north-2", "cn-north-4", "cn-north-1", "cn-east-2", "cn-east-3", "cn-south-1", "cn-south-2",
        "cn-southwest-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "af-south-1",
        "sa-brazil-1", "la-south-2", "na-mexico-1", "la-north-2", "cn-north-9", "eu-west-0",
        "my-kualalumpur-1", "ru-moscow-1", "me-east-1", "ap-southeast-4", "ae-ad-1", "cn-east-4",
        "cn-east-5", "tr-west-1", "cn-north-12",
    }
)  # fmt: skip
DEFAULT_IAM_ENDPOINT = "https://iam.myhuaweicloud.com"
OFFICIAL_DOMAIN = "myhuaweicloud.com"
# A region id as Huawei spells them (cn-north-4, my-kualalumpur-1): one DNS label.
REGION_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class Endpoints(NamedTuple):
    """Where a connection's MetaStudio calls and IAM calls go."""

    metastudio: str
    iam: str


class NoEndpoint(ValueError):
    """The operator's connection has no MetaStudio endpoint; the text names what to set."""


class RegionOverrideError(NoEndpoint):
    """The SDK's region overrides are unusable: the regions file is not the YAML shape the SDK
    reads, or an endpoint there or in the variable is not an endpoint URL."""


def env_override_name(region: str) -> str:
    return SDK_REGION_ENV_PREFIX + region.replace("-", "_").upper()


def regions_file_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    named = env.get(REGIONS_FILE_ENV)
    return Path(named) if named else Path.home() / ".huaweicloud" / "regions.yaml"


def read_regions_file(path: Path) -> dict[str, list[str]]:
    """MetaStudio's ``{region: [endpoints]}`` from a regions file; {} when the file is absent."""
    if not path.is_file():
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RegionOverrideError(
            f"{REGIONS_FILE_ENV}={str(path)!r} is not readable YAML ({type(exc).__name__})"
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise RegionOverrideError(f"{REGIONS_FILE_ENV}={str(path)!r} is not a mapping of service to regions")
    result: dict[str, list[str]] = {}
    for service, regions in document.items():
        if str(service).upper() != SERVICE:
            continue
        if not isinstance(regions, list):
            raise RegionOverrideError(f"{REGIONS_FILE_ENV}={str(path)!r}: 'metastudio' must be a list")
        for entry in regions:
            if not isinstance(entry, dict) or not entry.get("id"):
                continue
            endpoints = [str(e) for e in entry.get("endpoints") or [] if e]
            if entry.get("endpoint"):
                endpoints.append(str(entry["endpoint"]))
            if endpoints:
                result[str(entry["id"])] = endpoints
    return result


def override_endpoint(region: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The SDK's own overrides for the region (environment, then regions file), or None."""
    env = os.environ if environ is None else environ
    name = env_override_name(region)
    from_env = env.get(name)
    if from_env:
        first = from_env.split(",")[0].strip()
        if first:
            return _checked(first, f"{name}={first!r}")
    path = regions_file_path(env)
    from_file = read_regions_file(path).get(region)
    first = from_file[0].strip() if from_file else ""
    if first:
        return _checked(first, f"{REGIONS_FILE_ENV}={str(path)!r}: the {region} endpoint {first!r}")
    return None


def _checked(endpoint: str, named: str) -> str:
    """The endpoint without trailing slashes; ``named`` says where it came from, for the operator."""
    try:
        parse_endpoint(endpoint)
    except BadEndpointURL as exc:
        raise RegionOverrideError(f"{named} is not an http(s) URL ({exc})") from None
    return endpoint.rstrip("/")


def operator_endpoints(
    region: str,
    endpoint: str | None = None,
    *,
    iam_endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Endpoints:
    """The operator's connection: ``endpoint`` (METASTUDIO_ENDPOINT), else the SDK's overrides, else
    its static table; IAM by ``iam_url`` (``iam_endpoint``: HUAWEICLOUD_SDK_IAM_ENDPOINT).

    Raises ``NoEndpoint`` for a region that needs METASTUDIO_ENDPOINT or unusable overrides.
    """
    override = endpoint.rstrip("/") if endpoint else override_endpoint(region, environ)
    metastudio = override or REGION_ENDPOINTS.get(region)
    if metastudio is None:
        known = ", ".join(sorted(REGION_ENDPOINTS))
        raise NoEndpoint(
            f"METASTUDIO_REGION={region!r} is not a region the MetaStudio SDK knows ({known}); "
            f"set METASTUDIO_ENDPOINT, {env_override_name(region)} or a {REGIONS_FILE_ENV} entry"
        )
    return Endpoints(metastudio, iam_url(region, override, named=iam_endpoint))


def endpoint_problems(
    region: str, endpoint: str | None = None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Why ``operator_endpoints`` fails for these values: [] when it does not."""
    try:
        operator_endpoints(region, endpoint, environ=environ)
    except NoEndpoint as exc:
        return [str(exc)]
    return []


def official_region(endpoint: str) -> str | None:
    """The region of an official ``metastudio.<region>.myhuaweicloud.com`` endpoint, else None."""
    try:
        host = parse_endpoint(endpoint).host
    except BadEndpointURL:
        return None
    labels = host.split(".")
    if len(labels) == 4 and host.endswith("." + OFFICIAL_DOMAIN):
        return labels[1] if REGION_ID.fullmatch(labels[1]) else None
    return None


def iam_url(region: str, endpoint: str | None = None, *, named: str | None = None) -> str:
    """The IAM endpoint for MetaStudio in ``region`` reached at ``endpoint`` (None: the region's own).

    ``named``: the operator's ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, which wins as in the SDK. The rules
    are in the module docstring; a profile's ``iam_endpoint`` wins over all of this in the client.
    """
    if named:
        return named.rstrip("/")
    if endpoint:
        official = official_region(endpoint)
        if official is None:
            return endpoint.rstrip("/")
        region = official
    # IamHelper.get_iam_endpoint: the SDK's IAM table, else its global default.
    return f"https://iam.{region}.{OFFICIAL_DOMAIN}" if region in IAM_REGIONS else DEFAULT_IAM_ENDPOINT


def region_endpoints(region: str, endpoint: str | None) -> Endpoints:
    """A workspace connection's endpoints: its override, else the region's official host.

    A stored region outside ``REGION_ENDPOINTS`` gets Huawei's host naming, so a saved connection
    works whatever the table lists; the modal offers only listed regions for new ones.
    """
    if endpoint:
        metastudio = endpoint.rstrip("/")
    else:
        metastudio = REGION_ENDPOINTS.get(region, f"https://metastudio.{region}.{OFFICIAL_DOMAIN}")
    return Endpoints(metastudio, iam_url(region, endpoint))
