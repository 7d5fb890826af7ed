"""Celery tasks for the event intake: thin wrappers around events.services."""

from celery import shared_task


@shared_task(name="events.publish_outbox", acks_late=True)
def publish_outbox(*, outbox_pk: int) -> None:
    """Send one pending outbox row to EventBridge (implemented in events.publisher)."""
    from events.publisher import outbox_send

    outbox_send(outbox_pk=outbox_pk)
