"""sbt-aws's requests through the real intake: onboarding provisions (the request's fields as build
variables), offboarding deprovisions, activate/deactivate are refused on the event; the answers sbt's
control plane reads go to the outbox (sbt's bus and source, its fields exactly), only for its tenants."""

import json

import pytest
from django.conf import settings

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus, OutboxEvent, ReceivedEvent
from events.services import event_replay
from orchestrator.tests.factories import StaffFactory
from tenants.bootstrap import ensure_codebuild_projects
from tenants.models import Build, BuildPurpose, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.operations import tenant_resume, tenant_suspend
from tenants.tests.conftest import envelope, provisioning_detail
from tenants.tests.factories import TierFactory
from tenants.tests.sbt import (
    TENANT_DATA_VARIABLES,
    assert_sbt_answer,
    codebuild_state_change,
    exported_variables,
    new_onboarding,
    outbox_answer,
    sbt_request,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def sbt_on(settings):
    settings.EVENT_DIALECTS = ["original", "sbt"]
    settings.SBT_TENANT_DATA_VARIABLES = TENANT_DATA_VARIABLES


@pytest.fixture
def basic_tier(db, aws):
    """sbt-aws's sample tier ``basic``, its script jobs as CodeBuild projects in moto."""
    tier = TierFactory(name="basic", provision_project="sbt-provisioning", deprovision_project="sbt-deprovisioning")
    ensure_codebuild_projects()
    return tier


def assert_answered(fixture, request, reason=""):
    """The outbox holds one answer of ``fixture``'s type, sbt-aws's shape for ``request``'s registration."""
    [answer] = answers(fixture)
    assert_sbt_answer(answer, fixture, request, reason=reason)


def answers(detail_type=None):
    rows = OutboxEvent.objects.filter(detail_type__startswith="sbt_aws_").order_by("pk")
    return [outbox_answer(row) for row in (rows.filter(detail_type=detail_type) if detail_type else rows)]


@pytest.fixture
def onboarded(basic_tier, send_event):
    """A tenant sbt-aws asked for, PROVISIONING with its build started in moto."""
    request = new_onboarding()
    event = send_event(request)
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.last_error
    tenant = Tenant.objects.get(pk=request["detail"]["tenantId"])
    return request, tenant, Build.objects.get(tenant=tenant, purpose=BuildPurpose.PROVISION)


def deploy(send_event):
    """Deliver TENANT_DEPLOYMENT from the outbox to the intake, as the bus's rule does."""
    row = OutboxEvent.objects.filter(detail_type=DetailType.TENANT_DEPLOYMENT).latest("pk")
    return send_event(envelope(DetailType.TENANT_DEPLOYMENT, row.detail))


@pytest.fixture
def active(onboarded, send_event):
    request, tenant, build = onboarded
    change = codebuild_state_change(build, "SUCCEEDED", exported=exported_variables("sbt_aws_provisionSuccess"))
    send_event(envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, change))
    deploy(send_event)
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE, tenant.status_reason
    return request, tenant


def test_onboarding_provisions_the_tenant_with_the_request_as_build_variables(onboarded, codebuild_calls):
    request, tenant, build = onboarded
    detail = request["detail"]

    assert tenant.status == TenantStatus.PROVISIONING
    assert (tenant.key, tenant.name, tenant.tier) == (detail["tenantId"], "tenant12345", "basic")
    assert tenant.builder_config["type"] == "CODE_BUILD"
    assert tenant.primary_contact == {"email": "admin+tenant12345@example.com", "isPrimary": True}
    variables = {variable["name"]: variable["value"] for variable in build.environment}
    assert {name: variables[name] for name in ("tenantId", "tier", "tenantName", "email", "tenantRegistrationId")} == {
        "tenantId": detail["tenantId"],
        "tier": "basic",
        "tenantName": "tenant12345",
        "email": "admin+tenant12345@example.com",
        "tenantRegistrationId": detail["tenantRegistrationId"],
    }
    assert json.loads(variables["prices"]) == detail["prices"]  # a JSON variable, as sbt's script jobs get it
    assert build.project == "sbt-provisioning"
    entry = TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.EVENT).get()
    assert entry.summary == "sbt_aws_onboardingRequest received (tier basic, builder CODE_BUILD)"
    assert answers() == []  # nothing to answer yet


def test_a_failing_build_that_reports_nothing_is_answered_with_provision_failure(onboarded, send_event):
    """sbt-aws issue 73: a failing provisioning script sends no failure event; CodeBuild's own event does."""
    request, tenant, build = onboarded
    phases = [{"phase-type": "BUILD", "phase-status": "FAILED", "phase-context": ["COMMAND_EXECUTION_ERROR: exit 1"]}]

    send_event(
        envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_state_change(build, "FAILED", phases=phases))
    )

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert_answered(
        "sbt_aws_provisionFailure",
        request,
        reason="Provision build failed: BUILD FAILED: COMMAND_EXECUTION_ERROR: exit 1",
    )


def test_a_succeeding_build_is_answered_with_its_exported_variables_once_the_tenant_is_active(onboarded, send_event):
    request, tenant, build = onboarded
    change = codebuild_state_change(build, "SUCCEEDED", exported=exported_variables("sbt_aws_provisionSuccess"))

    codebuild = send_event(envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, change))

    # CodeBuild's success stands for the script job's: its success event is stored and processed
    outcome = ReceivedEvent.objects.get(event_id=f"{codebuild.event_id}/outcome")
    assert (outcome.detail_type, outcome.source, outcome.status) == (
        DetailType.TENANT_PROVISIONING_SUCCESS,
        settings.EVENT_SOURCE,
        EventStatus.PROCESSED,
    )
    assert outcome.detail["tenantS3Bucket"] == "tenanttemplatestack-5f5c5d0e-mybucket-1a2b3c4d5e6f"
    assert outcome.detail["CODEBUILD_BUILD_ID"] == build.build_id
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOYING
    assert answers() == []  # not before the tenant is up

    deploy(send_event)

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert_answered("sbt_aws_provisionSuccess", request)

    # CodeBuild's event again (a redelivery replayed by staff) stores no second outcome
    codebuild.refresh_from_db()
    event_replay(event_pk=codebuild.pk, user=None)
    assert ReceivedEvent.objects.filter(detail_type=DetailType.TENANT_PROVISIONING_SUCCESS).count() == 1


def test_an_unknown_tier_is_answered_with_provision_failure(basic_tier, send_event):
    request = new_onboarding(tier="platinum")

    send_event(request)

    tenant = Tenant.objects.get(pk=request["detail"]["tenantId"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert_answered(
        "sbt_aws_provisionFailure", request, reason="Unknown tier 'platinum': it is not in the tier mapping."
    )


def test_offboarding_deprovisions_and_is_answered_with_deprovision_success(active, send_event):
    request, tenant = active
    offboarding = sbt_request(
        "sbt_aws_offboardingRequest",
        tenantId=tenant.pk,
        tenantRegistrationId=request["detail"]["tenantRegistrationId"],
    )

    event = send_event(offboarding)

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.last_error
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPROVISIONING
    build = Build.objects.get(tenant=tenant, purpose=BuildPurpose.DEPROVISION)
    assert build.project == "sbt-deprovisioning"

    change = codebuild_state_change(build, "SUCCEEDED", exported=exported_variables("sbt_aws_deprovisionSuccess"))
    send_event(envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, change))

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.INACTIVE
    assert_answered("sbt_aws_deprovisionSuccess", request)


@pytest.mark.parametrize(
    ("request_type", "fixture"),
    [
        ("sbt_aws_activateRequest", "sbt_aws_activateFailure"),
        ("sbt_aws_deactivateRequest", "sbt_aws_deactivateFailure"),
    ],
)
def test_activate_and_deactivate_are_refused_on_the_event_and_answered(active, send_event, request_type, fixture):
    request, tenant = active
    registration = request["detail"]["tenantRegistrationId"]

    event = send_event(sbt_request(request_type, tenantId=tenant.pk, tenantRegistrationId=registration))

    event.refresh_from_db()
    reason = (
        f"EventRejected: {request_type} refused: Orchestrator cannot suspend or resume a tenant yet "
        f"(tenant {tenant.pk} stays Active)."
    )
    assert (event.status, event.last_error) == (EventStatus.FAILED, reason)
    assert EventAttempt.objects.get(event=event).outcome == EventAttempt.Outcome.REJECTED
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert TenantHistory.objects.filter(tenant=tenant, ref_type="event", ref_id=str(event.pk)).get().details["refused"]
    assert_answered(fixture, request, reason=reason)


def test_offboarding_an_unknown_tenant_fails_and_is_answered_with_deprovision_failure(basic_tier, send_event):
    offboarding = sbt_request("sbt_aws_offboardingRequest")

    event = send_event(offboarding)

    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    reason = f"EventRejected: sbt_aws_offboardingRequest for unknown tenant {offboarding['detail']['tenantId']}."
    assert_answered("sbt_aws_deprovisionFailure", offboarding, reason=reason)


def test_tenants_of_the_original_dialect_get_no_sbt_answers(codebuild_tier, send_event):
    succeeding, failing = provisioning_detail(key="acme"), provisioning_detail(key="globex")
    for detail in (succeeding, failing):
        send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    built = Build.objects.get(tenant_id=succeeding["tenant"]["id"])
    broken = Build.objects.get(tenant_id=failing["tenant"]["id"])

    send_event(
        envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_state_change(built, "SUCCEEDED", exported=[]))
    )
    send_event(envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_state_change(broken, "FAILED")))

    built.refresh_from_db()
    assert built.awaiting_outcome_event is True  # their post-build step reports, not CodeBuild
    assert not ReceivedEvent.objects.filter(detail_type=DetailType.TENANT_PROVISIONING_SUCCESS).exists()
    assert Tenant.objects.get(pk=failing["tenant"]["id"]).status == TenantStatus.PROVISION_FAILED
    assert answers() == []


def test_an_active_sbt_tenant_suspended_and_resumed_by_staff_gets_no_second_onboarding_answer(active):
    # given an sbt-aws tenant, active and answered once
    _request, tenant = active
    before = len(answers())

    # when staff suspend and resume it (the tier has no such projects: at once)
    staff = StaffFactory()
    tenant_suspend(tenant=tenant, actor_user=staff)
    tenant_resume(tenant=tenant, actor_user=staff)

    # then it is active again and sbt-aws heard nothing more
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert len(answers()) == before
