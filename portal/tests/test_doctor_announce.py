"""The doctor's beat task: each new finding is announced once as ``tenant.stuck`` (signed, to the endpoints that
subscribe to it) and mailed; later rounds that find it again announce nothing; a resolved finding is forgotten."""

import pytest
from django.core import mail

from events.catalogue import DetailType
from events.tests.factories import failed_event
from orchestrator.tests.factories import alert_mail_windows_clear
from portal.models import DoctorNotice
from portal.tasks import doctor_announce
from tenants.models import TenantStatus
from tenants.tests.factories import TenantFactory
from webhooks.models import WebhookDelivery
from webhooks.tests.factories import WebhookEndpointFactory
from webhooks.verify import verify_standard

pytestmark = pytest.mark.django_db


def test_each_finding_is_announced_once_as_tenant_stuck(receiver, settings, django_capture_on_commit_callbacks):
    alert_mail_windows_clear()
    settings.ALERT_EMAILS = ["ops@example.com"]
    settings.ADMIN_BASE_URL = "https://orchestrator.example"
    ops = WebhookEndpointFactory(url=receiver.url("/ops"), events=["tenant.stuck"])
    # given an event that failed on every attempt
    tenant = TenantFactory(
        status=TenantStatus.ACTIVE,
        builder_config={"type": "CODE_BUILD", "config": {"environmentOverride": {"secret": "build-secret-41c0"}}},
    )
    event = failed_event(
        DetailType.TENANT_DEPLOYMENT_SUCCESS, detail={"tenant": {"id": tenant.pk}}, tenant_id=tenant.pk
    )

    # when beat runs the doctor three times
    with django_capture_on_commit_callbacks(execute=True):
        counts = [doctor_announce.delay().get() for _ in range(3)]

    # then the finding was announced once, signed, with its reason, admin link and fix
    assert counts == [1, 0, 0]
    [request] = receiver.at("/ops")
    payload = verify_standard(body=request.body, headers=request.headers, secrets=ops.secret.reveal())
    assert payload["type"] == "tenant.stuck"
    data = payload["data"]
    assert data["rule"] == "event_failed"
    assert data["object"] == {"type": "event", "id": str(event.pk)}
    assert data["reason"].startswith(f"{DetailType.TENANT_DEPLOYMENT_SUCCESS} failed after 5 attempts")
    assert data["admin_url"] == f"https://orchestrator.example/admin/events/receivedevent/{event.pk}/change/"
    assert data["fixes"] == [{"action": "replay_event", "target": str(event.pk)}]
    assert data["tenant"]["id"] == tenant.pk
    assert WebhookDelivery.objects.filter(event_type="tenant.stuck").count() == 1
    # and mailed once
    [message] = mail.outbox
    assert message.subject.startswith("[orchestrator] tenant.stuck: Event failed after all attempts")
    assert data["admin_url"] in message.body
    assert "build-secret-41c0" not in request.body.decode() + message.body

    # when the finding is resolved, the next round forgets it
    event.status = "processed"
    event.save(update_fields=["status"])
    doctor_announce.delay()
    assert not DoctorNotice.objects.exists()
