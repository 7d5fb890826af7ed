"""Dashboard activity seeded at known times, with the figures the charts must show."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from events.models import EventStatus, ReceivedEvent
from events.tests.factories import ReceivedEventFactory
from tenants.models import HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.tests.factories import TenantFactory
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery


@dataclass(frozen=True)
class Seeded:
    # minute index (0 = 59 minutes ago, 59 = this minute) -> {status: count}
    events: dict[int, dict[str, int]]
    onboarding: dict[str, tuple[float, float]]  # tier -> (p50, p95) seconds
    deliveries: dict[str, int]


def _event_at(at: datetime, status: str) -> None:
    event = ReceivedEventFactory(status=status)
    ReceivedEvent.objects.filter(pk=event.pk).update(received_at=at)


def _activated(*, tier: str, took_seconds: int, at: datetime) -> None:
    tenant = TenantFactory(tier=tier, status=TenantStatus.ACTIVE)
    Tenant.objects.filter(pk=tenant.pk).update(created_at=at - timedelta(seconds=took_seconds))
    row = TenantHistory.objects.create(
        tenant=tenant,
        kind=HistoryKind.TRANSITION,
        summary="Deploying → Active",
        details={"from": TenantStatus.DEPLOYING, "to": TenantStatus.ACTIVE},
    )
    TenantHistory.objects.filter(pk=row.pk).update(at=at)


def seed_dashboard_activity(now: datetime) -> Seeded:
    """Events in two minutes of the last hour (and one older), onboardings in two tiers (and one older),
    deliveries in three outcomes (and one older)."""
    minute = now.replace(second=0, microsecond=0)
    for _ in range(3):
        _event_at(minute - timedelta(minutes=5), EventStatus.PROCESSED)
    _event_at(minute - timedelta(minutes=5), EventStatus.FAILED)
    for _ in range(2):
        _event_at(minute - timedelta(minutes=30), EventStatus.PROCESSED)
    _event_at(now - timedelta(hours=2), EventStatus.FAILED)  # outside the hour

    for took in (60, 120, 180, 240, 300):
        _activated(tier="BASIC", took_seconds=took, at=now - timedelta(hours=1))
    _activated(tier="PREMIUM", took_seconds=600, at=now - timedelta(hours=3))
    _activated(tier="PREMIUM", took_seconds=5, at=now - timedelta(hours=30))  # outside the day

    endpoint = WebhookEndpointFactory()
    for status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.RETRYING):
        make_delivery(endpoint, status=status)
    old = make_delivery(endpoint, status=DeliveryStatus.FAILED)
    WebhookDelivery.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=2))

    return Seeded(
        events={54: {EventStatus.PROCESSED: 3, EventStatus.FAILED: 1}, 29: {EventStatus.PROCESSED: 2}},
        # percentile_cont: p95 of 60..300 s is 240 + 0.8 * 60
        onboarding={"BASIC": (180.0, 288.0), "PREMIUM": (600.0, 600.0)},
        deliveries={DeliveryStatus.SUCCEEDED: 2, DeliveryStatus.FAILED: 1, DeliveryStatus.RETRYING: 1},
    )
