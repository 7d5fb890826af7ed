"""Webhook endpoints (subscribers): create, validate, change, rotate the secret, disable, delete."""

import base64
import binascii
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orchestrator.errors import ApplicationError
from orchestrator.http import OutboundError, OutboundRefused, url_check
from orchestrator.redaction import MASK
from webhooks import circuit
from webhooks.headers import custom_headers_problems
from webhooks.models import (
    SENDABLE_STATUSES,
    DeliveryStatus,
    SigningScheme,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from webhooks.secrets import STANDARD_SECRET_PREFIX, secret_generate

logger = logging.getLogger(__name__)


def url_display(url: str) -> str:
    """A URL for logs and the timeline: no query string or credentials (they may carry tokens)."""
    try:
        parts = urlsplit(url or "")
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    if not parts.scheme:
        return url or ""
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?…" if parts.query else "")


def endpoint_validate(
    *, url: str | None = None, events: list[str] | None = None, custom_headers: dict | None = None
) -> None:
    fields: dict[str, list[str]] = {}
    if url is not None:
        try:
            url_check(url)
        except OutboundRefused as error:
            fields["url"] = [str(error)]
        except OutboundError:
            pass  # not resolvable now; checked again at every send
    if events is not None:
        known = set(WebhookEventType.values)
        unknown = [name for name in events if name not in known]
        if unknown or not events:
            fields["events"] = [
                f"Unknown event types: {', '.join(unknown)}" if unknown else "Choose at least one event."
            ]
    if custom_headers is not None and (problems := custom_headers_problems(custom_headers)):
        fields["custom_headers"] = problems
    if fields:
        raise ApplicationError("The endpoint is invalid.", code="invalid", fields=fields)


def secret_validate(*, secret: str, scheme: str) -> None:
    """Standard Webhooks: ``whsec_`` + strict base64 of 24 to 64 bytes; the original scheme: 16+ characters."""
    if scheme == SigningScheme.STANDARD:
        raw = secret.removeprefix(STANDARD_SECRET_PREFIX)
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not secret.startswith(STANDARD_SECRET_PREFIX) or not 24 <= len(key) <= 64:
            raise ApplicationError(
                "Standard Webhooks secrets look like whsec_<base64 of 24 to 64 bytes>.",
                fields={"secret": ["Must be whsec_ followed by standard base64 of 24 to 64 bytes."]},
            )
    elif len(secret) < 16:
        raise ApplicationError("The secret is too short.", fields={"secret": ["At least 16 characters."]})


def endpoint_create(
    *,
    url: str,
    events: list[str],
    signing_scheme: str = SigningScheme.STANDARD,
    description: str = "",
    custom_headers: dict[str, str] | None = None,
    is_active: bool = True,
    secret: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret (generated unless given), to be shown once."""
    custom_headers = custom_headers_keep_masked(headers=custom_headers or {}, stored={})
    endpoint_validate(url=url, events=events, custom_headers=custom_headers)
    secret = secret or secret_generate()
    secret_validate(secret=secret, scheme=signing_scheme)
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        events=list(dict.fromkeys(events)),
        signing_scheme=signing_scheme,
        description=description,
        custom_headers=custom_headers or {},
        is_active=is_active,
        secret=secret,
    )
    logger.info("webhook endpoint %s created for %s", endpoint.pk, url_display(endpoint.url))
    return endpoint, secret


def custom_headers_keep_masked(*, headers: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """Custom headers as staff sent them, where a value sent masked (``********``, as every view shows it)
    keeps the stored value of that header (names compared case-insensitively). A masked value with
    nothing stored under its name is refused: it would send the mask."""
    stored_by_name = {str(name).lower(): value for name, value in stored.items()}
    kept, missing = {}, []
    for name, value in headers.items():
        if value == MASK:
            if str(name).lower() not in stored_by_name:
                missing.append(str(name))
                continue
            value = stored_by_name[str(name).lower()]
        kept[name] = value
    if missing:
        raise ApplicationError(
            "The endpoint is invalid.",
            code="invalid",
            fields={"custom_headers": [f"{MASK} keeps a stored value, and none is stored for: {', '.join(missing)}"]},
        )
    return kept


ENDPOINT_EDITABLE = ("url", "events", "signing_scheme", "description", "custom_headers", "is_active")


def endpoint_update(*, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change an endpoint's settings (not its secret: see ``endpoint_rotate_secret``)."""
    unknown = set(changes) - set(ENDPOINT_EDITABLE)
    if unknown:
        raise ApplicationError(f"Cannot change: {', '.join(sorted(unknown))}")
    if changes.get("custom_headers") is not None:
        # What is stored, not the instance: a form may already have put the masked values on it.
        stored = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("custom_headers", flat=True).first()
        changes["custom_headers"] = custom_headers_keep_masked(headers=changes["custom_headers"], stored=stored or {})
    endpoint_validate(
        url=changes.get("url"), events=changes.get("events"), custom_headers=changes.get("custom_headers")
    )
    scheme = changes.get("signing_scheme")
    if scheme and scheme != endpoint.signing_scheme:
        try:
            secret_validate(secret=endpoint.secret.reveal(), scheme=scheme)
        except ApplicationError:
            raise ApplicationError(
                "The current secret does not fit the new signing scheme; rotate the secret with the change.",
                fields={"signing_scheme": ["Rotate the secret to switch to this scheme."]},
            ) from None
    # A new address, or turned back on: whatever its circuit learnt about the old state no longer holds.
    try_at_once = changes.get("url", endpoint.url) != endpoint.url or (
        changes.get("is_active") and not endpoint.is_active
    )
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes.get("is_active"):
        endpoint.disabled_reason = ""
        endpoint.disabled_at = None
    # Only these columns: a stale in-memory secret must never overwrite a rotation.
    endpoint.save(update_fields=[*changes, "disabled_reason", "disabled_at", "updated_at"])
    if try_at_once:
        circuit.circuit_close(endpoint=endpoint)
    return endpoint


def endpoints_circuit_close(*, endpoints: Iterable[WebhookEndpoint]) -> int:
    """Close the circuits of these endpoints (staff know the receivers are back): what waited for them is sent
    within seconds. The number of deliveries released."""
    released = 0
    for endpoint in endpoints:
        if circuit.is_tripped(endpoint):
            count = circuit.circuit_close(endpoint=endpoint)
            logger.info("endpoint %s: circuit closed by staff, %s deliveries released", endpoint.pk, count)
            released += count
    return released


def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, secret: str | None = None, signing_scheme: str | None = None
) -> str:
    """Give the endpoint a new secret; the old one keeps signing for WEBHOOK_SECRET_GRACE_SECONDS."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update(of=("self",)).get(pk=endpoint.pk)
        scheme = signing_scheme or endpoint.signing_scheme
        secret = secret or (secret_generate() if scheme == SigningScheme.STANDARD else secret_generate()[6:])
        secret_validate(secret=secret, scheme=scheme)
        now = timezone.now()
        same_scheme = scheme == endpoint.signing_scheme
        endpoint.previous_secret = endpoint.secret if same_scheme else ""
        endpoint.previous_secret_expires_at = (
            now + timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS) if same_scheme else None
        )
        endpoint.secret = secret
        endpoint.signing_scheme = scheme
        endpoint.secret_rotated_at = now
        endpoint.save()
    logger.info("webhook endpoint %s: secret rotated", endpoint.pk)
    return secret


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> WebhookEndpoint:
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_reason=reason[:255], disabled_at=now, updated_at=now
    )
    endpoint.is_active, endpoint.disabled_reason, endpoint.disabled_at = False, reason[:255], now
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint; its deliveries stay (audit) with the endpoint unset; queued ones are cancelled."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(
            endpoint=endpoint, status__in=SENDABLE_STATUSES | {DeliveryStatus.WAITING}
        ).update(status=DeliveryStatus.CANCELLED, status_reason="the endpoint was deleted", finished_at=timezone.now())
        endpoint.delete()
