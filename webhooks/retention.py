"""What the webhooks app keeps how long: the attempts of finished deliveries (request headers, answers); and
its part of a tenant's exported record and of its purge (deployments, deliveries, attempts). The rule is
registered in ``WebhooksConfig.ready``; ``webhooks.receivers`` answers the tenant signals with these."""

from collections.abc import Iterator
from datetime import datetime

from orchestrator.exports import record_line
from orchestrator.retention import RetentionRule, rows_purge
from webhooks.models import AttemptOutcome, DeliveryAttempt, DeliveryStatus, Deployment, WebhookDelivery

# A delivery in one of these will not send again unless staff retry it (a new round numbers its attempts on
# from the delivery's count, so the old attempts are not needed for that).
FINISHED = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED)


def delivery_attempts_purge(*, cutoff: datetime, deadline: float | None = None) -> int:
    """Attempts started before ``cutoff`` of deliveries that are finished; pending or retrying deliveries
    keep theirs, and the delivery rows (the summary: status, count, last answer) stay."""
    rows = DeliveryAttempt.objects.filter(started_at__lt=cutoff, delivery__status__in=FINISHED).exclude(
        outcome=AttemptOutcome.RUNNING
    )
    return rows_purge(rows, deadline=deadline)


RULE = RetentionRule(
    name="delivery attempts", days_setting="DELIVERY_ATTEMPT_RETENTION_DAYS", purge=delivery_attempts_purge
)


def tenant_delivery_lines(*, tenant_id: str) -> Iterator[str]:
    """The tenant's deployment chains, deliveries and their attempts, as export lines (secrets masked)."""
    for deployment in Deployment.objects.filter(tenant_id=tenant_id).order_by("pk").iterator():
        yield record_line("deployment", deployment)
    for delivery in WebhookDelivery.objects.filter(tenant_id=tenant_id).order_by("pk").iterator():
        yield record_line("delivery", delivery)
    attempts = DeliveryAttempt.objects.filter(delivery__tenant_id=tenant_id).order_by("pk")
    for attempt in attempts.iterator():
        yield record_line("delivery_attempt", attempt)


def tenant_deliveries_purge(*, tenant_id: str) -> int:
    """Delete the tenant's deliveries (with attempts) and deployments, so the tenant's row can go."""
    return rows_purge(WebhookDelivery.objects.filter(tenant_id=tenant_id)) + rows_purge(
        Deployment.objects.filter(tenant_id=tenant_id)
    )
