"""Celery tasks for webhooks: ids in, one service call.

Deliveries are sent to the WEBHOOK_QUEUE queue (``apply_async(queue=...)`` in ``deliveries_publish``; beat
routes the sweeper there too), so a backlog of slow receivers never delays event processing.
"""

from celery import shared_task
from django.db import DatabaseError

# A lost database connection is retried with backoff; an HTTP failure is the service's business (the
# delivery is due again later and the dispatcher queues it then), so a slow receiver never holds a worker
# asleep. Re-running a task is harmless.
_DELIVERY_TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="webhooks.deliver_many", **_DELIVERY_TASK_OPTIONS)
def deliver_many(*, delivery_pks: list[int]) -> None:
    """One attempt of each delivery, sent in parallel."""
    from webhooks.services.attempts import deliveries_attempt

    deliveries_attempt(delivery_ids=delivery_pks)


@shared_task(name="webhooks.deliver", **_DELIVERY_TASK_OPTIONS)
def deliver(*, delivery_pk: int) -> None:
    """One attempt of one delivery (messages queued before deliveries were batched)."""
    from webhooks.services.attempts import delivery_attempt

    delivery_attempt(delivery_id=delivery_pk)


@shared_task(name="webhooks.sweep", acks_late=True)
def sweep() -> int:
    """Re-enqueue due deliveries whose task was lost (run by beat every minute)."""
    from webhooks.services.dispatch import deliveries_sweep

    return deliveries_sweep()


@shared_task(name="webhooks.dispatch_due")
def dispatch_due() -> int:
    """Queue the deliveries that became due (run by beat every WEBHOOK_DISPATCH_INTERVAL_SECONDS)."""
    from webhooks.services.dispatch import deliveries_dispatch_due

    return deliveries_dispatch_due()
