"""The intake's and the event handlers' metrics, and the events' gauges read from the database.

Recorded on the intake's hot path: one counter and one histogram per request, their labels bound once here.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, Min
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from events.models import EventStatus, OutboxEvent, OutboxStatus, ReceivedEvent
from orchestrator.metrics import LATENCY_BUCKETS, DatabaseCollector, database_collector_register

INTAKE_REQUESTS = Counter(
    "orchestrator_intake_requests",
    "Intake requests (POST of an event) by outcome: accepted, duplicate, rejected (4xx; reason: the error code), "
    "unavailable (503; reason: the error code), error (an unexpected failure, 500).",
    ["outcome", "reason"],
)
INTAKE_SECONDS = Histogram(
    "orchestrator_intake_request_duration_seconds",
    "Time to answer an intake request (authentication, validation, storing, enqueueing).",
    buckets=LATENCY_BUCKETS,
)
HANDLER_RUNS = Counter(
    "orchestrator_event_handler_runs",
    "Runs of an event's handler by detail-type and outcome: succeeded, failed (retried until EVENT_MAX_ATTEMPTS), "
    "rejected (failed for good), superseded (another attempt took over).",
    ["detail_type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "orchestrator_event_handler_duration_seconds",
    "Time one run of an event's handler took, by detail-type.",
    ["detail_type"],
    buckets=LATENCY_BUCKETS,
)

_ACCEPTED = INTAKE_REQUESTS.labels(outcome="accepted", reason="")
_DUPLICATE = INTAKE_REQUESTS.labels(outcome="duplicate", reason="")
_observe_seconds = INTAKE_SECONDS.observe


def _error_code(data: Any, status: int) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code else str(status)


def intake_request_observe(*, status: int, data: Any, seconds: float) -> None:
    """Count one intake answer (``data``: its body, read only for errors) and its latency."""
    _observe_seconds(seconds)
    if status == 202:
        _ACCEPTED.inc()
    elif status == 200:
        _DUPLICATE.inc()
    elif status >= 500:
        outcome = "unavailable" if status == 503 else "error"
        INTAKE_REQUESTS.labels(outcome=outcome, reason=_error_code(data, status)).inc()
    else:
        INTAKE_REQUESTS.labels(outcome="rejected", reason=_error_code(data, status)).inc()


def handler_run_observe(*, detail_type: str, outcome: str, seconds: float) -> None:
    HANDLER_RUNS.labels(detail_type=detail_type, outcome=outcome).inc()
    HANDLER_SECONDS.labels(detail_type=detail_type).observe(seconds)


# Every status but ``processed`` (the table's bulk, never counted): their rows are the backlog and the failures,
# found through the (status, updated_at) index.
COUNTED_STATUSES = (EventStatus.ACCEPTED, EventStatus.PROCESSING, EventStatus.RETRYING, EventStatus.FAILED)
UNFINISHED_STATUSES = (EventStatus.ACCEPTED, EventStatus.PROCESSING, EventStatus.RETRYING)


def _age(oldest: datetime | None, now: float) -> float:
    return max(0.0, now - oldest.timestamp()) if oldest is not None else 0.0


class EventsCollector(DatabaseCollector):
    """Events by status (all but processed), the age of the oldest unprocessed event, the outbox's backlog."""

    def read(self) -> dict[str, Any]:
        by_status = {
            row["status"]: row
            for row in ReceivedEvent.objects.filter(status__in=COUNTED_STATUSES)
            .order_by()
            .values("status")
            .annotate(count=Count("pk"), oldest=Min("received_at"))
        }
        outbox = OutboxEvent.objects.filter(status=OutboxStatus.PENDING).aggregate(
            count=Count("pk"), oldest=Min("created_at")
        )
        return {"events": by_status, "outbox": outbox}

    def metrics(self, data: dict[str, Any], *, now: float) -> Iterable[Metric]:
        events = data["events"]
        counts = GaugeMetricFamily(
            "orchestrator_events", "Received events by status (processed ones are not counted).", labels=["status"]
        )
        for status in COUNTED_STATUSES:
            counts.add_metric([status.value], events.get(status, {}).get("count", 0))
        yield counts
        oldest = min((events[s]["oldest"] for s in UNFINISHED_STATUSES if s in events), default=None)
        yield GaugeMetricFamily(
            "orchestrator_events_oldest_unprocessed_age_seconds",
            "Age of the oldest event accepted but not processed yet (accepted, processing, retrying); 0 if none.",
            value=_age(oldest, now),
        )
        outbox = data["outbox"]
        yield GaugeMetricFamily(
            "orchestrator_outbox_unsent", "Emitted events not sent to EventBridge yet.", value=outbox["count"]
        )
        yield GaugeMetricFamily(
            "orchestrator_outbox_oldest_unsent_age_seconds",
            "Age of the oldest emitted event not sent to EventBridge yet; 0 if none.",
            value=_age(outbox["oldest"], now),
        )


database_collector_register(EventsCollector())
