"""The pipeline engine end to end: a tier's provision pipeline runs a LOCAL build (its outcome back through
the real intake), waits for a staff approval, and the run's end moves the tenant."""

import pytest

from events.catalogue import DetailType
from orchestrator.tests.factories import staff_user
from tenants.models import (
    Build,
    HistoryKind,
    PipelineRun,
    PipelineRunStatus,
    StepDecision,
    StepRunStatus,
    Tenant,
    TenantHistory,
    TenantStatus,
)
from tenants.services.pipeline_actions import ActionForbidden, pipeline_run_cancel, step_approve, step_reject
from tenants.tests.conftest import provisioning_detail
from tenants.tests.factories import PipelineStepFactory, local_build_step, pipeline_operator
from tenants.tests.test_local_builder import post


def provision(client) -> Tenant:
    detail = provisioning_detail(builder="LOCAL")
    post(client, DetailType.TENANT_PROVISIONING, detail)
    return Tenant.objects.get(pk=detail["tenant"]["id"])


@pytest.fixture
def build_then_approval(local_tier):
    local_build_step(tier=local_tier, position=1)
    PipelineStepFactory(tier=local_tier, position=2, name="go-live", kind="approval", config={"prompt": "Go?"})
    return local_tier


def test_a_build_then_an_approval_waits_for_staff_and_an_approval_activates_the_tenant(
    build_then_approval, live_intake, client
):
    # given a tier whose provision pipeline builds on LOCAL then waits for an approval
    # when the control plane asks for a tenant
    tenant = provision(client)

    # then the build ran through its step, the run waits for a person, the tenant is still provisioning
    run = PipelineRun.objects.get(tenant=tenant)
    build_step, approval = run.step_runs.order_by("position")
    assert run.status == PipelineRunStatus.WAITING
    assert build_step.status == StepRunStatus.SUCCEEDED
    assert build_step.outputs["API_ENDPOINT"] == "http://127.0.0.1:8199/webhook"
    assert build_step.build.idempotency_token == f"step:{build_step.key}:1"
    assert approval.status == StepRunStatus.WAITING
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISIONING

    # when an operator approves it with a comment
    operator = pipeline_operator()
    result = step_approve(step_run_id=approval.pk, actor_user=operator, comment="checked the build")

    # then the run succeeded, the tenant is active, and the decision is on the step and the timeline
    assert result.changed
    run.refresh_from_db()
    approval.refresh_from_db()
    tenant.refresh_from_db()
    assert run.status == PipelineRunStatus.SUCCEEDED
    assert tenant.status == TenantStatus.ACTIVE
    assert (approval.decision, approval.decided_by, approval.decision_comment) == (
        StepDecision.APPROVED,
        operator,
        "checked the build",
    )
    entry = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert entry.actor_user == operator
    assert entry.summary == "Step go-live approved: checked the build"
    assert Build.objects.filter(tenant=tenant).count() == 1

    # and approving again is "already approved", not an error
    again = step_approve(step_run_id=approval.pk, actor_user=operator)
    assert not again.changed
    assert again.message == "Step go-live is already approved."


def test_a_rejected_approval_fails_the_run_and_the_tenant(build_then_approval, live_intake, client):
    # given a run waiting for its approval
    tenant = provision(client)
    approval = PipelineRun.objects.get(tenant=tenant).step_runs.get(name="go-live")

    # when an operator rejects it
    step_reject(step_run_id=approval.pk, actor_user=pipeline_operator(), comment="wrong plan")

    # then the step and the run failed, and so did the tenant's provisioning, with the reason
    approval.refresh_from_db()
    tenant.refresh_from_db()
    assert approval.status == StepRunStatus.FAILED
    assert approval.decision == StepDecision.REJECTED
    assert approval.run.status == PipelineRunStatus.FAILED
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert "wrong plan" in tenant.status_reason


def test_a_user_without_the_permission_cannot_decide(build_then_approval, live_intake, client):
    # given a run waiting for its approval
    tenant = provision(client)
    approval = PipelineRun.objects.get(tenant=tenant).step_runs.get(name="go-live")

    # when read-only staff try to approve it, then they are refused and the step still waits
    with pytest.raises(ActionForbidden):
        step_approve(step_run_id=approval.pk, actor_user=staff_user("read_only"))
    approval.refresh_from_db()
    assert approval.status == StepRunStatus.WAITING


def test_cancel_stops_a_waiting_run_and_fails_the_provisioning(build_then_approval, live_intake, client):
    # given a run waiting for its approval
    tenant = provision(client)
    run = PipelineRun.objects.get(tenant=tenant)

    # when an operator cancels it (twice)
    operator = pipeline_operator()
    first = pipeline_run_cancel(run_id=run.pk, actor_user=operator)
    second = pipeline_run_cancel(run_id=run.pk, actor_user=operator)

    # then the run and its waiting step are cancelled, the tenant failed, the second call changed nothing
    run.refresh_from_db()
    tenant.refresh_from_db()
    assert (first.changed, second.changed) == (True, False)
    assert run.status == PipelineRunStatus.CANCELLED
    assert run.step_runs.get(name="go-live").status == StepRunStatus.CANCELLED
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == f"Cancelled by {operator.get_username()}"
