"""Secrets at rest: Fernet encryption, a masked wrapper, and generation of Standard Webhooks secrets.

Keys come from ``WEBHOOK_SECRET_KEYS`` (newest first; older keys still decrypt, so keys can be rotated);
without it one key is derived from ``SECRET_KEY`` with HKDF. A decrypted secret is handed around as a
``SecretValue``, whose ``str``/``repr``/format are masked: printing or logging one by mistake shows
``********``. Code that signs calls ``.reveal()``.
"""

import base64
import functools
import secrets as _secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from orchestrator.redaction import MASK

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


def _derive(key_material: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"orchestrator.webhooks.secrets.v1")
    return base64.urlsafe_b64encode(hkdf.derive(key_material.encode()))


@functools.cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for key in keys:
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            fernets.append(Fernet(_derive(key)))  # not a Fernet key: treat as key material
    return MultiFernet(fernets)


@functools.cache
def _fernet_for_secret_key(secret_key: str) -> MultiFernet:
    return _fernet_for((_derive(secret_key).decode(),))


def _fernet() -> MultiFernet:
    keys = tuple(k for k in getattr(settings, "WEBHOOK_SECRET_KEYS", []) if k)
    if keys:
        return _fernet_for(keys)
    if not settings.SECRET_KEY:
        raise ImproperlyConfigured("WEBHOOK_SECRET_KEYS or DJANGO_SECRET_KEY is needed to store webhook secrets")
    return _fernet_for_secret_key(settings.SECRET_KEY)  # derived once, not per secret decrypted


def secret_encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured("a stored webhook secret cannot be decrypted with the configured keys") from None


def secret_generate() -> str:
    """A new Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()
