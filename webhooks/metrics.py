"""The webhooks' metrics: delivery attempts by step and outcome with their latency, and the open circuits and
unfinished deliveries read from the database."""

from collections.abc import Iterable
from typing import Any

from django.db.models import Count
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from orchestrator.metrics import LATENCY_BUCKETS, DatabaseCollector, database_collector_register
from webhooks import circuit
from webhooks.models import DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEndpoint

ATTEMPTS = Counter(
    "orchestrator_webhook_delivery_attempts",
    "Delivery attempts by step (app_plane_bootstrap, feature_service_bootstrap, control_plane_webhook, subscriber) "
    "and outcome: succeeded, retry (failed, tried again later), failed (given up), refused (not sent: SSRF guard, "
    "no secret).",
    ["step", "outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "orchestrator_webhook_delivery_attempt_duration_seconds",
    "Time from sending a delivery's request to its answer (or error), by step.",
    ["step"],
    buckets=LATENCY_BUCKETS,
)


def delivery_attempts_observe(attempts: Iterable[tuple[WebhookDelivery, DeliveryAttempt]]) -> None:
    """Count attempts whose result was just recorded."""
    for delivery, attempt in attempts:
        ATTEMPTS.labels(step=delivery.step, outcome=attempt.outcome).inc()
        if attempt.duration_ms is not None:
            ATTEMPT_SECONDS.labels(step=delivery.step).observe(attempt.duration_ms / 1000)


# Deliveries still to be sent or waiting for their chain: the (status, next_attempt_at) index finds them.
UNFINISHED_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.WAITING, DeliveryStatus.BLOCKED)


class WebhooksCollector(DatabaseCollector):
    """Subscriber endpoints whose circuit is open or half-open, and deliveries not finished by status."""

    def read(self) -> dict[str, Any]:
        threshold = circuit.circuit_threshold()
        tripped = (
            list(
                WebhookEndpoint.objects.filter(is_active=True, consecutive_failures__gte=threshold).only(
                    "consecutive_failures", "circuit_open_until"
                )
            )
            if threshold
            else []
        )
        now = timezone.now()
        states = [circuit.circuit_state(endpoint, now=now) for endpoint in tripped]
        deliveries = dict(
            WebhookDelivery.objects.filter(status__in=UNFINISHED_STATUSES)
            .order_by()
            .values_list("status")
            .annotate(count=Count("pk"))
        )
        return {"circuits": {state: states.count(state) for state in ("open", "half_open")}, "deliveries": deliveries}

    def metrics(self, data: dict[str, Any], *, now: float) -> Iterable[Metric]:
        circuits = GaugeMetricFamily(
            "orchestrator_webhook_circuits",
            "Active subscriber endpoints whose circuit breaker is open (nothing sent) or half-open (one probe).",
            labels=["state"],
        )
        for state, count in data["circuits"].items():
            circuits.add_metric([state], count)
        yield circuits
        deliveries = GaugeMetricFamily(
            "orchestrator_webhook_deliveries",
            "Deliveries not finished by status: pending, retrying, waiting (for their chain), blocked (a step failed).",
            labels=["status"],
        )
        for status in UNFINISHED_STATUSES:
            deliveries.add_metric([status.value], data["deliveries"].get(status, 0))
        yield deliveries


database_collector_register(WebhooksCollector())
