"""TENANT_DEPROVISIONING: ACTIVE → DEPROVISIONING with the tier's deprovision project; its outcome →
INACTIVE (DynamoDB item kept, marked inactive) or DEPROVISION_FAILED (retryable)."""

import pytest

from events.catalogue import DetailType
from events.models import EventStatus
from orchestrator.tests.factories import StaffFactory
from tenants.models import Build, BuildPurpose, BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.deprovisioning import tenant_deprovision
from tenants.tests.conftest import envelope, outcome_detail, provisioning_detail, tenant_item_of

pytestmark = pytest.mark.django_db


def deprovision(send_event, tenant):
    return send_event(envelope(DetailType.TENANT_DEPROVISIONING, {"tenant": {"id": tenant.pk}}))


def test_deprovisioning_runs_the_deprovision_project_then_inactive(active_tenant, send_event, codebuild_calls):
    tenant = active_tenant

    deprovision(send_event, tenant)

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPROVISIONING
    build = Build.objects.get(tenant=tenant, purpose=BuildPurpose.DEPROVISION)
    start = next(body for operation, body in codebuild_calls if operation == "StartBuild")
    assert start["projectName"] == "orchestrator-basic-deprovision"
    assert start["idempotencyToken"] == f"{tenant.pk}:deprovision:1"
    names = [variable["name"] for variable in start["environmentVariablesOverride"]]
    assert {"TENANT_ID", "tenant", "secret", "EKS_CLUSTER_NAME", "DB_PASSWORD"} <= set(names)  # same env rules

    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id)))

    tenant.refresh_from_db()
    build.refresh_from_db()
    assert tenant.status == TenantStatus.INACTIVE
    assert build.status == BuildStatus.SUCCEEDED
    item = tenant_item_of(tenant.pk)
    assert item is not None
    assert item["status"] == "INACTIVE"
    assert item["planConfig"]["tier"] == "BASIC"


def test_deprovision_failure_is_retryable_by_staff(active_tenant, send_event, codebuild_calls):
    tenant = active_tenant
    deprovision(send_event, tenant)
    build = Build.objects.get(tenant=tenant, purpose=BuildPurpose.DEPROVISION)

    send_event(
        envelope(
            DetailType.TENANT_PROVISIONING_FAILURE,
            outcome_detail(tenant.pk, build.build_id, succeeding="0", FAILURE_REASON="namespace stuck"),
        )
    )
    tenant.refresh_from_db()
    assert (tenant.status, tenant.status_reason) == (TenantStatus.DEPROVISION_FAILED, "namespace stuck")

    staff = StaffFactory()
    result = tenant_deprovision(tenant=tenant, actor_user=staff)

    assert result.changed
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPROVISIONING
    assert tenant.deprovisioning_attempt == 2
    assert Build.objects.filter(tenant=tenant, purpose=BuildPurpose.DEPROVISION).count() == 2
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.STAFF_ACTION, actor_user=staff).exists()
    assert tenant_deprovision(tenant=tenant, actor_user=staff).changed is False  # already deprovisioning


def test_deprovisioning_a_tenant_that_is_not_active_is_refused(codebuild_tier, send_event):
    detail = provisioning_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])

    event = deprovision(send_event, tenant)

    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISIONING
    assert not Build.objects.filter(purpose=BuildPurpose.DEPROVISION).exists()
    assert TenantHistory.objects.filter(tenant=tenant, ref_type="event", ref_id=str(event.pk)).exists()


def test_tier_without_deprovision_project_fails_with_the_reason(active_tenant, send_event, codebuild_tier):
    codebuild_tier.deprovision_project = ""
    codebuild_tier.save()

    deprovision(send_event, active_tenant)

    active_tenant.refresh_from_db()
    assert active_tenant.status == TenantStatus.DEPROVISION_FAILED
    assert active_tenant.status_reason == "Tier 'BASIC' has no deprovision project."


def test_deprovisioning_event_replayed_starts_one_build(active_tenant, send_event, codebuild_calls):
    body = envelope(DetailType.TENANT_DEPROVISIONING, {"tenant": {"id": active_tenant.pk}})

    send_event(body)
    send_event(body)

    assert Build.objects.filter(purpose=BuildPurpose.DEPROVISION).count() == 1
