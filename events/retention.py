"""What the events app keeps how long: processed events (with their attempts) and sent outbox rows; and its
part of a tenant's exported record and of its purge. Registered with orchestrator.retention in
``EventsConfig.ready``."""

from collections.abc import Iterator
from datetime import datetime

from events.models import EventAttempt, EventStatus, OutboxEvent, OutboxStatus, ReceivedEvent
from orchestrator.exports import record_line
from orchestrator.retention import RetentionRule, rows_purge


def events_purge_processed(*, cutoff: datetime, deadline: float | None = None) -> int:
    """Processed events finished before ``cutoff``, with their attempts. Events still to be processed (or
    failed, waiting for a human) stay, and so do events other apps' rows hang on (a deployment's)."""
    rows = ReceivedEvent.objects.filter(status=EventStatus.PROCESSED, finished_at__lt=cutoff)
    return rows_purge(rows, deadline=deadline)


def outbox_purge_sent(*, cutoff: datetime, deadline: float | None = None) -> int:
    """Outbox rows sent before ``cutoff``; unsent (pending or failed) rows stay."""
    return rows_purge(OutboxEvent.objects.filter(status=OutboxStatus.SENT, sent_at__lt=cutoff), deadline=deadline)


RULES = (
    RetentionRule(name="processed events", days_setting="EVENT_RETENTION_DAYS", purge=events_purge_processed),
    RetentionRule(name="sent outbox rows", days_setting="OUTBOX_RETENTION_DAYS", purge=outbox_purge_sent),
)


def tenant_event_lines(*, tenant_id: str) -> Iterator[str]:
    """The tenant's received events, their attempts and the events emitted for it, as export lines."""
    events = ReceivedEvent.objects.filter(tenant_id=tenant_id).order_by("pk")
    for event in events.iterator():
        yield record_line("event", event)
    for attempt in EventAttempt.objects.filter(event__tenant_id=tenant_id).order_by("pk").iterator():
        yield record_line("event_attempt", attempt)
    for outbox in OutboxEvent.objects.filter(tenant_id=tenant_id).order_by("pk").iterator():
        yield record_line("outbox_event", outbox)


def tenant_events_purge(*, tenant_id: str) -> int:
    """Delete every event received for the tenant (with attempts) and emitted for it."""
    return rows_purge(ReceivedEvent.objects.filter(tenant_id=tenant_id)) + rows_purge(
        OutboxEvent.objects.filter(tenant_id=tenant_id)
    )
