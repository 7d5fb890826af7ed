"""Reads for the events API and admin, and of a tenant's events for the apps above."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from events.models import EventStatus, ReceivedEvent
from orchestrator.errors import NotFoundError


def event_list(*, filters: dict[str, Any] | None = None) -> QuerySet[ReceivedEvent]:
    """Received events, newest first, filtered by detail_type, status, tenant_id, received_after/before."""
    filters = filters or {}
    queryset = ReceivedEvent.objects.all()
    if filters.get("detail_type"):
        queryset = queryset.filter(detail_type=filters["detail_type"])
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("tenant_id"):
        queryset = queryset.filter(tenant_id=filters["tenant_id"])
    received_after: datetime | None = filters.get("received_after")
    if received_after:
        queryset = queryset.filter(received_at__gte=received_after)
    received_before: datetime | None = filters.get("received_before")
    if received_before:
        queryset = queryset.filter(received_at__lt=received_before)
    return queryset.order_by("-received_at", "-id")


def event_stored(*, event_id: str) -> dict[str, Any] | None:
    """The pk and body digest of the event stored under EventBridge's ``id`` (None: not received yet)."""
    row = ReceivedEvent.objects.filter(event_id=event_id).values("pk", "body_sha256").first()
    return dict(row) if row is not None else None


def event_get(*, pk: int) -> ReceivedEvent:
    event = ReceivedEvent.objects.filter(pk=pk).prefetch_related("attempt_log__requested_by").first()
    if event is None:
        raise NotFoundError("No such event.")
    return event


def event_latest_for_tenant(*, tenant_id: str, detail_types: Sequence[str]) -> ReceivedEvent | None:
    """The tenant's most recent event of these types that did not fail (one indexed lookup)."""
    return (
        ReceivedEvent.objects.filter(tenant_id=tenant_id, detail_type__in=list(detail_types))
        .exclude(status=EventStatus.FAILED)
        .order_by("-received_at", "-id")
        .first()
    )
