"""Celery tasks for webhooks: ids in, one service call.

Deliveries are sent to the WEBHOOK_QUEUE queue (``apply_async(queue=...)`` in ``delivery_enqueue``; beat
routes the sweeper there too), so a backlog of slow receivers never delays event processing.
"""

from celery import shared_task
from django.db import DatabaseError


@shared_task(
    name="webhooks.deliver",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def deliver(*, delivery_pk: int) -> None:
    """One attempt of one delivery. Retries of the HTTP call are new tasks scheduled by the service
    (countdown), so a slow receiver never holds a worker asleep; a re-run of this task is harmless."""
    from webhooks.services import delivery_attempt

    delivery_attempt(delivery_id=delivery_pk)


@shared_task(name="webhooks.sweep", acks_late=True)
def sweep() -> int:
    """Re-enqueue due deliveries whose task was lost (run by beat every minute)."""
    from webhooks.services import deliveries_sweep

    return deliveries_sweep()
