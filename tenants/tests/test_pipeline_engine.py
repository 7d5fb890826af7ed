"""The engine's rules, one at a time: retries with backoff, continue_on_failure, the timeout sweep, delays,
a redelivered advance task, runs started only for tiers with steps."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orchestrator.tests.factories import staff_user
from tenants.models import (
    Build,
    HistoryKind,
    PipelineOperation,
    PipelineRunStatus,
    StepRunStatus,
    TenantHistory,
    TenantStatus,
)
from tenants.services.pipeline_actions import pipeline_run_redrive
from tenants.services.pipeline_kinds import pipeline_wait_event_signal
from tenants.services.pipeline_runs import pipeline_run_advance, pipeline_run_start, pipeline_runs_sweep
from tenants.services.provisioning import tenant_retry_provisioning
from tenants.tests.factories import PipelineStepFactory, TenantFactory, TierFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]

# A build step the tenants below cannot pass: they build on CODE_BUILD, the step allows LOCAL only.
REFUSED_BUILD = {"kind": "build", "config": {"project": "demo/build.sh provision", "builders": ["LOCAL"]}}


@pytest.fixture
def start(run_commit_hooks):
    """Start a provision run for a provisioning tenant of ``tier``, with what it enqueues run."""

    def run(tier):
        tenant = TenantFactory(tier=tier.name, status=TenantStatus.PROVISIONING)
        with run_commit_hooks():
            return pipeline_run_start(
                tenant_id=tenant.pk, operation=PipelineOperation.PROVISION, context={}, triggered_by="test"
            )

    return run


def test_a_tier_without_steps_for_the_operation_starts_no_run():
    # given a tier with only a suspend step
    tier = TierFactory()
    PipelineStepFactory(tier=tier, operation=PipelineOperation.SUSPEND)
    tenant = TenantFactory(tier=tier.name)

    # when a provision run is asked for, then there is none (the caller keeps its own path)
    run = pipeline_run_start(tenant_id=tenant.pk, operation=PipelineOperation.PROVISION, context={}, triggered_by="t")
    assert run is None


def test_continue_on_failure_goes_on_to_the_next_step(start):
    # given a failing first step that may fail, then an approval
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="optional", continue_on_failure=True, **REFUSED_BUILD)
    PipelineStepFactory(tier=tier, position=2, name="approve", kind="approval")

    # when the run starts
    run = start(tier)

    # then the first step failed with its reason and the run waits at the second
    run.refresh_from_db()
    optional, approve = run.step_runs.order_by("position")
    assert optional.status == StepRunStatus.FAILED
    assert optional.error == "Step optional allows builders LOCAL, not CODE_BUILD (builderConfig.type)."
    assert approve.status == StepRunStatus.WAITING
    assert run.status == PipelineRunStatus.WAITING


def test_a_failing_step_is_retried_after_its_backoff_then_fails_the_run(start, run_commit_hooks):
    # given a failing step with two attempts, 5 s apart
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="build", max_attempts=2, backoff_seconds=5, **REFUSED_BUILD)

    # when the run starts
    run = start(tier)

    # then the first attempt failed and the second waits for its time
    step = run.step_runs.get()
    assert (step.status, step.attempts) == (StepRunStatus.PENDING, 1)
    assert step.next_attempt_at > timezone.now() + timedelta(seconds=3)
    pipeline_run_advance(run_id=run.pk)  # early: nothing happens
    step.refresh_from_db()
    assert step.attempts == 1

    # when its time has come
    step.next_attempt_at = timezone.now() - timedelta(seconds=1)
    step.save(update_fields=["next_attempt_at"])
    with run_commit_hooks():
        pipeline_run_advance(run_id=run.pk)

    # then the second attempt failed too, and the run and the tenant's provisioning with it
    step.refresh_from_db()
    run.refresh_from_db()
    assert (step.status, step.attempts) == (StepRunStatus.FAILED, 2)
    assert run.status == PipelineRunStatus.FAILED
    assert run.tenant.status == TenantStatus.PROVISION_FAILED
    assert run.tenant.status_reason == f"Step build failed: {step.error}"


def test_the_sweep_fails_a_step_past_its_timeout(start, run_commit_hooks):
    # given a run waiting at an approval with a 60 s timeout
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="approve", kind="approval", timeout_seconds=60)
    run = start(tier)

    # when the sweep runs before and after the deadline
    with run_commit_hooks():
        early = pipeline_runs_sweep()
        late = pipeline_runs_sweep(now=timezone.now() + timedelta(seconds=61))

    # then only the second one failed it, and the run with it
    assert (early["overdue"], late["overdue"]) == (0, 1)
    step = run.step_runs.get()
    run.refresh_from_db()
    assert (step.status, step.error) == (StepRunStatus.FAILED, "Timed out after 60 s.")
    assert run.status == PipelineRunStatus.FAILED


def test_a_delay_ends_with_its_countdown_task(start):
    # given a delay of one hour before an approval
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="cool-down", kind="wait", config={"seconds": 3600})
    PipelineStepFactory(tier=tier, position=2, name="approve", kind="approval")

    # when the run starts (eager tasks: the countdown task runs at once)
    run = start(tier)

    # then the delay ended and the run waits at the approval
    delay, approve = run.step_runs.order_by("position")
    assert delay.status == StepRunStatus.SUCCEEDED
    assert approve.status == StepRunStatus.WAITING


def test_a_delay_whose_task_was_lost_ends_with_the_sweep_after_its_deadline(run_commit_hooks):
    # given a run started at a one-hour delay whose countdown task never ran (nothing after commit runs here)
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="cool-down", kind="wait", config={"seconds": 3600})
    PipelineStepFactory(tier=tier, position=2, name="approve", kind="approval")
    tenant = TenantFactory(tier=tier.name, status=TenantStatus.PROVISIONING)
    run = pipeline_run_start(tenant_id=tenant.pk, operation=PipelineOperation.PROVISION, context={}, triggered_by="t")
    pipeline_run_advance(run_id=run.pk)

    # when the sweep runs before and after the delay
    with run_commit_hooks():
        early = pipeline_runs_sweep()
        late = pipeline_runs_sweep(now=timezone.now() + timedelta(seconds=3601))

    # then the delay ended with the second one and the run went on to the approval
    assert (early["overdue"], late["overdue"]) == (0, 1)
    delay, approve = run.step_runs.order_by("position")
    assert delay.status == StepRunStatus.SUCCEEDED
    assert approve.status == StepRunStatus.WAITING


def test_a_redelivered_advance_task_repeats_no_step(codebuild_tier, start, run_commit_hooks, codebuild_calls):
    # given a run whose CodeBuild build step has started
    PipelineStepFactory(
        tier=codebuild_tier,
        position=1,
        name="build",
        kind="build",
        config={"project": "orchestrator-basic-provision", "builders": ["CODE_BUILD"]},
    )
    run = start(codebuild_tier)
    step = run.step_runs.get()
    assert step.status == StepRunStatus.RUNNING
    entries = TenantHistory.objects.filter(tenant=run.tenant, kind=HistoryKind.PIPELINE).count()

    # when the advance task is delivered again (twice)
    with run_commit_hooks():
        pipeline_run_advance(run_id=run.pk)
        pipeline_run_advance(run_id=run.pk)

    # then nothing was started again: one attempt, one build, one StartBuild with the step's token
    step.refresh_from_db()
    assert step.attempts == 1
    build = Build.objects.get(tenant=run.tenant)
    assert build.idempotency_token == f"step:{step.key}:1"
    assert [body["idempotencyToken"] for name, body in codebuild_calls if name == "StartBuild"] == [
        build.idempotency_token
    ]
    assert TenantHistory.objects.filter(tenant=run.tenant, kind=HistoryKind.PIPELINE).count() == entries


def test_redrive_needs_the_permission_and_a_failed_run(start):
    # given a failed run
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="build", **REFUSED_BUILD)
    run = start(tier)
    run.refresh_from_db()
    assert run.status == PipelineRunStatus.FAILED

    # when read-only staff redrive it, then they are refused
    from tenants.services.pipeline_actions import ActionForbidden

    with pytest.raises(ActionForbidden):
        pipeline_run_redrive(run_id=run.pk, actor_user=staff_user("read_only"))
    run.refresh_from_db()
    assert run.status == PipelineRunStatus.FAILED


def test_a_wait_for_a_named_event_ends_when_that_event_comes(start, run_commit_hooks):
    # given a run waiting for the event "dns-ready" before an approval
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="dns", kind="wait", config={"event": "dns-ready"})
    PipelineStepFactory(tier=tier, position=2, name="approve", kind="approval")
    run = start(tier)

    # when another event comes, then nothing moves; when it comes, the step ends with its outputs
    with run_commit_hooks():
        other = pipeline_wait_event_signal(tenant_id=run.tenant_id, name="cert-ready")
        matched = pipeline_wait_event_signal(tenant_id=run.tenant_id, name="dns-ready", outputs={"zone": "acme"})

    assert (other, matched) == (0, 1)
    wait, approve = run.step_runs.order_by("position")
    assert (wait.status, wait.outputs) == (StepRunStatus.SUCCEEDED, {"zone": "acme"})
    assert approve.status == StepRunStatus.WAITING


def test_a_staff_retry_of_a_pipeline_tier_starts_a_new_run(run_commit_hooks):
    # given a tenant whose provisioning failed, on a tier with a provision pipeline
    tier = TierFactory()
    PipelineStepFactory(tier=tier, position=1, name="approve", kind="approval")
    tenant = TenantFactory(tier=tier.name, status=TenantStatus.PROVISION_FAILED, provisioning_attempt=1)

    # when staff retry its provisioning
    with run_commit_hooks():
        result = tenant_retry_provisioning(tenant=tenant, actor_user=staff_user("operator"))

    # then a new attempt runs the pipeline (no single build), waiting at its approval
    run = tenant.pipeline_runs.get()
    tenant.refresh_from_db()
    assert result.changed
    assert result.message == f"{tenant.key}: attempt 2 is pipeline run {run.pk}."
    assert (tenant.status, tenant.provisioning_attempt) == (TenantStatus.PROVISIONING, 2)
    assert run.status == PipelineRunStatus.WAITING
    assert not Build.objects.filter(tenant=tenant).exists()
