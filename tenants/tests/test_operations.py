"""Update, suspend and resume an active tenant: through the real intake, on the tier's builds (CodeBuild in
moto_server) or at once when the tier has none; failures, retries, roll back and refusals."""

import pytest

from events.catalogue import DetailType
from events.models import EventStatus, OutboxEvent, ReceivedEvent
from orchestrator.tests.factories import StaffFactory
from tenants.bootstrap import ensure_codebuild_projects
from tenants.models import Build, BuildPurpose, BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.lifecycle import TransitionCause
from tenants.services.operation_outcomes import operation_finish
from tenants.services.operations import (
    InvalidPlan,
    OperationRefused,
    tenant_resume,
    tenant_suspend,
    tenant_update,
    tenant_update_roll_back,
)
from tenants.tests.conftest import envelope, outcome_detail, provisioning_detail, tenant_item_of
from tenants.tests.factories import TierFactory, TierVariableFactory

pytestmark = pytest.mark.django_db

NEW_PLAN = {"id": "plan-pro", "name": "Pro", "tier": "BASIC", "sizeConfig": {"MAX_USERS": 500}}


@pytest.fixture
def operation_projects(codebuild_tier):
    """BASIC builds its updates, suspensions and resumptions on CodeBuild (projects created in moto)."""
    codebuild_tier.update_project = "orchestrator-basic-update"
    codebuild_tier.suspend_project = "orchestrator-basic-suspend"
    codebuild_tier.resume_project = "orchestrator-basic-resume"
    codebuild_tier.save()
    ensure_codebuild_projects()
    return codebuild_tier


@pytest.fixture
def premium_tier(codebuild_tier):
    tier = TierFactory(
        name="PREMIUM", provision_project="orchestrator-premium-provision", update_project="orchestrator-premium-update"
    )
    TierVariableFactory(tier=tier, name="EKS_CLUSTER_NAME", value="premium-eks")
    ensure_codebuild_projects()
    return tier


def update(send_event, tenant, plan=NEW_PLAN):
    return send_event(envelope(DetailType.TENANT_UPDATE, {"tenant": {"id": tenant.pk}, "planConfig": plan}))


def build_outcome(send_event, build, *, succeeding="1", **extra):
    detail_type = (
        DetailType.TENANT_PROVISIONING_SUCCESS if succeeding == "1" else DetailType.TENANT_PROVISIONING_FAILURE
    )
    tenant_id = build.tenant_id
    return send_event(envelope(detail_type, outcome_detail(tenant_id, build.build_id, succeeding=succeeding, **extra)))


def started(codebuild_calls, project):
    start = [
        body for operation, body in codebuild_calls if operation == "StartBuild" and body["projectName"] == project
    ]
    assert len(start) == 1, start
    return start[0], {variable["name"]: variable["value"] for variable in start[0]["environmentVariablesOverride"]}


def test_update_event_runs_the_update_build_and_the_new_plan_is_current_only_on_success(
    active_tenant, operation_projects, send_event, codebuild_calls
):
    # given an active tenant on plan Basic of a tier that builds its updates
    tenant = active_tenant
    old_plan = dict(tenant.plan)

    # when the control plane sends TENANT_UPDATE with plan Pro
    update(send_event, tenant)

    # then the tenant is updating, Pro is pending and Basic still current (and in DynamoDB)
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.UPDATING
    assert (tenant.plan, tenant.pending_plan, tenant.pending_tier) == (old_plan, NEW_PLAN, "BASIC")
    assert tenant_item_of(tenant.pk)["planConfig"]["id"] == "plan-basic"
    # and the update build got the pending plan under the usual environment rules
    start, env = started(codebuild_calls, "orchestrator-basic-update")
    assert start["idempotencyToken"] == f"{tenant.pk}:update:1"
    assert (env["TIER"], env["PREVIOUS_TIER"], env["PLAN_ID"], env["MAX_USERS"]) == (
        "BASIC",
        "BASIC",
        "plan-pro",
        "500",
    )
    assert (env["EKS_CLUSTER_NAME"], env["secret"]) == ("demo-eks", "hmac-secret-value")

    # when its build reports success
    build = Build.objects.get(tenant=tenant, purpose=BuildPurpose.UPDATE)
    deployments = OutboxEvent.objects.filter(detail_type=DetailType.TENANT_DEPLOYMENT).count()
    build_outcome(send_event, build)

    # then the tenant is active on Pro, Basic kept as the previous plan; nothing is deployed again
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert (tenant.plan, tenant.previous_plan, tenant.pending_plan) == (NEW_PLAN, old_plan, {})
    assert Build.objects.get(pk=build.pk).status == BuildStatus.SUCCEEDED
    assert OutboxEvent.objects.filter(detail_type=DetailType.TENANT_DEPLOYMENT).count() == deployments
    item = tenant_item_of(tenant.pk)
    assert (item["status"], item["planConfig"]["id"], item["version"]) == ("ACTIVE", "plan-pro", tenant.version)


def test_update_to_another_tier_runs_the_target_tier_s_build_with_both_tier_names(
    active_tenant, premium_tier, send_event, codebuild_calls
):
    # given an active BASIC tenant and a PREMIUM tier that builds updates
    tenant = active_tenant
    plan = {**NEW_PLAN, "id": "plan-premium", "tier": "PREMIUM"}

    # when it is updated to a PREMIUM plan
    update(send_event, tenant, plan)

    # then PREMIUM's update project runs, with PREMIUM's variables and both tiers named
    tenant.refresh_from_db()
    assert (tenant.status, tenant.tier, tenant.pending_tier) == (TenantStatus.UPDATING, "BASIC", "PREMIUM")
    _start, env = started(codebuild_calls, "orchestrator-premium-update")
    assert (env["TIER"], env["PREVIOUS_TIER"], env["EKS_CLUSTER_NAME"]) == ("PREMIUM", "BASIC", "premium-eks")

    # when the build succeeds, the tenant is on PREMIUM
    build_outcome(send_event, Build.objects.get(tenant=tenant, purpose=BuildPurpose.UPDATE))
    tenant.refresh_from_db()
    assert (tenant.status, tenant.tier, tenant.previous_tier) == (TenantStatus.ACTIVE, "PREMIUM", "BASIC")
    assert tenant.plan["id"] == "plan-premium"


def test_failed_update_keeps_the_previous_plan_and_a_retry_succeeds(
    active_tenant, operation_projects, send_event, codebuild_calls
):
    # given an update whose build fails
    tenant = active_tenant
    old_plan = dict(tenant.plan)
    update(send_event, tenant)
    first = Build.objects.get(tenant=tenant, purpose=BuildPurpose.UPDATE)
    build_outcome(send_event, first, succeeding="0", FAILURE_REASON="quota exceeded")

    # then the tenant failed its update on the plan it had, the new one still pending
    tenant.refresh_from_db()
    assert (tenant.status, tenant.status_reason) == (TenantStatus.UPDATE_FAILED, "quota exceeded")
    assert (tenant.plan, tenant.pending_plan) == (old_plan, NEW_PLAN)
    assert tenant_item_of(tenant.pk)["planConfig"]["id"] == "plan-basic"

    # when staff retry it (no plan: the pending one)
    staff = StaffFactory()
    result = tenant_update(tenant=tenant, actor_user=staff, plan=None)

    # then a second attempt builds with its own token, and its success makes the new plan current
    assert result.changed
    second = Build.objects.get(tenant=tenant, purpose=BuildPurpose.UPDATE, attempt=2)
    assert second.idempotency_token == f"{tenant.pk}:update:2"
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.STAFF_ACTION, actor_user=staff).exists()
    assert tenant_update(tenant=tenant, actor_user=staff, plan=None).changed is False  # already updating
    second.refresh_from_db()
    build_outcome(send_event, second)
    tenant.refresh_from_db()
    assert (tenant.status, tenant.plan) == (TenantStatus.ACTIVE, NEW_PLAN)


def test_failed_update_rolled_back_is_active_on_the_previous_plan(active_tenant, operation_projects, send_event):
    # given a failed update
    tenant = active_tenant
    old_plan = dict(tenant.plan)
    update(send_event, tenant)
    build_outcome(send_event, Build.objects.get(tenant=tenant, purpose=BuildPurpose.UPDATE), succeeding="0")
    staff = StaffFactory()

    # when staff roll it back
    result = tenant_update_roll_back(tenant=tenant, actor_user=staff)

    # then the tenant is active on the plan it had, nothing pending, and the roll back is on its timeline
    assert result.changed
    tenant.refresh_from_db()
    assert (tenant.status, tenant.plan, tenant.pending_plan, tenant.pending_tier) == (
        TenantStatus.ACTIVE,
        old_plan,
        {},
        "",
    )
    entry = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION, actor_user=staff)
    assert entry.summary.startswith("Update rolled back")
    assert tenant_update_roll_back(tenant=tenant, actor_user=staff).changed is False


def test_update_without_an_update_project_succeeds_at_once(active_tenant, send_event, codebuild_calls):
    # given a tier without an update project
    tenant = active_tenant

    # when the tenant is updated
    event = update(send_event, tenant)

    # then nothing is built and the new plan is current, both moves on the timeline
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    tenant.refresh_from_db()
    assert (tenant.status, tenant.plan) == (TenantStatus.ACTIVE, NEW_PLAN)
    assert not Build.objects.filter(tenant=tenant, purpose=BuildPurpose.UPDATE).exists()
    moves = TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.TRANSITION).order_by("id")
    assert [entry.details["to"] for entry in moves][-2:] == ["UPDATING", "ACTIVE"]


def test_suspend_then_resume_through_the_intake(active_tenant, operation_projects, send_event, codebuild_calls):
    # given an active tenant of a tier with suspend and resume projects
    tenant = active_tenant

    # when it is suspended and its build succeeds
    send_event(envelope(DetailType.TENANT_SUSPEND, {"tenant": {"id": tenant.pk}, "reason": "unpaid"}))
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPENDING
    start, _env = started(codebuild_calls, "orchestrator-basic-suspend")
    assert start["idempotencyToken"] == f"{tenant.pk}:suspend:1"
    build_outcome(send_event, Build.objects.get(tenant=tenant, purpose=BuildPurpose.SUSPEND))

    # then it is suspended (DynamoDB too)
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPENDED
    assert tenant_item_of(tenant.pk)["status"] == "SUSPENDED"

    # when it is resumed and that build succeeds, it is active again on the same plan
    send_event(envelope(DetailType.TENANT_RESUME, {"tenant": {"id": tenant.pk}}))
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.RESUMING
    build_outcome(send_event, Build.objects.get(tenant=tenant, purpose=BuildPurpose.RESUME))
    tenant.refresh_from_db()
    assert (tenant.status, tenant.plan["id"]) == (TenantStatus.ACTIVE, "plan-basic")


def test_suspend_build_failing_at_codebuild_is_suspend_failed_then_retried(
    active_tenant, operation_projects, send_event
):
    # given a suspension whose CodeBuild build fails without an outcome event
    tenant = active_tenant
    send_event(envelope(DetailType.TENANT_SUSPEND, {"tenant": {"id": tenant.pk}}))
    build = Build.objects.get(tenant=tenant, purpose=BuildPurpose.SUSPEND)
    state = {
        "build-status": "FAILED",
        "project-name": build.project,
        "build-id": build.arn or build.build_id,
        "additional-information": {"phases": [{"phase-type": "BUILD", "phase-status": "FAILED"}]},
    }
    send_event(envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, state))

    # then the tenant is SUSPEND_FAILED, and staff can retry
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPEND_FAILED
    result = tenant_suspend(tenant=tenant, actor_user=StaffFactory())
    assert result.changed
    tenant.refresh_from_db()
    assert (tenant.status, tenant.operation_attempt) == (TenantStatus.SUSPENDING, 2)


def test_a_suspended_tenant_can_be_deprovisioned(active_tenant, send_event, codebuild_calls):
    # given a suspended tenant (the tier has no suspend project: suspended at once)
    tenant = active_tenant
    tenant_suspend(tenant=tenant, actor_user=StaffFactory())
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPENDED

    # when the control plane deprovisions it
    send_event(envelope(DetailType.TENANT_DEPROVISIONING, {"tenant": {"id": tenant.pk}}))

    # then its deprovisioning build runs
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPROVISIONING
    started(codebuild_calls, "orchestrator-basic-deprovision")


def test_update_of_a_provisioning_tenant_is_refused_and_recorded(codebuild_tier, send_event):
    # given a tenant still provisioning
    detail = provisioning_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])

    # when an update arrives
    event = update(send_event, tenant)

    # then the event failed for good, the tenant is untouched and the refusal is on its timeline
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    assert "Update refused" in event.last_error
    tenant.refresh_from_db()
    assert (tenant.status, tenant.pending_plan) == (TenantStatus.PROVISIONING, {})
    assert TenantHistory.objects.filter(tenant=tenant, ref_type="event", ref_id=str(event.pk)).exists()
    # and the staff action is refused as a conflict, recorded with the user
    staff = StaffFactory()
    with pytest.raises(OperationRefused) as refused:
        tenant_update(tenant=tenant, actor_user=staff, plan=NEW_PLAN)
    assert refused.value.status_code == 409
    assert refused.value.fields == {"status": [refused.value.message]}
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.TRANSITION_REFUSED, actor_user=staff).exists()


def test_update_to_an_unknown_tier_is_refused_with_the_field(active_tenant, send_event):
    tenant = active_tenant

    event = update(send_event, tenant, {**NEW_PLAN, "tier": "GOLD"})

    event.refresh_from_db()
    assert (event.status, "Unknown tier 'GOLD'" in event.last_error) == (EventStatus.FAILED, True)
    with pytest.raises(InvalidPlan) as invalid:
        tenant_update(tenant=tenant, actor_user=StaffFactory(), plan={**NEW_PLAN, "tier": "GOLD"})
    assert (invalid.value.status_code, list(invalid.value.fields)) == (400, ["planConfig.tier"])
    tenant.refresh_from_db()
    assert (tenant.status, tenant.pending_plan) == (TenantStatus.ACTIVE, {})


def test_resume_of_an_active_tenant_and_a_replayed_suspend_change_nothing(active_tenant, send_event):
    tenant = active_tenant
    assert tenant_resume(tenant=tenant, actor_user=StaffFactory()).changed is False
    body = envelope(DetailType.TENANT_SUSPEND, {"tenant": {"id": tenant.pk}})

    send_event(body)
    send_event(body)  # EventBridge redelivers
    again = envelope(DetailType.TENANT_SUSPEND, {"tenant": {"id": tenant.pk}})  # the control plane asks twice
    send_event(again)

    tenant.refresh_from_db()
    assert (tenant.status, tenant.operation_attempt) == (TenantStatus.SUSPENDED, 1)
    assert ReceivedEvent.objects.get(event_id=again["id"]).status == EventStatus.PROCESSED


def test_operation_finish_reported_late_changes_nothing(active_tenant):
    # given an active tenant (no operation running)
    tenant = active_tenant
    version = tenant.version

    # when a late result of an update arrives
    operation_finish(tenant_id=tenant.pk, operation=BuildPurpose.UPDATE, succeeded=False, error="late", run_id=7)

    # then it is noted, nothing moves
    tenant.refresh_from_db()
    assert (tenant.status, tenant.version) == (TenantStatus.ACTIVE, version)
    note = TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.NOTE).latest("id")
    assert note.details["run_id"] == 7
    with pytest.raises(ValueError, match="not an operation"):
        operation_finish(tenant_id=tenant.pk, operation=BuildPurpose.PROVISION, succeeded=True, cause=TransitionCause())
