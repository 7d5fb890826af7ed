"""Reads for webhooks: endpoints, deliveries, deployments."""

from typing import Any

from django.db.models import Prefetch, QuerySet

from orchestrator.errors import NotFoundError
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint


def endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def endpoints_for(event_type: str) -> list[WebhookEndpoint]:
    """Active endpoints subscribed to ``event_type`` (JSON list membership is checked in Python: portable)."""
    return [ep for ep in WebhookEndpoint.objects.filter(is_active=True) if event_type in (ep.events or [])]


def endpoint_get(*, pk: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=pk).first()
    if endpoint is None:
        raise NotFoundError("No such webhook endpoint.")
    return endpoint


def delivery_list(*, filters: dict[str, Any] | None = None) -> QuerySet[WebhookDelivery]:
    """Deliveries, newest first, filtered by status, endpoint, tenant, step, event type or deployment."""
    filters = filters or {}
    queryset = WebhookDelivery.objects.select_related("endpoint").order_by("-created_at", "-id")
    lookups = {
        "status": "status",
        "endpoint": "endpoint_id",
        "tenant": "tenant_id",
        "step": "step",
        "event_type": "event_type",
        "deployment": "deployment_id",
    }
    for name, lookup in lookups.items():
        value = filters.get(name)
        if value not in (None, ""):
            queryset = queryset.filter(**{lookup: value})
    return queryset


def delivery_get(*, pk: int) -> WebhookDelivery:
    delivery = (
        WebhookDelivery.objects.select_related("endpoint", "deployment")
        .prefetch_related(Prefetch("attempt_log", queryset=DeliveryAttempt.objects.order_by("number")))
        .filter(pk=pk)
        .first()
    )
    if delivery is None:
        raise NotFoundError("No such webhook delivery.")
    return delivery
