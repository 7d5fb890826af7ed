"""Celery tasks for webhooks: ids in, one service call.

They run on the WEBHOOK_QUEUE queue, so a backlog of slow receivers never delays event processing.
"""

from django.conf import settings
from django.db import DatabaseError

from orchestrator.task_policy import Retry, lifecycle_task

# A lost database connection is retried with backoff; an HTTP failure is the service's business (the
# delivery is due again later and the dispatcher queues it then), so a slow receiver never holds a worker
# asleep. Re-running a task is harmless.
DATABASE_AWAY = Retry(on=(DatabaseError,), max_retries=8)


@lifecycle_task(name="webhooks.deliver_many", queue=settings.WEBHOOK_QUEUE, retry=DATABASE_AWAY)
def deliver_many(*, delivery_pks: list[int]) -> None:
    """One attempt of each delivery, sent in parallel."""
    from webhooks.services.attempts import deliveries_attempt

    deliveries_attempt(delivery_ids=delivery_pks)


@lifecycle_task(name="webhooks.sweep", queue=settings.WEBHOOK_QUEUE)
def sweep() -> int:
    """Re-enqueue due deliveries whose task was lost (run by beat every minute)."""
    from webhooks.services.dispatch import deliveries_sweep

    return deliveries_sweep()


@lifecycle_task(name="webhooks.dispatch_due", queue=settings.WEBHOOK_QUEUE)
def dispatch_due() -> int:
    """Queue the deliveries that became due (run by beat every WEBHOOK_DISPATCH_INTERVAL_SECONDS)."""
    from webhooks.services.dispatch import deliveries_dispatch_due

    return deliveries_dispatch_due()
