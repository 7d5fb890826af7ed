"""The doctor: each rule finds its case and leaves the healthy one alone; each fix, pressed on the dashboard
(real admin page, CSRF) or posted to the API, calls the existing service and the finding is gone;
``manage.py doctor`` exits 1 when something needs attention."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus
from events.tests.factories import ReceivedEventFactory, failed_event
from orchestrator.tests.admin_pages import csrf_client, csrf_token, shown_messages
from orchestrator.tests.factories import UserFactory, staff_user
from portal.doctor.service import doctor_findings
from tenants.models import BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.tests.conftest import outcome_detail, tenant_item_of
from tenants.tests.factories import BuildFactory, TenantFactory
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


def ago(minutes: float):
    return timezone.now() - timedelta(minutes=minutes)


def found(rule: str) -> list[tuple[str, str]]:
    return [(f.object_type, f.object_id) for f in doctor_findings() if f.rule == rule]


def entered(tenant: Tenant, minutes: float) -> None:
    """The tenant's last status change happened ``minutes`` ago."""
    entry = TenantHistory.objects.create(tenant=tenant, kind=HistoryKind.TRANSITION, summary="→ now")
    TenantHistory.objects.filter(pk=entry.pk).update(at=ago(minutes))


def apply_fix(channel: str, level: str, action: str, target, capture) -> str:
    """Apply a finding's fix as a user of ``level``: pressing its button on the dashboard as a browser does (the
    page's CSRF token), or posting it to the API. The message it answered."""
    user = staff_user(level)
    if channel == "admin":
        client = csrf_client(user)
        page = client.get(reverse("admin:index"))
        assert f'data-fix="{action}:{target}"' in page.content.decode()
        with capture(execute=True):
            response = client.post(
                reverse("admin:tenants_tenant_doctor_fix"),
                {"csrfmiddlewaretoken": csrf_token(page), "action": action, "target": str(target)},
            )
        assert response.status_code == 302
        [message] = shown_messages(response)
        return message
    api = APIClient()
    api.force_authenticate(user)
    with capture(execute=True):
        response = api.post("/api/doctor/fixes/", {"action": action, "target": str(target)})
    assert response.status_code == 200, response.content
    assert response.json()["changed"] is True
    return response.json()["message"]


CHANNELS = pytest.mark.parametrize("channel", ["admin", "api"])


@pytest.fixture
def api_as():
    def client(level: str) -> APIClient:
        api = APIClient()
        api.force_authenticate(staff_user(level))
        return api

    return client


# --- Build succeeded, no outcome event ---------------------------------------------------------------------


def test_outcome_missing_finds_a_succeeded_build_whose_outcome_never_came_and_not_the_healthy_ones():
    # given a build CodeBuild reported SUCCEEDED 45 minutes ago, still waiting for its outcome event
    stuck = BuildFactory(
        tenant=TenantFactory(status=TenantStatus.PROVISIONING),
        status=BuildStatus.SUCCEEDED,
        awaiting_outcome_event=True,
        ended_at=ago(45),
    )
    # and one that succeeded 5 minutes ago, and one whose tenant moved on
    BuildFactory(
        tenant=TenantFactory(status=TenantStatus.PROVISIONING),
        status=BuildStatus.SUCCEEDED,
        awaiting_outcome_event=True,
        ended_at=ago(5),
    )
    BuildFactory(tenant=TenantFactory(status=TenantStatus.DEPLOYING), status=BuildStatus.SUCCEEDED, ended_at=ago(45))

    # when the doctor looks, then only the first is named, with why and no replay to offer
    [finding] = [f for f in doctor_findings() if f.rule == "outcome_missing"]
    assert (finding.object_type, finding.object_id, finding.tenant_id) == ("build", str(stuck.pk), stuck.tenant_id)
    assert "SUCCEEDED" in finding.reason
    assert "none was received" in finding.reason
    assert finding.fixes == ()
    assert 44 * 60 <= finding.age_seconds(timezone.now()) <= 46 * 60


@CHANNELS
def test_replaying_the_failed_outcome_moves_the_tenant_on(channel, aws, django_capture_on_commit_callbacks):
    # given a tenant whose build succeeded and whose success event failed on every attempt
    tenant = TenantFactory(status=TenantStatus.PROVISIONING, provisioning_attempt=1)
    build = BuildFactory(tenant=tenant, status=BuildStatus.SUCCEEDED, awaiting_outcome_event=True, ended_at=ago(45))
    event = failed_event(
        DetailType.TENANT_PROVISIONING_SUCCESS, detail=outcome_detail(tenant.pk, build.build_id), tenant_id=tenant.pk
    )
    assert found("outcome_missing") == [("build", str(build.pk))]
    assert found("event_failed") == [("event", str(event.pk))]

    # when an operator replays it (the dashboard's button, or the API)
    message = apply_fix(channel, "operator", "replay_event", event.pk, django_capture_on_commit_callbacks)

    # then the event ran again, the tenant is deploying and nothing needs attention any more
    assert message == f"Event {event.pk}: Replay queued."
    event.refresh_from_db()
    tenant.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert tenant.status == TenantStatus.DEPLOYING
    assert doctor_findings() == []
    page = csrf_client(staff_user("operator")).get(reverse("admin:index"))
    assert "Nothing needs attention." in page.content.decode()


# --- Deployment waiting on an open circuit -----------------------------------------------------------------


def _waiting(endpoint, *, tenant_status=TenantStatus.DEPLOYING) -> WebhookDelivery:
    return make_delivery(
        endpoint,
        tenant=TenantFactory(status=tenant_status),
        status=DeliveryStatus.RETRYING,
        next_attempt_at=endpoint.circuit_open_until,
    )


def _tripped(url: str = "http://127.0.0.1:9/hook", *, opened_minutes: float = 20):
    return WebhookEndpointFactory(
        url=url,
        consecutive_failures=5,
        circuit_opened_at=ago(opened_minutes),
        circuit_open_until=timezone.now() + timedelta(hours=1),
    )


def test_waiting_on_open_circuit_finds_a_deploying_tenants_delivery_and_not_the_healthy_ones():
    # given a deploying tenant's delivery waiting 20 minutes on an open circuit
    stuck = _waiting(_tripped())
    # and an active tenant's delivery on the same kind of endpoint, and a circuit that opened 2 minutes ago
    _waiting(_tripped(), tenant_status=TenantStatus.ACTIVE)
    _waiting(_tripped(opened_minutes=2))

    [finding] = [f for f in doctor_findings() if f.rule == "waiting_on_open_circuit"]
    assert (finding.object_id, finding.tenant_id) == (str(stuck.pk), stuck.tenant_id)
    assert [(fix.action, fix.target) for fix in finding.fixes] == [
        ("close_circuit", str(stuck.endpoint_id)),
        ("retry_delivery", str(stuck.pk)),
    ]


@CHANNELS
def test_closing_the_circuit_releases_the_delivery(channel, api_as, django_capture_on_commit_callbacks):
    stuck = _waiting(_tripped())

    # closing a circuit changes the endpoint: superusers only
    message = apply_fix(channel, "superuser", "close_circuit", stuck.endpoint_id, django_capture_on_commit_callbacks)

    assert message == f"Endpoint {stuck.endpoint_id}: circuit closed, 1 waiting deliveries released."
    stuck.endpoint.refresh_from_db()
    assert stuck.endpoint.consecutive_failures == 0
    assert found("waiting_on_open_circuit") == []
    # pressed again: nothing left to do, said so
    again = api_as("superuser").post("/api/doctor/fixes/", {"action": "close_circuit", "target": stuck.endpoint_id})
    assert again.status_code == 200
    assert again.json()["changed"] is False


@CHANNELS
def test_retrying_the_delivery_delivers_it(channel, receiver, django_capture_on_commit_callbacks):
    # given the receiver is back, but the circuit still holds the delivery
    stuck = _waiting(_tripped(receiver.url("/hook")))
    page = csrf_client(staff_user("operator")).get(reverse("admin:index"))
    assert f'data-fix="close_circuit:{stuck.endpoint_id}"' not in page.content.decode()  # operators may not

    message = apply_fix(channel, "operator", "retry_delivery", stuck.pk, django_capture_on_commit_callbacks)

    assert message == f"Delivery {stuck.pk}: queued"
    stuck.refresh_from_db()
    assert stuck.status == DeliveryStatus.SUCCEEDED
    assert [request.path for request in receiver.requests] == ["/hook"]
    assert found("waiting_on_open_circuit") == []


# --- DynamoDB mirror behind --------------------------------------------------------------------------------


def test_mirror_behind_finds_a_tenant_whose_change_never_reached_dynamodb_and_not_the_healthy_ones():
    behind = TenantFactory(status=TenantStatus.ACTIVE)
    entered(behind, 30)
    synced = TenantFactory(status=TenantStatus.ACTIVE)
    Tenant.objects.filter(pk=synced.pk).update(synced_version=synced.version)
    entered(synced, 30)
    TenantFactory(status=TenantStatus.ACTIVE)  # changed just now: its write is on its way

    assert found("mirror_behind") == [("tenant", behind.pk)]


@CHANNELS
def test_resync_writes_the_tenant_to_dynamodb(channel, aws, django_capture_on_commit_callbacks):
    behind = TenantFactory(status=TenantStatus.ACTIVE)
    entered(behind, 30)

    message = apply_fix(channel, "operator", "resync_tenant", behind.pk, django_capture_on_commit_callbacks)

    behind.refresh_from_db()
    assert message == f"{behind.key}: DynamoDB write of version {behind.version} scheduled."
    assert behind.synced_version == behind.version
    assert tenant_item_of(behind.pk)["version"] == behind.version
    assert found("mirror_behind") == []


# --- Event failed after all attempts -----------------------------------------------------------------------


def test_event_failed_finds_events_out_of_attempts_not_refused_or_processed_ones():
    tenant = TenantFactory(status=TenantStatus.ACTIVE)
    detail = {"tenant": {"id": tenant.pk}}
    failed = failed_event(DetailType.TENANT_DEPLOYMENT_SUCCESS, detail=detail, tenant_id=tenant.pk)
    failed_event(
        DetailType.TENANT_DEPLOYMENT_SUCCESS, detail=detail, tenant_id=tenant.pk, outcome=EventAttempt.Outcome.REJECTED
    )
    ReceivedEventFactory(kind=DetailType.TENANT_DEPLOYMENT_SUCCESS, status=EventStatus.PROCESSED)

    [finding] = [f for f in doctor_findings() if f.rule == "event_failed"]
    assert (finding.object_id, finding.tenant_id) == (str(failed.pk), tenant.pk)
    assert "failed after 5 attempts: OperationalError" in finding.reason


def test_replay_through_the_api_needs_the_permission_and_resolves_the_finding(
    api_as, django_capture_on_commit_callbacks
):
    tenant = TenantFactory(status=TenantStatus.ACTIVE)
    event = failed_event(
        DetailType.TENANT_DEPLOYMENT_SUCCESS, detail={"tenant": {"id": tenant.pk}}, tenant_id=tenant.pk
    )
    fix = {"action": "replay_event", "target": str(event.pk)}

    # read-only staff see the finding but may not fix it
    assert api_as("read_only").get("/api/doctor/").json()["findings"][0]["object_id"] == str(event.pk)
    refused = api_as("read_only").post("/api/doctor/fixes/", fix)
    assert refused.status_code == 403
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        response = api_as("operator").post("/api/doctor/fixes/", fix)

    assert response.status_code == 200, response.content
    assert response.json() == {"changed": True, "message": f"Event {event.pk}: Replay queued."}
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert api_as("read_only").get("/api/doctor/").json() == {"needs_attention": False, "count": 0, "findings": []}


def test_the_fix_api_answers_bad_input_and_strangers_with_structured_errors(api_as):
    bad = api_as("operator").post("/api/doctor/fixes/", {"action": "poke", "target": "1"})
    assert bad.status_code == 400
    assert "action" in bad.json()["error"]["fields"]
    assert APIClient().get("/api/doctor/").status_code == 401
    assert APIClient().post("/api/doctor/fixes/", {"action": "replay_event", "target": "1"}).status_code == 401
    not_staff = APIClient()
    not_staff.force_authenticate(UserFactory())
    assert not_staff.get("/api/doctor/").status_code == 403
    assert not_staff.post("/api/doctor/fixes/", {"action": "replay_event", "target": "1"}).status_code == 403


# --- In a transitional status too long (generic) -----------------------------------------------------------


def test_transitional_too_long_names_tenants_no_other_rule_explains():
    # given a tenant provisioning for 3 hours with nothing else wrong
    slow = TenantFactory(status=TenantStatus.PROVISIONING)
    Tenant.objects.filter(pk=slow.pk).update(synced_version=slow.version)
    entered(slow, 180)
    # and one provisioning for 30 minutes, one active for days, and one whose mirror is behind (explained)
    recent = TenantFactory(status=TenantStatus.PROVISIONING)
    Tenant.objects.filter(pk=recent.pk).update(synced_version=recent.version)
    entered(recent, 30)
    active = TenantFactory(status=TenantStatus.ACTIVE)
    Tenant.objects.filter(pk=active.pk).update(synced_version=active.version)
    entered(active, 3000)
    explained = TenantFactory(status=TenantStatus.DEPLOYING)
    entered(explained, 180)

    findings = doctor_findings()

    assert [(f.rule, f.object_id) for f in findings if f.tenant_id in {slow.pk, recent.pk, active.pk}] == [
        ("transitional_too_long", slow.pk)
    ]
    assert [f.rule for f in findings if f.tenant_id == explained.pk] == ["mirror_behind"]
    [generic] = [f for f in findings if f.tenant_id == slow.pk]
    assert "Provisioning for 180 min" in generic.reason


# --- manage.py doctor --------------------------------------------------------------------------------------


def test_doctor_command_exits_0_when_all_is_well_and_1_with_the_findings_otherwise():
    out = StringIO()
    call_command("doctor", stdout=out)
    assert "Nothing needs attention." in out.getvalue()

    stuck = _waiting(_tripped())
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("doctor", stdout=out)
    assert raised.value.returncode == 1
    assert "Deployment waits on an open circuit: delivery" in out.getvalue()
    assert f"fix     Retry the delivery now (retry_delivery {stuck.pk})" in out.getvalue()

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("doctor", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert (report["needs_attention"], report["count"]) == (True, 1)
    assert report["findings"][0]["admin_url"].startswith("http")

    # as cron runs it: the process's exit status
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "doctor"])
    assert exited.value.code == 1
