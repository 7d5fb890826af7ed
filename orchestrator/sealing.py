"""Secrets inside stored JSON documents: encrypted in the database, plain in memory.

Received events and tenants carry secrets in their JSON (the build's ``secret`` and ``CLIENT_SECRET``, API
keys in environment overrides). ``SealedJSONField`` stores every value under a secret-named key
(``orchestrator.redaction.is_secret_key``) sealed with ``orchestrator.crypto`` and opens it again when the
row is loaded, so code reads plaintext while a database dump, a replica or a backup holds none. Rows
written before read as they are; staff views still mask these keys (``redact``).

A sealed string is ``sealed:v1:<token>``; any other JSON value (a number, an object under a key such as
``credentials``) is ``sealed:v1j:<token of its JSON>``, so it comes back with its type.
"""

import json
import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from orchestrator.crypto import secret_decrypt, secret_encrypt
from orchestrator.redaction import is_secret_key

logger = logging.getLogger(__name__)

_MARK = "sealed:v1"  # what every sealed value starts with
SEALED = _MARK + ":"
SEALED_JSON = _MARK + "j:"


def _is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith((SEALED, SEALED_JSON))


def _sealed(value: Any) -> str:
    if isinstance(value, str):
        return SEALED + secret_encrypt(value)
    return SEALED_JSON + secret_encrypt(json.dumps(value, separators=(",", ":")))


def seal(value: Any) -> Any:
    """``value`` with every non-empty value under a secret-named key sealed; the very same object when
    there is nothing to seal (callers use ``is`` to skip work). Unchanged containers are shared, not
    copied: only the path down to a sealed value is new."""
    if isinstance(value, dict):
        return _seal_dict(value)
    if isinstance(value, list):
        return _seal_list(value)
    return value


def _seal_dict(value: dict) -> dict:
    # Every accepted event passes through here: leaves are handled inline, not by a call each.
    sealed = None
    for key, item in value.items():
        if is_secret_key(key if type(key) is str else str(key)):
            if item is None or item == "" or _is_sealed(item):
                continue
            new = _sealed(item)
        elif isinstance(item, dict | list):
            new = seal(item)
        else:
            continue
        if new is not item:
            if sealed is None:
                sealed = dict(value)
            sealed[key] = new
    return value if sealed is None else sealed


def _seal_list(value: list) -> list:
    sealed = None
    for index, item in enumerate(value):
        if isinstance(item, dict | list) and (new := seal(item)) is not item:
            if sealed is None:
                sealed = list(value)
            sealed[index] = new
    return value if sealed is None else sealed


def _opened(value: str) -> Any:
    try:
        if value.startswith(SEALED_JSON):
            return json.loads(secret_decrypt(value[len(SEALED_JSON) :]))
        return secret_decrypt(value[len(SEALED) :])
    except ImproperlyConfigured:  # a retired key: keep it sealed (masked in every view) rather than fail
        logger.warning("a sealed value cannot be opened with the configured keys; left sealed")
        return value


def unseal(value: Any) -> Any:
    """``value`` with every sealed value opened."""
    if isinstance(value, str):
        return _opened(value) if _is_sealed(value) else value
    if isinstance(value, dict):
        return {key: unseal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unseal(item) for item in value]
    return value


class SealedJSONField(models.JSONField):
    """A JSONField whose secret-named values are sealed in the database (see the module docstring)."""

    def get_prep_value(self, value: Any) -> Any:
        return super().get_prep_value(seal(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        loaded = super().from_db_value(value, expression, connection)
        if isinstance(value, str) and _MARK not in value:  # the text as stored: most rows seal nothing
            return loaded
        return unseal(loaded)
