"""What a Slack user is told when MetaStudio fails: every error class and every endpoint refusal
has a sentence in every catalog, and text from outside is shown inert."""

from __future__ import annotations

import pytest

from bot import messages
from bot.messages import CATALOGS
from bot.metastudio import errors
from bot.metastudio.endpoints import Refusal
from bot.slack.cloud_errors import ERROR_KEYS, MAX_QUOTED, REFUSAL_KEYS, error_key, error_text, refusal_text

LOCALES = list(CATALOGS)
HOSTILE = "<!channel> <@U0123> `rm -rf` &amp; \x00\x1b[31m\u202e\n\tsecond line " + "y" * 400


def _family(cls: type[errors.MetaStudioError]) -> set[type[errors.MetaStudioError]]:
    found = {cls}
    for sub in cls.__subclasses__():
        found |= _family(sub)
    return found


# Only the module's own classes: a test's throw-away subclass is not part of the family.
CLASSES = sorted(
    (cls for cls in _family(errors.MetaStudioError) if cls.__module__ == errors.__name__),
    key=lambda cls: cls.__name__,
)


def _quoted(sentence: str) -> str:
    """The server's message inside “…” (both catalogs quote it so)."""
    return sentence.partition("“")[2].rpartition("”")[0]


# --- every class and every refusal has a sentence ------------------------------------------------


def test_the_walk_sees_every_error_class_the_module_defines() -> None:
    defined = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.MetaStudioError)
    }
    assert set(CLASSES) == defined
    assert len(CLASSES) == 16


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_has_its_own_sentence_in_every_catalog(cls: type[errors.MetaStudioError]) -> None:
    if cls is errors.EndpointNotAllowed:
        # Its refusal decides, never the base class's "something went wrong".
        assert cls not in ERROR_KEYS
        keys = {error_key(errors.EndpointNotAllowed(refusal=refusal)) for refusal in Refusal}
        assert keys == set(REFUSAL_KEYS.values())
    else:
        # The MRO lookup would hide a missing entry behind the parent's sentence: ask for the class's own.
        assert cls in ERROR_KEYS, f"{cls.__name__} has no sentence of its own"
        keys = {ERROR_KEYS[cls]}
        assert error_key(cls()) == ERROR_KEYS[cls]
    for locale, catalog in CATALOGS.items():
        assert sorted(keys - set(catalog)) == [], locale


def test_no_two_error_classes_say_the_same_thing() -> None:
    assert len(set(ERROR_KEYS.values())) == len(ERROR_KEYS)


@pytest.mark.parametrize("refusal", list(Refusal), ids=lambda refusal: refusal.name)
def test_every_refusal_has_a_sentence_in_every_catalog(refusal: Refusal) -> None:
    assert refusal in REFUSAL_KEYS
    for locale, catalog in CATALOGS.items():
        assert REFUSAL_KEYS[refusal] in catalog, locale
        assert refusal_text(refusal, locale) == catalog[REFUSAL_KEYS[refusal]]
        assert error_text(errors.EndpointNotAllowed(refusal=refusal), locale) == refusal_text(refusal, locale)


def test_a_subclass_says_what_its_parent_says() -> None:
    class SlowDown(errors.Throttled):
        pass

    class Inward(errors.EndpointNotAllowed):
        pass

    assert error_text(SlowDown(), "zh-CN") == messages.text("error_throttled", "zh-CN")
    assert error_text(Inward(refusal=Refusal.ADDRESS)) == messages.text("connection_error_endpoint_address")


def test_the_default_is_english_and_a_slack_tag_picks_its_catalog() -> None:
    exc = errors.TimedOut()
    assert error_text(exc) == messages.EN["error_timeout"]
    assert error_text(exc, "zh_CN") == CATALOGS["zh-CN"]["error_timeout"] != error_text(exc)


# --- MetaStudio's own words -----------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_metastudio_words_are_quoted_inert(locale: str) -> None:
    exc = errors.TaskNotFound(
        status_code=400,
        error_code="MSS.000000003`<!here>\n",
        request_id="req-1 <!everyone>",
        server_message=HOSTILE,
    )
    sentence = error_text(exc, locale)
    own = messages.text("error_not_found", locale)
    assert sentence.startswith(own + " ")
    said = sentence.removeprefix(own + " ")
    for raw in ("<!channel>", "<@U0123>", "<!here>", "<!everyone>", "\x00", "\x1b", "\u202e", "\n", "\t"):
        assert raw not in said, repr(raw)
    assert "&lt;!channel&gt; &lt;@U0123&gt; ˋrm -rfˋ &amp;amp; [31m second line y" in said
    assert "&lt;!here&gt;" in said and "&lt;!everyone&gt;" in said
    # Only the catalog's own code spans: no backtick from the server opens or closes one.
    template = messages.text("error_metastudio_said_request", locale, code="c", message="m", request_id="r")
    assert said.count("`") == template.count("`")
    message = _quoted(said)
    assert message.endswith("…")
    # The cap holds for what is sent, escapes included, and no cut splits an escape.
    assert len(message) == MAX_QUOTED and message.endswith("y…")


def test_without_a_request_id_none_is_quoted() -> None:
    exc = errors.InvalidParameter(error_code="MSS.000000003", server_message="bad  \n limit")
    assert error_text(exc) == " ".join(
        [
            messages.text("error_mss_invalid_parameter"),
            messages.text("error_metastudio_said", code="MSS.000000003", message="bad limit"),
        ]
    )


@pytest.mark.parametrize(
    "exc",
    [
        errors.PermissionDenied(status_code=403, server_message="<!channel>"),
        errors.PermissionDenied(status_code=403, error_code="APIGW.0301"),
    ],
    ids=["message-without-code", "code-without-message"],
)
def test_half_of_metastudio_s_words_are_not_quoted(exc: errors.MetaStudioError) -> None:
    assert error_text(exc) == messages.text("error_forbidden")


# --- what someone typed -----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
def test_the_invalid_task_id_echo_is_inert(locale: str) -> None:
    typed = "<!channel> `x` \x07\u202e&" + "y" * 100
    sentence = error_text(errors.InvalidTaskId("not a task id", task_id=typed), locale)
    assert "<!channel>" not in sentence and "&lt;!channel&gt;" in sentence
    assert "`x`" not in sentence and "ˋxˋ" in sentence
    assert "\x07" not in sentence and "\u202e" not in sentence and "{task_id}" not in sentence
    assert "&amp;y" in sentence and "y" * 40 not in sentence and "y…`" in sentence
    template = messages.text("error_invalid_task_id", locale, task_id="?")
    assert sentence.count("`") == template.count("`")
    assert error_text(errors.InvalidTaskId(task_id="\x00"), locale) == template


@pytest.mark.parametrize("locale", LOCALES)
def test_the_region_is_named_inert_and_without_breaking_its_code_span(locale: str) -> None:
    said = error_text(errors.ProjectNotFound(region="cn-north-4`" + "x" * 60), locale)
    assert said == messages.text("error_project_not_found", locale, region="cn-north-4ˋ" + "x" * 28 + "…")
    pinged = error_text(errors.ProjectNotFound(region="<!channel>"), locale)
    assert pinged == messages.text("error_project_not_found", locale, region="&lt;!channel&gt;")
    assert error_text(errors.ProjectNotFound(), locale) == messages.text(
        "error_project_not_found", locale, region="?"
    )
