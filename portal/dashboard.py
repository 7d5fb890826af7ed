"""The admin dashboard's figures: one read per figure, whatever the size of the tables.

Tenants per status is a ``GROUP BY`` on an indexed column; everything else is bounded by a time window
(indexed) or a ``LIMIT``.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from events.models import EventStatus, ReceivedEvent
from tenants.models import FAILED_TENANT_STATUSES, Build, BuildStatus, Tenant, TenantStatus
from webhooks.models import DeliveryStatus, WebhookDelivery

RECENT_FAILURES = 10


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class Failure:
    at: datetime
    kind: str
    subject: str
    reason: str
    url: str
    tenant_url: str = ""


@dataclass
class Dashboard:
    tenant_statuses: list[StatusCount]
    tenants_total: int
    builds_in_progress: int
    builds_url: str
    failed_deliveries: int
    failed_deliveries_url: str
    failed_events: int
    failed_events_url: str
    window_hours: int
    recent_failures: list[Failure] = field(default_factory=list)


def _changelist(model: Any, **params: Any) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def _tenant_url(tenant_id: str) -> str:
    return reverse("admin:tenants_tenant_change", args=[tenant_id]) if tenant_id else ""


def dashboard_get(*, now: datetime | None = None, window_hours: int = 24) -> Dashboard:
    """Everything the admin index shows (7 queries)."""
    now = now or timezone.now()
    since = now - timedelta(hours=window_hours)
    since_param = since.replace(microsecond=0).isoformat()

    counts = dict(Tenant.objects.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    statuses = [
        StatusCount(value, label, counts.get(value, 0), _changelist(Tenant, status__exact=value))
        for value, label in TenantStatus.choices
    ]
    builds_in_progress = Build.objects.filter(status=BuildStatus.IN_PROGRESS).count()
    failed_deliveries = WebhookDelivery.objects.filter(status=DeliveryStatus.FAILED, updated_at__gte=since)
    failed_events = ReceivedEvent.objects.filter(status=EventStatus.FAILED, updated_at__gte=since)

    failures: list[Failure] = []
    for delivery in failed_deliveries.order_by("-updated_at")[:RECENT_FAILURES]:
        failures.append(
            Failure(
                at=delivery.updated_at,
                kind="Delivery",
                subject=f"{delivery.get_step_display()} → {delivery.url or '(no URL)'}",
                reason=delivery.status_reason
                or (f"HTTP {delivery.last_status_code}" if delivery.last_status_code else "failed"),
                url=reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]),
                tenant_url=_tenant_url(delivery.tenant_id or ""),
            )
        )
    for event in failed_events.order_by("-updated_at")[:RECENT_FAILURES]:
        failures.append(
            Failure(
                at=event.updated_at,
                kind="Event",
                subject=event.detail_type,
                reason=event.last_error or "failed",
                url=reverse("admin:events_receivedevent_change", args=[event.pk]),
                tenant_url=_tenant_url(event.tenant_id),
            )
        )
    failed_tenants = Tenant.objects.filter(status__in=list(FAILED_TENANT_STATUSES), updated_at__gte=since)
    for tenant in failed_tenants.order_by("-updated_at").only("pk", "key", "status", "status_reason", "updated_at")[
        :RECENT_FAILURES
    ]:
        failures.append(
            Failure(
                at=tenant.updated_at,
                kind="Tenant",
                subject=f"{tenant.key}: {tenant.get_status_display()}",
                reason=tenant.status_reason or tenant.get_status_display(),
                url=_tenant_url(tenant.pk),
            )
        )
    failures.sort(key=lambda failure: failure.at, reverse=True)

    return Dashboard(
        tenant_statuses=statuses,
        tenants_total=sum(counts.values()),
        builds_in_progress=builds_in_progress,
        builds_url=_changelist(Build, status__exact=BuildStatus.IN_PROGRESS),
        failed_deliveries=failed_deliveries.count(),
        failed_deliveries_url=_changelist(
            WebhookDelivery, status__exact=DeliveryStatus.FAILED, updated_at__gte=since_param
        ),
        failed_events=failed_events.count(),
        failed_events_url=_changelist(ReceivedEvent, status__exact=EventStatus.FAILED, updated_at__gte=since_param),
        window_hours=window_hours,
        recent_failures=failures[:RECENT_FAILURES],
    )
