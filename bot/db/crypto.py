"""Encryption at rest for workspace secrets (Fernet: AES-128-CBC + HMAC-SHA256, authenticated).

``TASKBOT_ENCRYPTION_KEY`` holds one or more Fernet keys, comma-separated, newest first. The
first key encrypts; every key decrypts, so a new key can be put in front, stored secrets
re-encrypted with ``WorkspaceStore.rotate_keys()``, and only then the old key dropped.

Nothing here ever puts a key or a plaintext into an exception message or a ``repr``.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.config import ConfigError

__all__ = ["ENCRYPTION_KEY_ENV", "SecretBox", "SecretUnreadable"]

ENCRYPTION_KEY_ENV = "TASKBOT_ENCRYPTION_KEY"
_GENERATE_HINT = (
    "generate one with: python -c "
    "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: wrong or missing key, or the ciphertext was altered."""

    def __init__(self) -> None:
        super().__init__(
            "a stored secret could not be decrypted: it was encrypted with a key that is not in "
            f"{ENCRYPTION_KEY_ENV}, or it was altered"
        )


class SecretBox:
    """Encrypts and decrypts short secrets (AK/SK, tokens, passwords) as Fernet tokens."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            # A bare string would be iterated character by character.
            raise TypeError("SecretBox takes a sequence of keys, not one string")
        if not keys:
            raise ValueError("SecretBox needs at least one key")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                # ``from None``: the underlying error may carry (part of) the key.
                raise ValueError(
                    f"key {position} of {len(keys)} is not a Fernet key (32 url-safe base64-encoded bytes)"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._key_count = len(fernets)

    @classmethod
    def from_setting(cls, value: str | None) -> SecretBox:
        """The box for ``TASKBOT_ENCRYPTION_KEY``. Raises ``ConfigError`` naming the variable, never its value."""
        keys = [key.strip() for key in (value or "").split(",") if key.strip()]
        if not keys:
            raise ConfigError(
                [f"{ENCRYPTION_KEY_ENV} is not set (it encrypts workspace credentials; {_GENERATE_HINT})"]
            )
        try:
            return cls(keys)
        except ValueError as exc:
            raise ConfigError([f"{ENCRYPTION_KEY_ENV}: {exc}; {_GENERATE_HINT}"]) from None

    def __repr__(self) -> str:
        return f"SecretBox(keys={self._key_count})"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext. Raises ``SecretUnreadable`` when no key fits or the token was altered."""
        try:
            return self._fernet.decrypt(token.encode("utf-8")).decode("utf-8")
        except (InvalidToken, ValueError, TypeError):
            raise SecretUnreadable() from None

    def rotate(self, token: str) -> str:
        """The same secret encrypted with the primary (first) key. Raises ``SecretUnreadable``."""
        try:
            return self._fernet.rotate(token.encode("utf-8")).decode("ascii")
        except (InvalidToken, ValueError, TypeError):
            raise SecretUnreadable() from None

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")
