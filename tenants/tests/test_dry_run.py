"""The dry run of the tenant lifecycle's events: what provisioning and deprovisioning would do, from the
handlers' own rules, with nothing written, queued or sent to AWS; the real run then does what it showed."""

import json

import pytest
from rest_framework.test import APIClient

from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent
from orchestrator.redaction import MASK
from orchestrator.tests.factories import staff_user
from orchestrator.tests.side_effects import side_effects_counted
from tenants.models import Build, Tenant, TenantStatus
from tenants.tests.conftest import envelope, provisioning_detail
from tenants.tests.factories import TenantFactory, TierFactory
from tenants.tests.sbt import new_onboarding

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api():
    client = APIClient()
    client.force_authenticate(staff_user("read_only"))
    return client


def dry_run(staff_api, body):
    response = staff_api.post("/api/events/dry-run/", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def test_provisioning_shows_the_build_it_would_start_and_does_nothing(codebuild_tier, staff_api, send_event):
    # Given a CodeBuild tier with SSM and Secrets Manager variables, and a provisioning event for a new tenant
    body = envelope(DetailType.TENANT_PROVISIONING, provisioning_detail())
    tenant_id = body["detail"]["tenant"]["id"]

    # When staff dry-run it
    with side_effects_counted() as effects:
        answer = dry_run(staff_api, body)

    # Then nothing was written, queued, scheduled after commit or asked of AWS
    assert effects.none(), effects
    assert not Tenant.objects.exists()
    assert not ReceivedEvent.objects.exists()
    # and it shows the intake's answer, the handler and the attempt
    assert answer["intake"]["answer"] == "accepted"
    assert answer["handler"]["name"] == "tenants.services.provisioning.tenant_provision"
    effect = answer["effect"]
    assert effect["outcome"] == "build_starts"
    assert effect["tenant"] == {
        "id": tenant_id,
        "exists": False,
        "current_status": None,
        "current_status_label": None,
        "resulting_status": TenantStatus.PROVISIONING,
        "resulting_status_label": "Provisioning",
    }
    assert effect["transitions"] == [
        {"from": TenantStatus.PENDING_PROVISION, "to": TenantStatus.PROVISIONING, "allowed": True}
    ]
    assert effect["tier"]["builder_allowed"]
    assert "Tier BASIC allows CODE_BUILD" in effect["tier"]["why"]
    assert effect["build"] == {
        "purpose": "provision",
        "attempt": 1,
        "builder": "CODE_BUILD",
        "project": "orchestrator-basic-provision",
        "idempotency_token": f"{tenant_id}:provision:1",
    }
    variables = {row["name"]: row for row in effect["environment"]}
    assert variables["secret"]["value"] == MASK  # a plaintext secret is masked
    assert variables["DB_PASSWORD"] == {
        "name": "DB_PASSWORD",
        "value": "/tenants/db-password",
        "type": "PARAMETER_STORE",
        "resolved_by_builder": True,
    }
    assert variables["API_TOKEN"]["resolved_by_builder"]
    assert variables["API_TOKEN"]["value"] == "tenants/api-token"
    assert "hmac-secret-value" not in json.dumps(answer)

    # When the same event is received for real (the recorder counts the real path's effects)
    with side_effects_counted() as real:
        event = send_event(body)

    # Then it did what the dry run showed: the same status, build and environment
    assert real.writes
    assert real.aws
    assert real.tasks
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.last_error
    tenant = Tenant.objects.get(pk=tenant_id)
    assert tenant.status == effect["tenant"]["resulting_status"]
    build = Build.objects.get(tenant=tenant)
    assert (build.project, build.idempotency_token) == (
        effect["build"]["project"],
        effect["build"]["idempotency_token"],
    )
    shown = [{key: row[key] for key in ("name", "value", "type")} for row in effect["environment"]]
    assert build.environment == shown


def test_a_builder_the_tier_does_not_allow_is_refused_as_the_handler_refuses_it(codebuild_tier, staff_api, send_event):
    # Given a tier that allows CODE_BUILD only, and an event naming LOCAL
    body = envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(builder="LOCAL"))

    # When staff dry-run it
    with side_effects_counted() as effects:
        effect = dry_run(staff_api, body)["effect"]

    # Then it would be refused with the tier's reason, and nothing happened
    assert effects.none(), effects
    assert effect["outcome"] == "refused"
    assert "Tier BASIC does not allow builder LOCAL" in effect["reason"]
    assert effect["tenant"]["resulting_status"] is None
    assert effect["transitions"] == []
    # and the real handler refuses it with the same words
    event = send_event(body)
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    assert effect["reason"] in event.last_error


def test_a_tenant_that_is_already_active_stays_active(codebuild_tier, staff_api):
    # Given an active tenant
    tenant = TenantFactory(status=TenantStatus.ACTIVE)
    body = envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(tenant_id=tenant.pk, key=tenant.key))

    # When its provisioning is dry-run
    effect = dry_run(staff_api, body)["effect"]

    # Then it would be refused, the tenant staying where it is
    assert effect["outcome"] == "refused"
    assert f"tenant {tenant.pk} is Active, not pending or failed" in effect["reason"]
    assert (effect["tenant"]["current_status"], effect["tenant"]["resulting_status"]) == ("ACTIVE", "ACTIVE")


def test_an_unknown_tier_fails_the_attempt(db, staff_api):
    # Given no tier GOLD
    body = envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(tier="GOLD"))

    # When it is dry-run
    effect = dry_run(staff_api, body)["effect"]

    # Then the attempt would start and fail with the reason
    assert effect["outcome"] == "attempt_fails"
    assert effect["reason"] == "Unknown tier 'GOLD': it is not in the tier mapping."
    assert effect["tenant"]["resulting_status"] == TenantStatus.PROVISION_FAILED
    assert [step["to"] for step in effect["transitions"]] == [TenantStatus.PROVISIONING, TenantStatus.PROVISION_FAILED]
    assert effect["tier"]["found"] is False
    assert effect["build"] is None


def test_deprovisioning_an_active_tenant_shows_the_deprovision_build(db, staff_api):
    # Given an active tenant on a tier with a deprovisioning project
    TierFactory(name="BASIC", provision_project="p", deprovision_project="basic-deprovision")
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC")
    body = envelope(DetailType.TENANT_DEPROVISIONING, {"tenant": {"id": tenant.pk}})

    # When it is dry-run
    with side_effects_counted() as effects:
        effect = dry_run(staff_api, body)["effect"]

    # Then it shows the deprovisioning attempt, and nothing happened
    assert effects.none(), effects
    assert effect["outcome"] == "build_starts"
    assert effect["build"]["project"] == "basic-deprovision"
    assert effect["build"]["idempotency_token"] == f"{tenant.pk}:deprovision:1"
    assert effect["tenant"]["resulting_status"] == TenantStatus.DEPROVISIONING
    tenant.refresh_from_db()
    assert (tenant.status, tenant.deprovisioning_attempt) == (TenantStatus.ACTIVE, 0)


def test_deprovisioning_an_unknown_tenant_is_refused(db, staff_api):
    body = envelope(DetailType.TENANT_DEPROVISIONING, {"tenant": {"id": "nobody"}})

    effect = dry_run(staff_api, body)["effect"]

    assert effect["outcome"] == "refused"
    assert effect["reason"] == "TENANT_DEPROVISIONING for unknown tenant nobody."
    assert effect["tenant"]["exists"] is False


def test_the_admin_form_shows_the_attempt_with_secrets_masked(codebuild_tier, client):
    # Given staff allowed to read events, and a provisioning event
    client.force_login(staff_user("read_only"))
    body = envelope(DetailType.TENANT_PROVISIONING, provisioning_detail())

    # When they dry-run it in the admin form
    page = client.post("/admin/events/receivedevent/dry-run/", {"event": json.dumps(body)})

    # Then the page shows the status change, the builder and the environment, secrets masked
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-outcome="build_starts"' in html
    assert '<td data-status="resulting">Provisioning</td>' in html
    assert 'data-builder="CODE_BUILD"' in html
    assert "<code>/tenants/db-password</code>" in html
    assert "resolved by the builder, not here" in html
    shown = html.split('id="dry-run-result"', 1)[1]  # the form above echoes what was typed, to edit it again
    assert "hmac-secret-value" not in shown
    assert not Tenant.objects.exists()


def test_sbt_onboarding_is_shown_as_the_provisioning_it_maps_to(db, staff_api, settings):
    # Given the sbt dialect on, sbt-aws's sample tier, and an onboarding request
    settings.EVENT_DIALECTS = ["original", "sbt"]
    TierFactory(name="basic", provision_project="sbt-provisioning", deprovision_project="sbt-deprovisioning")
    request = new_onboarding()

    # When it is dry-run
    with side_effects_counted() as effects:
        answer = dry_run(staff_api, request)

    # Then it is the provisioning of that tenant on its tier's project, and nothing happened
    assert effects.none(), effects
    assert answer["handler"]["name"] == "tenants.services.sbt.sbt_onboarding_apply"
    effect = answer["effect"]
    assert effect["outcome"] == "build_starts"
    assert effect["tenant"]["id"] == request["detail"]["tenantId"]
    assert effect["build"]["project"] == "sbt-provisioning"
    assert not Tenant.objects.exists()
