"""Encryption of secrets at rest (webhook secrets, secrets inside stored JSON): Fernet.

Keys come from ``WEBHOOK_SECRET_KEYS`` (newest first; older keys still decrypt, so keys can be rotated);
without it one key is derived from ``SECRET_KEY`` with HKDF.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _derive(key_material: str) -> bytes:
    # The info label predates other uses of these keys; it stays, or stored secrets could not be read.
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
        raise ImproperlyConfigured("WEBHOOK_SECRET_KEYS or DJANGO_SECRET_KEY is needed to store secrets")
    return _fernet_for_secret_key(settings.SECRET_KEY)  # derived once, not per secret decrypted


def secret_encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured("a stored secret cannot be decrypted with the configured keys") from None
