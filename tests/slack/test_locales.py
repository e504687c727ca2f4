"""The users.info locale resolver, against the Slack stand-in on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.devtools.slack_standin import DEMO_BOT_TOKEN, DEMO_TEAM_ID, SlackStandIn
from bot.servers import serve_asgi
from bot.slack.locales import LocaleResolver
from tests.support.clock import FakeClock

TEAM = DEMO_TEAM_ID


# --- the resolver against the stand-in -----------------------------------------------------------


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    stand_in = SlackStandIn()
    stand_in.locales.update({"UZH": "zh-CN", "UEN": "en-US", "UTW": "zh-TW", "UZHONLY": "zh"})
    async with serve_asgi(stand_in.app) as url:
        stand_in.base_url = url
        yield stand_in


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    return AsyncWebClient(token=DEMO_BOT_TOKEN, base_url=slack.api_url, timeout=5)


@pytest.mark.parametrize(
    ("user", "locale"), [("UZH", "zh-CN"), ("UZHONLY", "zh-CN"), ("UEN", "en"), ("UTW", "en")]
)
async def test_users_locale_decides_the_catalog(
    slack: SlackStandIn, client: AsyncWebClient, user: str, locale: str
) -> None:
    resolver = LocaleResolver()
    assert await resolver.resolve(client, TEAM, user, fallback="zh-CN" if locale == "en" else None) == locale
    (call,) = slack.calls_to("users.info")
    assert call.params["user"] == user
    assert call.params["include_locale"] in ("true", "1", True)


async def test_a_known_user_is_not_asked_again(slack: SlackStandIn, client: AsyncWebClient) -> None:
    resolver = LocaleResolver()
    assert await resolver.resolve(client, TEAM, "UZH") == "zh-CN"
    assert await resolver.resolve(client, TEAM, "UZH") == "zh-CN"
    assert resolver.locale_for(TEAM, "UZH") == "zh-CN"
    assert len(slack.calls_to("users.info")) == 1


async def test_cached_and_locale_for_never_call_slack(slack: SlackStandIn) -> None:
    resolver = LocaleResolver()
    assert resolver.cached(TEAM, "UZH") is None
    assert resolver.locale_for(TEAM, "UZH") == "en"
    assert resolver.locale_for(TEAM, "UZH", fallback="zh-CN") == "zh-CN"
    assert slack.calls_to("users.info") == []


async def test_concurrent_lookups_of_one_user_share_one_call(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.users_info_delay = 0.2
    resolver = LocaleResolver()
    answers = await asyncio.gather(
        *(resolver.resolve(client, TEAM, "UZH") for _ in range(20)),
        *(resolver.resolve(client, TEAM, "UEN") for _ in range(5)),
    )
    assert answers == ["zh-CN"] * 20 + ["en"] * 5
    assert sorted(call.params["user"] for call in slack.calls_to("users.info")) == ["UEN", "UZH"]


async def test_prefetch_learns_in_the_background(slack: SlackStandIn, client: AsyncWebClient) -> None:
    slack.users_info_delay = 0.1
    resolver = LocaleResolver()
    resolver.prefetch(client, TEAM, "UZH")
    resolver.prefetch(client, TEAM, "UZH")  # already underway: no second call
    assert resolver.cached(TEAM, "UZH") is None  # prefetch returned before Slack answered
    assert await resolver.resolve(client, TEAM, "UZH") == "zh-CN"
    resolver.prefetch(client, TEAM, "UZH")  # known: nothing to do
    await asyncio.sleep(0)
    assert len(slack.calls_to("users.info")) == 1


async def test_a_failure_falls_back_to_the_workspace_then_english_and_is_retried_later(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    clock = FakeClock(1000.0)
    resolver = LocaleResolver(failure_ttl=300, clock=clock)
    slack.fail_next("users.info", error="ratelimited")
    assert await resolver.resolve(client, TEAM, "UZH", fallback="zh-CN") == "zh-CN"
    assert resolver.locale_for(TEAM, "UEN") == "en"
    # The failure is remembered: the next command does not hit a failing Slack again.
    assert await resolver.resolve(client, TEAM, "UZH") == "en"
    assert await resolver.resolve(client, TEAM, "UZH", fallback="zh") == "zh-CN"
    assert len(slack.calls_to("users.info")) == 1
    clock.now += 301
    assert await resolver.resolve(client, TEAM, "UZH") == "zh-CN"
    assert len(slack.calls_to("users.info")) == 2


async def test_an_unknown_user_or_a_missing_locale_falls_back(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    resolver = LocaleResolver()
    assert await resolver.resolve(client, TEAM, "UNOBODY", fallback="zh-CN") == "zh-CN"
    slack.users["UPLAIN"] = {"is_admin": False}
    del slack.locales["UEN"]
    assert await resolver.resolve(client, TEAM, "UEN", fallback="zh-CN") == "zh-CN"


async def test_a_slow_slack_is_cut_off_at_the_deadline(slack: SlackStandIn, client: AsyncWebClient) -> None:
    slack.users_info_delay = 1.5
    resolver = LocaleResolver(timeout=0.2)
    # The user reads Chinese; only the deadline can make the answer the fallback.
    assert await resolver.resolve(client, TEAM, "UZH", fallback="en") == "en"
    assert resolver.cached(TEAM, "UZH") == ""


async def test_one_workspace_gets_at_most_per_team_lookups_at_once(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.users_info_delay = 0.1
    users = [f"UZH{i}" for i in range(8)]
    slack.locales.update(dict.fromkeys(users, "zh-CN"))
    resolver = LocaleResolver(per_team=2)
    assert await asyncio.gather(*(resolver.resolve(client, TEAM, u) for u in users)) == ["zh-CN"] * 8
    assert slack.users_info_peak == 2
    assert resolver._slots == {}  # the workspace's semaphore goes once idle


async def test_remember_and_aclose(slack: SlackStandIn, client: AsyncWebClient) -> None:
    resolver = LocaleResolver()
    assert resolver.remember(TEAM, "UX", "zh-HK") == "en"
    assert resolver.remember(TEAM, "UY", "zh") == "zh-CN"
    assert resolver.locale_for(TEAM, "UY") == "zh-CN"
    slack.users_info_delay = 1.5
    resolver.prefetch(client, TEAM, "UZH")
    await resolver.aclose()
    assert resolver._inflight == {}
