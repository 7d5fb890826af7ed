"""Queueing deliveries: after commit in batches, the dispatcher of due retries, the sweeper of lost tasks."""

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from webhooks import circuit
from webhooks.models import SENDABLE_STATUSES, DeliveryStatus, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

# A scheduled attempt may start this early (clock skew between the broker's ETA and the database).
EARLY_TOLERANCE = timedelta(seconds=1)


def delivery_enqueue(*, delivery_id: int) -> None:
    """Queue the delivery's attempt once the current transaction commits.

    Deliveries one transaction enqueues (a fan-out to every subscriber) go out as tasks of up to
    WEBHOOK_DELIVERY_BATCH deliveries, sent in parallel by one worker. A delivery due later (a retry) is
    not enqueued: its ``next_attempt_at`` is enough, the dispatcher queues it once due.
    """
    _due_now.add(delivery_id)


def delivery_enqueue_if_due(delivery: WebhookDelivery) -> None:
    """Queue at once what is already due (a retry without delay); later ones are the dispatcher's."""
    if delivery.next_attempt_at is None or delivery.next_attempt_at <= timezone.now() + EARLY_TOLERANCE:
        delivery_enqueue(delivery_id=delivery.pk)


class _DueNow:
    """The ids a thread's open transaction enqueued, published together when it commits."""

    def __init__(self) -> None:
        self._local = threading.local()

    def add(self, delivery_id: int) -> None:
        batch: list[int] | None = getattr(self._local, "batch", None)
        if batch is not None and self._registered(batch):
            batch.append(delivery_id)
            return
        batch = self._local.batch = [delivery_id]

        def publish() -> None:  # outside a transaction Django runs it at once: the batch is this one id
            self._publish(batch)

        publish.delivery_batch = batch  # type: ignore[attr-defined]
        transaction.on_commit(publish)

    def _registered(self, batch: list[int]) -> bool:
        """Whether ``batch``'s commit hook is still waiting (a rollback discards hooks with their ids)."""
        hooks = transaction.get_connection().run_on_commit
        return any(getattr(hook, "delivery_batch", None) is batch for _, hook, _ in hooks)

    def _publish(self, batch: list[int]) -> None:
        if getattr(self._local, "batch", None) is batch:
            self._local.batch = None
        deliveries_publish(batch)


_due_now = _DueNow()


def deliveries_publish(delivery_ids: list[int], *, countdown: float = 0.0) -> list[int]:
    """Send tasks for these deliveries (after ``countdown`` seconds), WEBHOOK_DELIVERY_BATCH per task; the
    ids sent. A broker outage is logged only: the deliveries are stored, and the dispatcher (retries) or the
    sweeper (everything due for a while) queues them once it is back."""
    from webhooks.tasks import deliver_many

    size = max(1, settings.WEBHOOK_DELIVERY_BATCH)
    published: list[int] = []
    for start in range(0, len(delivery_ids), size):
        chunk = delivery_ids[start : start + size]
        try:
            deliver_many.apply_async(kwargs={"delivery_pks": chunk}, countdown=countdown or None)
        except (KombuOperationalError, OSError) as error:
            logger.warning("deliveries %s not enqueued (%r); they are queued again later", chunk, error)
            continue
        published += chunk
    return published


def deliveries_dispatch_due(*, limit: int = 2000) -> int:
    """Queue the retries that are due and were not queued since they became due; run by beat every
    WEBHOOK_DISPATCH_INTERVAL_SECONDS. (Every other delivery is queued when it becomes due: when it is
    created, its chain step starts or staff retry it.) An endpoint whose circuit is open gets nothing; one
    whose circuit is half-open gets one delivery, its probe (``webhooks.circuit``)."""
    now = timezone.now()
    due = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=F("next_attempt_at")))
        .order_by("next_attempt_at")
    )
    delivery_ids = list(due.filter(_circuit_closed()).values_list("pk", flat=True)[:limit])
    if circuit.circuit_threshold():
        probing = WebhookEndpoint.objects.filter(
            circuit.not_open(now, prefix=""), consecutive_failures__gte=circuit.circuit_threshold()
        )
        for endpoint_id in probing.values_list("pk", flat=True):
            delivery_ids += due.filter(endpoint_id=endpoint_id).values_list("pk", flat=True)[:1]
    published = deliveries_publish(delivery_ids)
    WebhookDelivery.objects.filter(pk__in=published).update(queued_at=now)
    return len(published)


def _circuit_closed() -> Q:
    """Deliveries without an endpoint, or whose endpoint's circuit is closed."""
    threshold = circuit.circuit_threshold()
    if not threshold:
        return Q()
    return Q(endpoint__isnull=True) | Q(endpoint__consecutive_failures__lt=threshold)


def deliveries_sweep() -> int:
    """Re-enqueue due deliveries whose task was lost (broker down at enqueue time, worker gone)."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    # Deliveries held by an open circuit are not lost: the dispatcher sends their probe and releases them.
    due = WebhookDelivery.objects.filter(status__in=SENDABLE_STATUSES, next_attempt_at__lte=cutoff)
    delivery_ids = list(due.filter(_circuit_closed()).values_list("pk", flat=True)[:500])
    deliveries_publish(delivery_ids)
    return len(delivery_ids)
