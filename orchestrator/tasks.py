"""Tasks of the foundation itself: retention runs every app's registered rules."""

from orchestrator.retention import retention_run
from orchestrator.task_policy import lifecycle_task


@lifecycle_task(name="orchestrator.retention_purge")
def retention_purge() -> dict[str, int]:
    """Beat: purge what is past its retention, in batches (several runs at once share the work)."""
    return retention_run()
