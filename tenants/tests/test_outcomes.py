"""Outcome events: success → DEPLOYING + TENANT_DEPLOYMENT, failure → PROVISION_FAILED with the reason,
duplicates and late news change nothing; deployment outcomes; CodeBuild's own state changes."""

import pytest

from events.catalogue import DetailType
from events.models import EventStatus, OutboxEvent
from tenants.models import Build, BuildStatus, HistoryKind, TenantHistory, TenantStatus
from tenants.services.lifecycle import tenant_transition
from tenants.services.provisioning import tenant_retry_provisioning
from tenants.signals import tenant_status_changed
from tenants.tests.conftest import envelope, outcome_detail, provisioning_started, tenant_item_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def provisioning(codebuild_tier, send_event):
    """A tenant PROVISIONING with its CodeBuild build started in moto."""
    return provisioning_started(send_event)


@pytest.fixture
def status_signals():
    received = []

    def listener(*, change, **_):
        received.append(change)

    tenant_status_changed.connect(listener)
    yield received
    tenant_status_changed.disconnect(listener)


def test_failure_event_fails_the_tenant_with_the_reason_and_signals_it(provisioning, send_event, status_signals):
    tenant, build = provisioning
    detail = outcome_detail(tenant.pk, build.build_id, succeeding="0", FAILURE_REASON="terraform apply failed")

    event = send_event(envelope(DetailType.TENANT_PROVISIONING_FAILURE, detail))

    tenant.refresh_from_db()
    build.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == "terraform apply failed"
    assert (build.status, build.status_reason) == (BuildStatus.FAILED, "terraform apply failed")
    assert not OutboxEvent.objects.exists()
    assert tenant_item_of(tenant.pk)["status"] == "PROVISION_FAILED"
    # what the webhooks app needs to tell the control plane
    assert status_signals[-1].to_status == TenantStatus.PROVISION_FAILED
    assert status_signals[-1].cause.event_pk == event.pk
    assert status_signals[-1].cause.build_pk == build.pk


def test_success_event_saying_not_succeeding_is_a_failure(provisioning, send_event):
    tenant, build = provisioning

    send_event(
        envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id, succeeding="0"))
    )

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == f"{build.build_id} reported failure (CODEBUILD_BUILD_SUCCEEDING=0)"
    assert not OutboxEvent.objects.exists()


def test_duplicate_success_publishes_one_deployment(provisioning, send_event):
    tenant, build = provisioning
    detail = outcome_detail(tenant.pk, build.build_id)

    first = send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, detail))
    second = send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, detail))  # another id, same news

    second.refresh_from_db()
    assert second.status == EventStatus.PROCESSED
    assert second.result["outcome"] == "duplicate"
    assert OutboxEvent.objects.filter(detail_type=DetailType.TENANT_DEPLOYMENT).count() == 1
    entries = TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.EVENT, ref_id__in=[first.pk, second.pk])
    assert entries.count() == 2


def test_outcome_without_build_id_matches_the_running_build(provisioning, send_event):
    tenant, build = provisioning

    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk)))

    build.refresh_from_db()
    tenant.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED
    assert tenant.status == TenantStatus.DEPLOYING


def test_late_outcome_of_an_earlier_attempt_does_not_move_the_tenant(provisioning, send_event):
    tenant, first_build = provisioning
    send_event(
        envelope(
            DetailType.TENANT_PROVISIONING_FAILURE, outcome_detail(tenant.pk, first_build.build_id, succeeding="0")
        )
    )
    tenant_retry_provisioning(tenant=tenant, actor_user=None)

    late = send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, first_build.build_id)))

    late.refresh_from_db()
    tenant.refresh_from_db()
    assert late.result["outcome"] == "stale"
    assert tenant.status == TenantStatus.PROVISIONING
    assert tenant.provisioning_attempt == 2
    assert not OutboxEvent.objects.exists()


def test_success_for_a_failed_tenant_is_refused_and_recorded(provisioning, send_event):
    tenant, build = provisioning
    tenant_transition(tenant=tenant, to=TenantStatus.PROVISION_FAILED, reason="gave up")
    # the failed build was the current one; a success for a tenant that failed by another route
    Build.objects.filter(pk=build.pk).update(status=BuildStatus.TIMED_OUT)

    event = send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id)))

    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    assert "refused" in event.last_error
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert TenantHistory.objects.filter(tenant=tenant, ref_type="event", ref_id=str(event.pk)).exists()


def test_outcome_for_an_unknown_tenant_is_refused(aws, db, send_event):
    event = send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail("nobody")))

    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    assert "unknown tenant nobody" in event.last_error


def test_deployment_failure_moves_deploying_to_deploy_failed(provisioning, send_event):
    tenant, build = provisioning
    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id)))

    send_event(envelope(DetailType.TENANT_DEPLOYMENT_FAILURE, {"tenant": {"id": tenant.pk}, "reason": "bootstrap 500"}))

    tenant.refresh_from_db()
    assert (tenant.status, tenant.status_reason) == (TenantStatus.DEPLOY_FAILED, "bootstrap 500")


def test_deployment_failure_for_an_active_tenant_is_only_recorded(provisioning, send_event):
    tenant, build = provisioning
    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id)))
    tenant_transition(tenant=tenant, to=TenantStatus.ACTIVE)

    event = send_event(envelope(DetailType.TENANT_DEPLOYMENT_FAILURE, {"tenant": {"id": tenant.pk}, "reason": "late"}))

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    entry = TenantHistory.objects.get(tenant=tenant, ref_type="event", ref_id=str(event.pk))
    assert "no status change" in entry.summary


def test_deployment_success_is_recorded_on_the_timeline(provisioning, send_event):
    tenant, build = provisioning
    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id)))

    event = send_event(envelope(DetailType.TENANT_DEPLOYMENT_SUCCESS, {"tenant": f'{{"id": "{tenant.pk}"}}'}))

    entry = TenantHistory.objects.get(tenant=tenant, ref_type="event", ref_id=str(event.pk))
    assert entry.kind == HistoryKind.EVENT
    assert entry.summary == "TENANT_DEPLOYMENT_SUCCESS"


def codebuild_change(build: Build, status: str, **info) -> dict:
    return {
        "build-status": status,
        "project-name": build.project,
        "build-id": build.arn,
        "current-phase": "COMPLETED",
        "additional-information": {"build-complete": status != "IN_PROGRESS", **info},
    }


def test_codebuild_failure_without_failure_event_fails_the_tenant(provisioning, send_event):
    tenant, build = provisioning
    phases = [{"phase-type": "BUILD", "phase-status": "FAILED", "phase-context": ["COMMAND_EXECUTION_ERROR: exit 2"]}]

    event = send_event(
        envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_change(build, "FAILED", phases=phases))
    )

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.last_error
    build.refresh_from_db()
    tenant.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.status_reason == "BUILD FAILED: COMMAND_EXECUTION_ERROR: exit 2"
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == "Provision build failed: BUILD FAILED: COMMAND_EXECUTION_ERROR: exit 2"

    # the failure event that follows is a duplicate: recorded, nothing moves
    late = send_event(
        envelope(DetailType.TENANT_PROVISIONING_FAILURE, outcome_detail(tenant.pk, build.build_id, succeeding="0"))
    )
    late.refresh_from_db()
    assert late.result["outcome"] == "duplicate"


def test_codebuild_success_waits_for_the_success_event(provisioning, send_event):
    tenant, build = provisioning

    send_event(envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_change(build, "SUCCEEDED")))

    build.refresh_from_db()
    tenant.refresh_from_db()
    assert build.status == BuildStatus.SUCCEEDED
    assert build.awaiting_outcome_event is True
    assert tenant.status == TenantStatus.PROVISIONING

    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id)))
    build.refresh_from_db()
    tenant.refresh_from_db()
    assert build.awaiting_outcome_event is False
    assert tenant.status == TenantStatus.DEPLOYING
    assert OutboxEvent.objects.filter(detail_type=DetailType.TENANT_DEPLOYMENT).count() == 1


NOT_HTTPS_LINKS = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://logs.example/build/1",
    "//logs.example/build/1",
    "https://",
    " https://logs.example/build/1",
]


@pytest.mark.parametrize("link", NOT_HTTPS_LINKS)
def test_a_logs_deep_link_that_is_not_https_is_dropped(provisioning, send_event, caplog, link):
    _tenant, build = provisioning
    before = build.logs_url

    send_event(
        envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_change(build, "FAILED", logs={"deep-link": link}))
    )

    # then the state change is applied without the link, and the reason is logged
    build.refresh_from_db()
    assert build.status == BuildStatus.FAILED
    assert build.logs_url == before
    assert f"build {build.pk} logs: link dropped, not an absolute https URL" in caplog.text


def test_an_https_logs_deep_link_is_stored(provisioning, send_event):
    _tenant, build = provisioning
    link = "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/x"

    send_event(
        envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_change(build, "FAILED", logs={"deep-link": link}))
    )

    build.refresh_from_db()
    assert build.logs_url == link


def test_codebuild_change_for_a_foreign_build_is_ignored(provisioning, send_event):
    tenant, _build = provisioning
    foreign = Build(project="other", arn="arn:aws:codebuild:us-east-1:123456789012:build/other:1")

    event = send_event(envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, codebuild_change(foreign, "FAILED")))

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert event.result["outcome"] == "ignored"
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISIONING
