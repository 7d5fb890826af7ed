"""Celery tasks for the tenant lifecycle: ids in, one service call, retries declared.

Event handling itself runs in the events app's task (``events`` → ``tenants.event_handlers``); these are
the lifecycle's own background jobs: the DynamoDB mirror, build starts, the build poller and recovery, and
the LOCAL runner.
"""

from django.conf import settings

from orchestrator.aws import TRANSIENT_AWS_ERRORS
from orchestrator.task_policy import Retry, lifecycle_task
from tenants.builders.base import BuildUnavailable
from tenants.services.sync import SyncUnavailable

# ~1 h of backoff; after that the sweep (tenants.sync_pending) picks the write up again.
DYNAMODB_AWAY = Retry(on=(SyncUnavailable, *TRANSIENT_AWS_ERRORS), max_retries=12, backoff=2)


@lifecycle_task(name="tenants.sync_tenant", retry=DYNAMODB_AWAY)
def sync_tenant(*, tenant_id: str) -> str:
    from tenants.services.sync import tenant_sync

    return tenant_sync(tenant_id=tenant_id)


@lifecycle_task(name="tenants.sync_tier", retry=DYNAMODB_AWAY)
def sync_tier(*, name: str) -> str:
    from tenants.services.sync import tier_sync

    return tier_sync(name=name)


@lifecycle_task(name="tenants.sync_pending")
def sync_pending() -> dict[str, int]:
    """Beat: re-enqueue tenants and tiers whose last change has not reached DynamoDB."""
    from tenants.services.sync import sync_pending_schedule

    return sync_pending_schedule()


@lifecycle_task(name="tenants.poll_builds", retry=Retry(on=(BuildUnavailable,), max_retries=3, backoff=2))
def poll_builds() -> dict[str, int]:
    """Beat: BatchGetBuilds for builds running longer than BUILD_POLL_AFTER_SECONDS."""
    from tenants.services.builds import builds_poll

    return builds_poll()


@lifecycle_task(name="tenants.start_build")
def start_build(*, build_pk: int) -> str:
    """Hand a recorded build to its builder (a backend that does not answer is retried by the recovery,
    with the same idempotency token)."""
    from tenants.services.builds import build_start

    return build_start(build_pk=build_pk).status


@lifecycle_task(name="tenants.recover_builds")
def recover_builds() -> dict[str, int]:
    """Beat: start recorded builds that never started, run again LOCAL builds whose runner was lost, post
    again LOCAL outcomes the intake has not accepted."""
    from tenants.services.recovery import builds_recover

    return builds_recover()


@lifecycle_task(
    name="tenants.run_local_build",
    queue=settings.LOCAL_BUILD_QUEUE,
    retry=Retry(on=(BuildUnavailable,), max_retries=5, backoff=2),
)
def run_local_build(*, build_pk: int) -> str:
    """Run one LOCAL build's command under a lease and report its outcome through the intake (a message
    delivered again while the lease is live skips the build)."""
    from tenants.services.local_builds import local_build_run

    return local_build_run(build_pk=build_pk)


@lifecycle_task(name="tenants.post_build_outcome")
def post_build_outcome(*, build_pk: int) -> str:
    """Post a LOCAL build's stored outcome to the intake again (handed out by the recovery)."""
    from tenants.services.local_runs import local_build_outcome_deliver

    return local_build_outcome_deliver(build_pk=build_pk)


@lifecycle_task(name="tenants.advance_pipeline_run")
def advance_pipeline_run(*, run_id: int) -> str:
    """Start a run's next step (a redelivered message finds it started, under the run's lock)."""
    from tenants.services.pipeline_runs import pipeline_run_advance

    return pipeline_run_advance(run_id=run_id).status


@lifecycle_task(name="tenants.finish_wait_step")
def finish_wait_step(*, step_run_id: int, attempt: int) -> bool:
    """A ``wait`` step's delay is over."""
    from tenants.services.pipeline_kinds import wait_step_finish

    return wait_step_finish(step_run_id=step_run_id, attempt=attempt)


@lifecycle_task(name="tenants.sweep_pipeline_runs")
def sweep_pipeline_runs() -> dict[str, int]:
    """Beat: steps past their deadline, runs whose advance task was lost."""
    from tenants.services.pipeline_runs import pipeline_runs_sweep

    return pipeline_runs_sweep()
