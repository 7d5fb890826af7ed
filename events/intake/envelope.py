"""Validation of an EventBridge envelope as the intake receives it.

Every failure raises ``ApplicationError`` (400) naming the field with a dotted path, e.g.
``{"detail.tenant.id": ["This field is required."]}``. Unknown top-level and detail fields are kept.
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from rest_framework import serializers

from events import dialects, registry
from events.catalogue import DETAIL_SCHEMAS, DetailType, tenant_id_of
from events.detail_validation import CompiledSchema, compile_schema
from orchestrator.errors import ApplicationError, flatten_errors
from orchestrator.parsers import json_depth_check, json_too_deep

ACCOUNT = re.compile(r"^\d{12}$")
MAX_LENGTHS = {"id": 256, "source": 256, "region": 64, "version": 32, "detail-type": 128}


@dataclass(frozen=True)
class Envelope:
    event_id: str
    detail_type: str
    source: str
    account: str
    region: str
    time: datetime
    resources: list[str]
    detail: dict[str, Any]
    raw: dict[str, Any]
    # ``raw`` as canonical JSON text (sorted keys, no spaces): hashed for duplicate detection, and stored
    # as the envelope column as it is, so the intake encodes the envelope once.
    canonical_json: str
    body_sha256: str
    tenant_id: str


def invalid(fields: dict[str, list[str]], message: str = "The event is invalid.") -> ApplicationError:
    return ApplicationError(message, code="invalid_event", fields=fields)


def supported_detail_types() -> list[str]:
    """The catalogue plus anything an app registered beyond it, less the requests of dialects that are off."""
    return sorted((set(DetailType.ALL) | set(registry.supported())) - dialects.refused_detail_types())


def _reject_constant(value: str) -> None:
    raise ValueError(f"{value} is not valid JSON")


def _finite_float(value: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("number out of range")
    return number


def _check_storable(value: Any, path: str = "") -> None:
    """Strings must be valid Unicode without NUL: PostgreSQL's jsonb stores neither lone surrogates nor NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid({path or "body": ["NUL characters are not allowed."]})
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid({path or "body": ["Invalid Unicode (lone surrogate)."]}) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            _check_storable(key, child)
            _check_storable(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{path}[{index}]")


def body_parse(raw: bytes) -> Any:
    """Parse a request body as strict JSON (no NaN/Infinity, finite numbers) nested at most
    ``JSON_MAX_DEPTH`` levels; 400 otherwise."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise json_too_deep("body") from None
    except (UnicodeDecodeError, ValueError) as error:
        reason = "The body is not valid UTF-8 JSON."
        if isinstance(error, json.JSONDecodeError):
            reason = f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}."
        raise ApplicationError(reason, code="malformed_json") from None
    json_depth_check(data, raw=raw)
    if "\\u" in text:  # only a \u escape can put NUL or a lone surrogate in a string of valid UTF-8 JSON
        _check_storable(data)
    return data


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_sha256(data: Any, *, text: str | None = None) -> str:
    """SHA-256 of ``data`` as canonical JSON (pass ``text`` when it is already encoded)."""
    return hashlib.sha256((canonical_json(data) if text is None else text).encode("utf-8")).hexdigest()


def _string(data: dict[str, Any], name: str, errors: dict[str, list[str]], *, blank: bool = False) -> str:
    if name not in data:
        errors[name] = ["This field is required."]
        return ""
    value = data[name]
    if not isinstance(value, str):
        errors[name] = ["Must be a string."]
        return ""
    if not blank and not value.strip():
        errors[name] = ["May not be blank."]
        return ""
    limit = MAX_LENGTHS.get(name)
    if limit and len(value) > limit:
        errors[name] = [f"At most {limit} characters."]
        return ""
    return value


def _time(data: dict[str, Any], errors: dict[str, list[str]]) -> datetime | None:
    text = _string(data, "time", errors)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        errors["time"] = ["Must be an ISO-8601 timestamp, e.g. 2025-01-15T10:30:00Z."]
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        errors["time"] = ["Must carry a time zone (UTC, e.g. 2025-01-15T10:30:00Z)."]
        return None
    return parsed.astimezone(UTC)


@cache
def detail_validator(schema: type[serializers.Serializer]) -> CompiledSchema:
    """One compiled validator per detail schema (``events.detail_validation``), built on first use.

    Validation keeps no state on the schema instance, so one instance serves every request (a fresh
    serializer per request would deep-copy all its nested fields each time).
    """
    return compile_schema(schema())


def envelope_validate(data: Any, *, path_event_type: str | None = None) -> Envelope:
    """Validate one envelope; returns it with the detail validated by its detail-type's schema."""
    if not isinstance(data, dict):
        raise invalid({"body": ["Must be a JSON object (one EventBridge event)."]})
    errors: dict[str, list[str]] = {}
    version = _string(data, "version", errors)
    event_id = _string(data, "id", errors)
    source = _string(data, "source", errors)
    region = _string(data, "region", errors)
    account = _string(data, "account", errors)
    if account and not ACCOUNT.match(account):
        errors["account"] = ["Must be a 12-digit AWS account id."]
    time = _time(data, errors)

    resources = data.get("resources")
    if "resources" not in data:
        errors["resources"] = ["This field is required."]
    elif not isinstance(resources, list) or not all(isinstance(item, str) for item in resources):
        errors["resources"] = ["Must be an array of strings."]

    supported = supported_detail_types()
    detail_type = _string(data, "detail-type", errors)
    if detail_type and detail_type not in supported:
        errors["detail-type"] = [f"Unsupported detail-type {detail_type!r}; supported: {', '.join(supported)}."]
        detail_type = ""
    if path_event_type is not None and detail_type and path_event_type != detail_type:
        errors["detail-type"] = [f"Must equal the event type in the path ({path_event_type!r})."]
        detail_type = ""

    detail: dict[str, Any] = {}
    raw_detail = data.get("detail")
    if "detail" not in data:
        errors["detail"] = ["This field is required."]
    elif not isinstance(raw_detail, dict):
        errors["detail"] = ["Must be a JSON object."]
    elif detail_type:
        event_type = registry.get(detail_type)
        schema = event_type.schema if event_type else DETAIL_SCHEMAS[detail_type]
        try:
            detail = dict(detail_validator(schema)(raw_detail))
        except serializers.ValidationError as error:
            errors.update(flatten_errors(error.detail, "detail"))

    if errors:
        message = "The event is invalid."
        if "detail-type" in errors and detail_type == "" and "Unsupported" in errors["detail-type"][0]:
            message = f"Unsupported detail-type; supported: {', '.join(supported)}."
        raise invalid(errors, message)
    del version  # validated, kept in the raw envelope
    text = canonical_json(data)
    return Envelope(
        event_id=event_id,
        detail_type=detail_type,
        source=source,
        account=account,
        region=region,
        time=time,  # type: ignore[arg-type]
        resources=list(resources),  # type: ignore[arg-type]
        detail=detail,
        raw=data,
        canonical_json=text,
        body_sha256=canonical_sha256(data, text=text),
        tenant_id=tenant_id_of(detail_type, detail),
    )
