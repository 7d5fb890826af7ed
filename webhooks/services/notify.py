"""Notifications on tenant status changes: subscribers, and the control plane when a provisioning failed."""

from typing import Any

from django.utils import timezone

from events.catalogue import DetailType
from events.models import ReceivedEvent
from orchestrator.redaction import redact
from tenants.models import Tenant
from webhooks import payloads
from webhooks.delivery import payload_bytes
from webhooks.models import DeliveryStatus, DeliveryStep, SigningScheme, WebhookDelivery, WebhookEndpoint
from webhooks.selectors import endpoints_for
from webhooks.services.dispatch import delivery_enqueue
from webhooks.services.history import delivery_history_record


def subscriber_data(*, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    data = {
        "tenant": {"id": tenant.pk, "key": tenant.key, "name": tenant.name, "tier": tenant.tier},
        "status": tenant.status,
    }
    data.update({key: value for key, value in extra.items() if value not in (None, "")})
    return redact(data)


def subscriber_delivery_fields(
    *,
    endpoint: WebhookEndpoint,
    tenant: Tenant | None,
    event: ReceivedEvent | None,
    event_type: str,
    payload: dict[str, Any],
    body: str,
) -> dict[str, Any]:
    """The columns of a delivery of ``payload`` (sent as ``body``) to one subscriber endpoint, signed the
    endpoint's way; the caller adds its status and where it stands in a chain."""
    return {
        "tenant": tenant,
        "event": event,
        "step": DeliveryStep.SUBSCRIBER,
        "event_type": event_type,
        "endpoint": endpoint,
        "url": endpoint.url,
        "signing_scheme": endpoint.signing_scheme,
        "body": body,
        "payload": payload,
    }


def subscribers_notify(
    *,
    tenant: Tenant | None,
    event_type: str,
    dedupe_prefix: str,
    data: dict[str, Any],
    event: ReceivedEvent | None = None,
    except_endpoint_id: int | None = None,
) -> list[WebhookDelivery]:
    """One delivery per active endpoint subscribed to ``event_type`` (but ``except_endpoint_id``); sent
    together, in parallel, once the transaction commits."""
    payload = payloads.subscriber_payload(event_type=event_type, at=timezone.now(), data=data)
    body = payload_bytes(payload).decode()
    created = []
    for endpoint in endpoints_for(event_type):
        if endpoint.pk == except_endpoint_id:
            continue
        delivery, was_created = WebhookDelivery.objects.get_or_create(
            dedupe_key=f"{dedupe_prefix}:endpoint:{endpoint.pk}",
            defaults={
                **subscriber_delivery_fields(
                    endpoint=endpoint, tenant=tenant, event=event, event_type=event_type, payload=payload, body=body
                ),
                "status": DeliveryStatus.PENDING,
                "next_attempt_at": timezone.now(),
            },
        )
        if was_created:
            delivery_enqueue(delivery_id=delivery.pk)
            created.append(delivery)
    return created


def control_plane_failure_notify(
    *, tenant: Tenant, detail: dict[str, Any], dedupe_prefix: str, event: ReceivedEvent | None = None
) -> WebhookDelivery:
    """Tell the control plane a provisioning failed (webhook with status 0), signed like the original."""
    url = str(detail.get("API_ENDPOINT") or "").strip()
    payload = payloads.control_plane_webhook_payload(tenant_id=tenant.pk, detail=detail, status=0)
    skip = "" if url else "API_ENDPOINT is not known for this tenant's failed build"
    delivery, created = WebhookDelivery.objects.get_or_create(
        dedupe_key=f"{dedupe_prefix}:step:{DeliveryStep.CONTROL_PLANE_WEBHOOK}",
        defaults={
            "tenant": tenant,
            "event": event,
            "step": DeliveryStep.CONTROL_PLANE_WEBHOOK,
            "event_type": DetailType.TENANT_PROVISIONING_FAILURE,
            "url": url,
            "signing_scheme": SigningScheme.ORIGINAL,
            "signing_secret": str(detail.get("secret") or ""),
            "signing_context": str(detail.get("context") or ""),
            "sign_with_context": True,
            "body": payload_bytes(payload).decode(),
            "payload": redact(payload),
            "status": DeliveryStatus.SKIPPED if skip else DeliveryStatus.PENDING,
            "status_reason": skip,
            "next_attempt_at": None if skip else timezone.now(),
            "finished_at": timezone.now() if skip else None,
        },
    )
    if created and skip:
        delivery_history_record(delivery=delivery, summary=f"skipped ({skip})")
    elif created:
        delivery_enqueue(delivery_id=delivery.pk)
    return delivery
