"""What the data steps of the December 2026 secrets migrations do to stored rows, frozen.

``events/0007``, ``tenants/0005`` and ``webhooks/0004`` seal (or mask, where nothing reads the value back)
secrets that rows written before hold in plain: values under ``context``, secrets inside strings that hold
JSON (the ``tenant`` build variable), endpoints' custom headers, request headers stored on attempts.

A migration must do the same thing whenever it runs, so the rules are copied here as they stood then
instead of imported from the live code (``orchestrator.redaction``, ``orchestrator.sealing``,
``webhooks.delivery``): never change them to follow a later rule, write another migration. Shared with the
live code are only what reads these rows back: the encryption (``orchestrator.crypto``: the configured
keys) and the walk over JSON (``orchestrator.jsonwalk``, no rule of its own). Rows are read as stored text
and written back through an expression, so no model field's code runs either.
"""

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from django.db import models
from django.db.models.functions import Cast

from orchestrator.crypto import secret_encrypt
from orchestrator.jsonwalk import compact_json, json_container_text, rewrite

logger = logging.getLogger(__name__)

_SECRET_NAME = re.compile(
    r"(secret|password|passwd|token|api[-_]?key|authorization|signature|credential|private[-_]?key)|^context$",
    re.IGNORECASE,
)
_SEALED, _SEALED_JSON, _MASK = "sealed:v1:", "sealed:v1j:", "********"
_JSON_STARTS = ("{", "[", " ", "\t", "\n", "\r")
# Request headers the engine sets whose values are not secret; every other value on an attempt is masked.
_PUBLIC_REQUEST_HEADERS = frozenset(
    {"content-type", "user-agent", "bypass-tunnel-reminder", "webhook-id", "webhook-timestamp", "x-timestamp"}
)


def _is_secret_name(key: str) -> bool:
    return bool(_SECRET_NAME.search(key))


def _sealed(value: Any) -> Any:
    if value is None or value == "" or (isinstance(value, str) and value.startswith((_SEALED, _SEALED_JSON))):
        return value
    if isinstance(value, str):
        return _SEALED + secret_encrypt(value)
    return _SEALED_JSON + secret_encrypt(compact_json(value))


def _masked(value: Any) -> Any:
    return value if value is None or value == "" else _MASK


def _secrets_changed(value: Any, on_secret: Callable[[Any], Any], *, seal_whole: bool) -> Any:
    """Values under secret names changed by ``on_secret``, also inside strings that hold JSON (re-encoded
    compactly; with ``seal_whole``, such a string compact JSON would not give back exactly is sealed whole)."""

    def inside_text(text: str) -> str:
        parsed = json_container_text(text)
        changed = None if parsed is None else _secrets_changed(parsed, on_secret, seal_whole=seal_whole)
        if changed is parsed:
            return text
        return _sealed(text) if seal_whole and compact_json(parsed) != text else compact_json(changed)

    return rewrite(
        value, is_secret_key=_is_secret_name, on_secret=on_secret, on_string=inside_text, string_starts=_JSON_STARTS
    )


def seal_secrets(value: Any) -> Any:
    """Values under secret names sealed, also inside strings that hold JSON (as ``orchestrator.sealing``)."""
    return _secrets_changed(value, _sealed, seal_whole=True)


def mask_secrets(value: Any) -> Any:
    """Values under secret names masked, also inside strings that hold JSON (as ``redact``)."""
    return _secrets_changed(value, _masked, seal_whole=False)


def seal_every_value(value: Any) -> Any:
    """An object with every value sealed (an endpoint's custom headers)."""
    return rewrite(value, is_secret_key=lambda _key: True, on_secret=_sealed) if isinstance(value, dict) else value


def mask_build_environment(value: Any) -> Any:
    """``Build.environment`` (``[{"name", "value", "type"}]``): secret-named plain-text values masked, and
    secrets inside values that hold JSON."""
    if not isinstance(value, list):
        return value
    masked = []
    for variable in value:
        if isinstance(variable, dict) and isinstance(variable.get("value"), str):
            secret = variable.get("type", "PLAINTEXT") == "PLAINTEXT" and _is_secret_name(str(variable.get("name")))
            new = _masked(variable["value"]) if secret else mask_secrets(variable["value"])
            if new is not variable["value"]:
                variable = {**variable, "value": new}
        masked.append(variable)
    return value if all(a is b for a, b in zip(masked, value, strict=True)) else masked


def mask_request_headers(value: Any) -> Any:
    """An attempt's request headers: every value masked but those the engine sets that are not secret."""
    if not isinstance(value, dict):
        return value
    masked = {name: v if str(name).lower() in _PUBLIC_REQUEST_HEADERS else _masked(v) for name, v in value.items()}
    return value if masked == value else masked


def models_rewrite(apps: Any, changes: dict[str, dict[str, Callable[[Any], Any]]]) -> dict[str, int]:
    """``_rows_rewrite`` for each ``"app_label.model"`` of ``changes`` (historical models from ``apps``); the rows
    written per model."""
    return {label: _rows_rewrite(apps.get_model(label), columns) for label, columns in changes.items()}


def _rows_rewrite(model: type[models.Model], changes: dict[str, Callable[[Any], Any]], *, batch: int = 500) -> int:
    """Apply ``changes`` (column name -> function of its JSON value) to every row; the rows written.

    A function returns its argument itself when nothing changes; only changed rows are written."""
    texts = {f"{name}_as_stored": Cast(name, models.TextField()) for name in changes}
    rows = model._default_manager.annotate(**texts).values_list("pk", *texts)
    written = 0
    for pk, *stored_texts in rows.iterator(chunk_size=batch):
        updates = {}
        for (name, change), text in zip(changes.items(), stored_texts, strict=True):
            try:
                stored = json.loads(text) if text is not None else None
                changed = change(stored)
                if changed is not stored:
                    updates[name] = Cast(models.Value(json.dumps(changed)), models.JSONField())
            except RecursionError:  # nested too deeply for the JSON encoder: said, and left as it is
                logger.warning("%s %s: %s is nested too deeply to rewrite; left as stored", model.__name__, pk, name)
        if updates:
            model._default_manager.filter(pk=pk).update(**updates)
            written += 1
    return written
