"""Tasks of the foundation itself: retention runs every app's registered rules."""

from celery import shared_task

from orchestrator.retention import retention_run


@shared_task(name="orchestrator.retention_purge", acks_late=True)
def retention_purge() -> dict[str, int]:
    """Beat: purge what is past its retention, in batches (several runs at once share the work)."""
    return retention_run()
