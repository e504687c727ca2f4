"""bot.db.crypto: Fernet round trips, key rotation, and errors that never carry a key or a secret."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from bot.config import ConfigError
from bot.db.crypto import ENCRYPTION_KEY_ENV, SecretBox, SecretUnreadable

SECRET = "sk-Very$ecret/Value%with unicode ✓"


def test_round_trip_and_ciphertext_hides_the_plaintext() -> None:
    box = SecretBox([SecretBox.generate_key()])
    token = box.encrypt(SECRET)

    assert SECRET not in token and "Very" not in token
    assert box.encrypt(SECRET) != token  # fresh IV each time: equal secrets are not recognisable
    assert box.decrypt(token) == SECRET
    assert box.decrypt(box.encrypt("")) == ""


def test_old_data_stays_readable_after_a_new_primary_key_and_rotate_lets_the_old_key_go() -> None:
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    old_token = SecretBox([old_key]).encrypt(SECRET)

    both = SecretBox([new_key, old_key])
    assert both.decrypt(old_token) == SECRET
    with pytest.raises(SecretUnreadable):
        SecretBox([old_key]).decrypt(both.encrypt(SECRET))  # the first key encrypts

    rotated = both.rotate(old_token)
    only_new = SecretBox([new_key])
    assert only_new.decrypt(rotated) == SECRET
    with pytest.raises(SecretUnreadable):
        only_new.decrypt(old_token)


def test_from_setting_reads_comma_separated_keys_newest_first() -> None:
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    box = SecretBox.from_setting(f" {new_key} , {old_key},")

    assert box.decrypt(SecretBox([old_key]).encrypt(SECRET)) == SECRET
    assert SecretBox([new_key]).decrypt(box.encrypt(SECRET)) == SECRET
    assert new_key not in repr(box) and repr(box) == "SecretBox(keys=2)"


@pytest.mark.parametrize("value", [None, "", " , "])
def test_missing_key_is_a_config_error_naming_the_variable(value: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        SecretBox.from_setting(value)
    assert ENCRYPTION_KEY_ENV in str(caught.value) and "not set" in str(caught.value)


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-key-at-all-but-long-enough-to-look-secret",
        "c2hvcnQ=",  # valid base64, wrong length
        Fernet.generate_key().decode()[:-2] + "!!",
    ],
    # Ids that do not depend on the random key, so every xdist worker collects the same tests.
    ids=["not-base64", "wrong-length", "bad-characters"],
)
def test_invalid_key_is_a_config_error_that_never_echoes_the_value(bad: str) -> None:
    good = SecretBox.generate_key()
    with pytest.raises(ConfigError) as caught:
        SecretBox.from_setting(f"{good},{bad}")
    message = str(caught.value) + caught.value.render()
    assert ENCRYPTION_KEY_ENV in message and "key 2 of 2" in message
    assert bad not in message and good not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_tampered_or_foreign_token_raises_secret_unreadable_without_secrets() -> None:
    key = SecretBox.generate_key()
    box = SecretBox([key])
    token = box.encrypt(SECRET)
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]

    for bad in (tampered, "garbage", "", "ünïcode", SecretBox([SecretBox.generate_key()]).encrypt(SECRET)):
        with pytest.raises(SecretUnreadable) as caught:
            box.decrypt(bad)
        assert ENCRYPTION_KEY_ENV in str(caught.value)
        assert key not in str(caught.value) and SECRET not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(SecretUnreadable):
        box.rotate(tampered)


def test_constructor_rejects_empty_and_bare_string() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        SecretBox([])
    with pytest.raises(TypeError):
        SecretBox(SecretBox.generate_key())
