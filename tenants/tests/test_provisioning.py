"""TENANT_PROVISIONING through the real intake: tenant stored, DynamoDB item written, build started in
moto with the exact environment; failures end in PROVISION_FAILED with their reason; re-runs start nothing."""

import json

import pytest
from django.conf import settings

from events.catalogue import DetailType
from events.models import EventStatus, OutboxEvent, ReceivedEvent
from events.services import event_replay
from orchestrator.redaction import MASK
from orchestrator.tests.factories import StaffFactory
from tenants.builders import registry
from tenants.builders.codebuild import CodeBuildBuilder
from tenants.models import Build, BuilderType, BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.provisioning import tenant_retry_provisioning
from tenants.tests.conftest import envelope, outcome_detail, provisioning_detail, provisioning_failed, tenant_item_of

pytestmark = pytest.mark.django_db


def expected_environment(tenant_id: str) -> list[dict[str, str]]:
    document = json.dumps(
        {
            "id": tenant_id,
            "key": "acme",
            "name": "Acme Inc",
            "contacts": [{"email": "ops@acme.example", "firstName": "Ada", "lastName": "L", "isPrimary": True}],
        },
        separators=(",", ":"),
    )
    plain = "PLAINTEXT"
    return [
        {"name": "ACCESS_TOKEN_EXPIRATION", "value": "3600", "type": plain},
        {"name": "API_TOKEN", "value": "tenants/api-token", "type": "SECRETS_MANAGER"},
        {"name": "DB_PASSWORD", "value": "/tenants/db-password", "type": "PARAMETER_STORE"},
        {"name": "EKS_CLUSTER_NAME", "value": "demo-eks", "type": plain},
        {"name": "MAX_USERS", "value": "50", "type": plain},
        {"name": "PLAN_ID", "value": "plan-basic", "type": plain},
        {"name": "TENANT_ID", "value": tenant_id, "type": plain},
        {"name": "TENANT_KEY", "value": "acme", "type": plain},
        {"name": "TENANT_NAME", "value": "Acme Inc", "type": plain},
        {"name": "TIER", "value": "BASIC", "type": plain},
        {"name": "context", "value": "ctx-123", "type": plain},
        {"name": "secret", "value": "hmac-secret-value", "type": plain},
        {"name": "tenant", "value": document, "type": plain},
    ]


def test_happy_path_event_to_deploying(codebuild_tier, send_event, codebuild_calls):
    # Given a CodeBuild tier, when the control plane asks for a tenant
    detail = provisioning_detail()
    tenant_id = detail["tenant"]["id"]
    event = send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    # then the tenant is stored with its plan and is PROVISIONING
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.last_error
    tenant = Tenant.objects.get(pk=tenant_id)
    assert tenant.status == TenantStatus.PROVISIONING
    assert (tenant.key, tenant.name, tenant.tier) == ("acme", "Acme Inc", "BASIC")
    assert tenant.plan == detail["planConfig"]
    assert tenant.builder_config == detail["builderConfig"]

    # and the build was started in moto with exactly this environment and a derived idempotency token
    starts = [body for operation, body in codebuild_calls if operation == "StartBuild"]
    assert len(starts) == 1
    assert starts[0]["projectName"] == "orchestrator-basic-provision"
    assert starts[0]["idempotencyToken"] == f"{tenant_id}:provision:1"
    assert starts[0]["environmentVariablesOverride"] == expected_environment(tenant_id)
    build = Build.objects.get(tenant=tenant)
    assert build.status == BuildStatus.IN_PROGRESS
    moto_builds = CodeBuildBuilder().client.batch_get_builds(ids=[build.build_id])["builds"]
    assert [b["projectName"] for b in moto_builds] == ["orchestrator-basic-provision"]
    assert build.arn == moto_builds[0]["arn"]
    stored = {variable["name"]: variable["value"] for variable in build.environment}
    assert stored["secret"] == MASK
    assert stored["DB_PASSWORD"] == "/tenants/db-password"

    # and DynamoDB holds the tenant item (read back from moto)
    item = tenant_item_of(tenant_id)
    assert item["status"] == "PROVISIONING"
    assert item["version"] == tenant.version
    assert item["tenant"]["key"] == "acme"
    assert item["planConfig"]["tier"] == "BASIC"
    assert item["planConfig"]["sizeConfig"]["MAX_USERS"] == 50
    assert item["builderConfig"]["type"] == "CODE_BUILD"
    tenant.refresh_from_db()
    assert tenant.synced_version == tenant.version

    # When the post-build step reports success
    success = outcome_detail(tenant_id, build.build_id, USER_CALLBACK_ENDPOINT="http://127.0.0.1:9/user-callback")
    outcome = send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, success))

    # then the tenant is DEPLOYING, the build succeeded and TENANT_DEPLOYMENT carries the stored plan
    outcome.refresh_from_db()
    assert outcome.status == EventStatus.PROCESSED, outcome.last_error
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOYING
    build.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED
    deployment = OutboxEvent.objects.get(detail_type=DetailType.TENANT_DEPLOYMENT)
    assert deployment.tenant_id == tenant_id
    assert deployment.detail == {**success, "planConfig": detail["planConfig"]}
    assert tenant_item_of(tenant_id)["status"] == "DEPLOYING"

    # and every event is on the tenant's timeline
    refs = set(TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.EVENT).values_list("ref_id", flat=True))
    assert refs == {str(event.pk), str(outcome.pk)}


def test_unknown_tier_fails_the_tenant_with_the_reason(codebuild_tier, send_event, codebuild_calls):
    detail = provisioning_detail(tier="GOLD")

    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == "Unknown tier 'GOLD': it is not in the tier mapping."
    assert not Build.objects.exists()
    assert codebuild_calls == []
    assert tenant_item_of(tenant.pk)["status"] == "PROVISION_FAILED"


def test_unknown_builder_type_fails_with_the_known_types(codebuild_tier, send_event, codebuild_calls):
    detail = provisioning_detail(builder="JENKINS")

    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == (
        "Unknown builder type 'JENKINS' in builderConfig.type; known types: CODE_BUILD, LOCAL."
    )
    assert codebuild_calls == []


def test_the_builders_a_tier_may_allow_are_the_registered_builders():
    assert sorted(BuilderType.values) == registry.known_types()


def test_invalid_variable_name_is_refused_at_the_intake(codebuild_tier, client, codebuild_calls):
    detail = provisioning_detail(override={"bad-name": "x"})

    response = client.post(
        "/api/events/",
        data=json.dumps(envelope(DetailType.TENANT_PROVISIONING, detail)),
        content_type="application/json",
        HTTP_X_API_KEY="test-intake-key",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "detail.builderConfig.config.environmentOverride": [
            "'bad-name' is not a valid name: use letters, digits and underscores, not starting with a digit."
        ]
    }
    assert not ReceivedEvent.objects.exists()
    assert not Tenant.objects.exists()
    assert codebuild_calls == []


def test_missing_codebuild_project_fails_the_build_and_the_tenant(codebuild_tier, send_event):
    codebuild_tier.provision_project = "no-such-project"
    codebuild_tier.save()
    detail = provisioning_detail()

    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert "ResourceNotFoundException" in tenant.status_reason
    build = Build.objects.get(tenant=tenant)
    assert build.status == BuildStatus.FAILED
    assert build.build_id == ""


def test_same_event_replayed_starts_no_second_build(codebuild_tier, send_event, codebuild_calls, run_commit_hooks):
    body = envelope(DetailType.TENANT_PROVISIONING, provisioning_detail())
    event = send_event(body)

    # the same delivery again (EventBridge at-least-once) and a staff replay of the event
    send_event(body)
    with run_commit_hooks():
        event_replay(event_pk=event.pk, user=None)

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert event.attempts == 2
    assert Build.objects.count() == 1
    assert [operation for operation, _ in codebuild_calls].count("StartBuild") == 1


def test_event_for_a_provisioning_tenant_is_refused_and_recorded(codebuild_tier, send_event, codebuild_calls):
    detail = provisioning_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    second = send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    second.refresh_from_db()
    assert second.status == EventStatus.FAILED
    assert "refused" in second.last_error
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISIONING
    assert Build.objects.count() == 1
    entry = TenantHistory.objects.get(tenant=tenant, ref_type="event", ref_id=str(second.pk))
    assert entry.kind == HistoryKind.EVENT
    assert "Provisioning, not pending or failed" in entry.summary


def test_key_already_used_by_another_tenant_is_refused(codebuild_tier, send_event):
    send_event(envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(key="acme")))

    other = send_event(envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(key="acme")))

    other.refresh_from_db()
    assert other.status == EventStatus.FAILED
    assert "already used by tenant" in other.last_error
    assert Tenant.objects.count() == 1


def test_failed_tenant_is_reprovisioned_by_a_new_event_as_a_new_attempt(codebuild_tier, send_event, codebuild_calls):
    detail = provisioning_detail(tier="GOLD")
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    detail["planConfig"]["tier"] = "BASIC"
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISIONING
    assert tenant.tier == "BASIC"
    assert tenant.provisioning_attempt == 2
    assert Build.objects.get().idempotency_token == f"{tenant.pk}:provision:2"


def test_staff_retry_starts_a_new_attempt_recorded_with_the_user(codebuild_tier, send_event, codebuild_calls):
    tenant, _ = provisioning_failed(send_event)
    staff = StaffFactory()

    result = tenant_retry_provisioning(tenant=tenant, actor_user=staff)
    again = tenant_retry_provisioning(tenant=tenant, actor_user=staff)

    assert result.changed
    assert result.build.attempt == 2
    assert not again.changed
    assert "already provisioning" in again.message
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISIONING
    assert Build.objects.count() == 2
    tokens = [body["idempotencyToken"] for operation, body in codebuild_calls if operation == "StartBuild"]
    assert tokens == [f"{tenant.pk}:provision:1", f"{tenant.pk}:provision:2"]
    staff_entries = TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert [(e.actor, e.actor_user) for e in staff_entries] == [(staff.username, staff)]


def test_dynamodb_table_layout_is_the_originals(codebuild_tier, send_event):
    detail = provisioning_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    item = tenant_item_of(detail["tenant"]["id"])

    assert set(item) == {"tenantId", "tenant", "planConfig", "builderConfig", "appConfig", "status", "version"}
    assert settings.DYNAMODB_TENANT_TABLE.startswith("orchestrator-tenants")
