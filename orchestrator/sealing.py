"""Secrets inside stored JSON documents: encrypted in the database, plain in memory.

Received events and tenants carry secrets in their JSON (the build's ``secret``, ``context`` and
``CLIENT_SECRET``, API keys in environment overrides). ``SealedJSONField`` stores every value under a
secret-named key (``orchestrator.redaction.is_secret_key``) sealed with ``orchestrator.crypto`` and opens it
again when the row is loaded, so code reads plaintext while a database dump, a replica or a backup holds
none. Rows written before read as they are; staff views still mask these keys (``redact``).
``SealedValuesJSONField`` seals every value of an object instead (an endpoint's custom headers).

A sealed string is ``sealed:v1:<token>``; any other JSON value (a number, an object under a key such as
``credentials``) is ``sealed:v1j:<token of its JSON>``, so it comes back with its type. A string that holds
JSON (the ``tenant`` build variable) is walked too: it is stored re-encoded with its secrets sealed when
compact JSON (what JSON.stringify writes) gives the very text back, otherwise sealed whole; either way
it is read back exactly as it was. Every walk uses an explicit stack (``orchestrator.jsonwalk``), so no
nesting depth makes it fail.
"""

import json
import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from orchestrator.crypto import secret_decrypt, secret_encrypt
from orchestrator.jsonwalk import JSON_CONTAINER_STARTS, compact_json, json_container_text, rewrite
from orchestrator.redaction import secrets_replaced

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
    """``value`` with every non-empty value under a secret-named key sealed, also inside strings that hold
    JSON; the very same object when there is nothing to seal (callers use ``is`` to skip work).
    Unchanged containers are shared, not copied: only the path down to a sealed value is new.

    A string holding JSON is re-encoded with its secrets sealed when compact encoding gives the very text
    back (``unseal`` then does too, as JSON.stringify writes it), else it is sealed whole."""
    return secrets_replaced(value, _sealed_secret, whole_text=_sealed)


def _sealed_secret(value: Any) -> Any:
    if value is None or value == "" or _is_sealed(value):
        return value
    return _sealed(value)


def _opened(value: str) -> Any:
    try:
        if value.startswith(SEALED_JSON):
            return json.loads(secret_decrypt(value[len(SEALED_JSON) :]))
        return secret_decrypt(value[len(SEALED) :])
    except ImproperlyConfigured:  # a retired key: keep it sealed (masked in every view) rather than fail
        logger.warning("a sealed value cannot be opened with the configured keys; left sealed")
        return value


def _opened_text(text: str) -> Any:
    if _is_sealed(text):
        return _opened(text)
    if _MARK not in text:
        return text
    parsed = json_container_text(text)  # JSON text with sealed values inside (``_sealed_text``)
    if parsed is None:
        return text
    opened = unseal(parsed)
    return text if opened is parsed else compact_json(opened)


def unseal(value: Any) -> Any:
    """``value`` with every sealed value opened, also inside strings that hold JSON."""
    return rewrite(value, on_string=_opened_text, string_starts=(_MARK, *JSON_CONTAINER_STARTS))


def seal_every_value(value: Any) -> Any:
    """``value`` (an object) with every non-empty value sealed, whatever its key."""
    return rewrite(value, is_secret_key=_any_key, on_secret=_sealed_secret)


def _any_key(key: str) -> bool:
    return True


class SealedJSONField(models.JSONField):
    """A JSONField whose secret-named values are sealed in the database (see the module docstring)."""

    def get_prep_value(self, value: Any) -> Any:
        return super().get_prep_value(self.sealed(value))

    @staticmethod
    def sealed(value: Any) -> Any:
        return seal(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        loaded = super().from_db_value(value, expression, connection)
        if isinstance(value, str) and _MARK not in value:  # the text as stored: most rows seal nothing
            return loaded
        return unseal(loaded)


class SealedValuesJSONField(SealedJSONField):
    """A JSONField holding an object whose every value is sealed in the database, whatever its key: an
    endpoint's custom headers, which exist to carry credentials under names no rule can guess."""

    @staticmethod
    def sealed(value: Any) -> Any:
        return seal_every_value(value)
