"""Operational events: what the platform team must hear about, as Standard Webhooks to the endpoints that
subscribe to them and as alert mails to the staff who opted in (``orchestrator.alerts``, rate-limited).

Each carries what happened, the reason and an absolute link to the admin page (``ADMIN_BASE_URL``), and no
secret: the data goes through ``redact`` and names objects by id, URL without query string, key and status.
The services emit them where the thing happens (the attempt engine, the circuit breaker's caller, the
status-change receiver, the doctor), in the caller's transaction: the deliveries exist exactly when the change
does, and are sent after commit.

No loops: an event about an endpoint is never sent to that endpoint (it is the one failing, or just disabled),
and a delivery of an operational event that fails for good is mailed only, never announced as another
``delivery.exhausted``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone

from orchestrator.alerts import AlertMail, alert_mail_schedule
from orchestrator.links import admin_url
from orchestrator.redaction import redact
from tenants.models import Tenant
from webhooks.models import OPERATIONAL_EVENT_TYPES, WebhookDelivery, WebhookEndpoint, WebhookEventType
from webhooks.services.endpoints import url_display
from webhooks.services.notify import subscribers_notify


@dataclass(frozen=True)
class OperationalNotice:
    kind: str  # a WebhookEventType of OPERATIONAL_EVENT_TYPES
    subject_key: str  # what it is about ("endpoint:12"): the alert mail's rate-limit unit with ``kind``
    occurrence: str  # unique per occurrence: a second emission of the same one creates no delivery
    title: str
    reason: str
    admin_path: str
    tenant: Tenant | None = None
    except_endpoint_id: int | None = None  # the endpoint it is about: never told about itself
    webhooks: bool = True  # False: mail only (an operational delivery that failed for good)
    details: Mapping[str, Any] = field(default_factory=dict)


def operational_notice_emit(*, notice: OperationalNotice) -> list[WebhookDelivery]:
    """Deliveries to the subscribed endpoints and an alert mail, both sent after the caller's commit."""
    link = admin_url(notice.admin_path)
    data: dict[str, Any] = {
        "title": notice.title,
        "reason": notice.reason,
        "admin_url": link,
        "subject": notice.subject_key,
        **notice.details,
    }
    if notice.tenant is not None:
        tenant = notice.tenant
        data["tenant"] = {"id": tenant.pk, "key": tenant.key, "tier": tenant.tier, "status": tenant.status}
    data = redact(data)
    deliveries: list[WebhookDelivery] = []
    if notice.webhooks:
        deliveries = subscribers_notify(
            tenant=notice.tenant,
            event_type=notice.kind,
            dedupe_prefix=f"ops:{notice.kind}:{notice.occurrence}",
            data=data,
            except_endpoint_id=notice.except_endpoint_id,
        )
    body = f"{notice.title}\n\nReason: {data['reason']}\n\nAdmin: {link}\n\nAt: {timezone.now():%Y-%m-%d %H:%M:%S} UTC"
    alert_mail_schedule(
        mail=AlertMail(
            kind=notice.kind, subject_key=notice.subject_key, title=f"{notice.kind}: {notice.title}", body=body
        )
    )
    return deliveries


def delivery_exhausted_notify(*, delivery: WebhookDelivery) -> list[WebhookDelivery]:
    """A delivery failed for good (out of attempts, refused, or held back past the retry window)."""
    operational = delivery.event_type in OPERATIONAL_EVENT_TYPES
    return operational_notice_emit(
        notice=OperationalNotice(
            kind=WebhookEventType.DELIVERY_EXHAUSTED,
            subject_key=f"endpoint:{delivery.endpoint_id}" if delivery.endpoint_id else f"step:{delivery.step}",
            occurrence=f"delivery:{delivery.pk}:attempt:{delivery.attempts}",
            title=f"{delivery.get_step_display()} {delivery.event_type} to {url_display(delivery.url)} failed for good",
            reason=delivery.status_reason,
            admin_path=reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]),
            tenant=delivery.tenant,
            except_endpoint_id=delivery.endpoint_id,
            webhooks=not operational,
            details={
                "delivery": {
                    "id": delivery.pk,
                    "step": delivery.step,
                    "event_type": delivery.event_type,
                    "url": url_display(delivery.url),
                    "attempts": delivery.attempts,
                    "last_status_code": delivery.last_status_code,
                }
            },
        )
    )


def _endpoint_notice(
    endpoint: WebhookEndpoint, *, kind: str, since: datetime, title: str, reason: str, **details: Any
) -> list[WebhookDelivery]:
    """A notice about an endpoint: to every other endpoint subscribed to ``kind``, never to itself."""
    return operational_notice_emit(
        notice=OperationalNotice(
            kind=kind,
            subject_key=f"endpoint:{endpoint.pk}",
            occurrence=f"endpoint:{endpoint.pk}:{since.isoformat()}",
            title=f"Webhook endpoint {url_display(endpoint.url)} {title}",
            reason=reason,
            admin_path=reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
            except_endpoint_id=endpoint.pk,
            details={
                "endpoint": {"id": endpoint.pk, "url": url_display(endpoint.url), "description": endpoint.description},
                **details,
            },
        )
    )


def endpoint_disabled_notify(*, endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    since = endpoint.disabled_at or timezone.now()
    return _endpoint_notice(
        endpoint,
        kind=WebhookEventType.ENDPOINT_DISABLED,
        since=since,
        title="was disabled",
        reason=endpoint.disabled_reason,
    )


def endpoint_circuit_opened_notify(*, endpoint_id: int) -> list[WebhookDelivery]:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.circuit_opened_at is None:
        return []
    open_until = endpoint.circuit_open_until
    return _endpoint_notice(
        endpoint,
        kind=WebhookEventType.ENDPOINT_CIRCUIT_OPENED,
        since=endpoint.circuit_opened_at,
        title="stopped answering: circuit open",
        reason=f"{endpoint.consecutive_failures} failures in a row; its deliveries wait until it answers again",
        circuit={
            "opened_at": endpoint.circuit_opened_at.isoformat(),
            "next_probe_after": open_until.isoformat() if open_until else None,
        },
    )


def tenant_admin_path(tenant_id: str) -> str:
    return reverse("admin:tenants_tenant_change", args=[tenant_id])


def tenant_provision_failed_notify(*, tenant: Tenant, reason: str) -> list[WebhookDelivery]:
    return operational_notice_emit(
        notice=OperationalNotice(
            kind=WebhookEventType.TENANT_PROVISION_FAILED,
            subject_key=f"tenant:{tenant.pk}",
            occurrence=f"tenant:{tenant.pk}:v{tenant.version}",
            title=f"Provisioning of tenant {tenant.key} failed",
            reason=reason or "the provisioning failed",
            admin_path=tenant_admin_path(tenant.pk),
            tenant=tenant,
        )
    )
