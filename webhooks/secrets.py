"""Webhook secrets: a masked wrapper, encryption at rest, and generation of Standard Webhooks secrets.

Encryption is ``orchestrator.crypto`` (Fernet, keys ``WEBHOOK_SECRET_KEYS``). A decrypted secret is handed
around as a ``SecretValue``, whose ``str``/``repr``/format are masked: printing or logging one by mistake
shows ``********``. Code that signs calls ``.reveal()``.
"""

import base64
import secrets as _secrets

from orchestrator.crypto import secret_decrypt, secret_encrypt
from orchestrator.redaction import MASK

__all__ = ["STANDARD_SECRET_PREFIX", "SecretValue", "secret_decrypt", "secret_encrypt", "secret_generate"]

STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


class SecretValue:
    """A secret that refuses to show itself unless asked (``reveal()``)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretValue):
            return _secrets.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("SecretValue", self._value))

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __repr__(self) -> str:
        return f"SecretValue({MASK if self._value else ''!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __copy__(self) -> "SecretValue":
        return self  # immutable

    def __deepcopy__(self, memo: dict) -> "SecretValue":
        return self

    def __reduce__(self) -> tuple:
        raise TypeError("secrets are not picklable (never put one in a task argument or a cache)")


def secret_generate() -> str:
    """A new Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()
