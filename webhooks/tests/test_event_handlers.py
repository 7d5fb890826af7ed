"""TENANT_DEPLOYMENT through the real intake: stored, dispatched to the webhooks handler, chain delivered."""

import json

import pytest
from django.conf import settings

from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent
from events.samples import sample_envelope
from tenants.models import TenantStatus
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import DeployingTenantFactory, deployment_detail
from webhooks.tests.independent import original_ok

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]


def test_a_deployment_event_posted_to_the_intake_activates_the_tenant(
    client, receiver, django_capture_on_commit_callbacks
):
    # given a deploying tenant and the build outputs pointing at a receiver
    tenant = DeployingTenantFactory()
    envelope = sample_envelope(DetailType.TENANT_DEPLOYMENT)
    envelope["detail"] = deployment_detail(tenant, receiver.url(""))

    # when EventBridge posts the event (tasks run in-process)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/events/",
            data=json.dumps(envelope),
            content_type="application/json",
            HTTP_X_API_KEY=settings.INTAKE_API_KEYS[0],
        )

    # then the event was processed by the webhooks handler and the chain delivered
    assert response.status_code == 202, response.content
    event = ReceivedEvent.objects.get(event_id=envelope["id"])
    assert event.status == EventStatus.PROCESSED
    assert event.result["deployment"]
    assert receiver.paths() == ["/bootstrap", "/feature-service/bootstrap", "/webhook"]
    assert all(original_ok(r.body, r.headers, envelope["detail"]["secret"]) for r in receiver.requests[:2])
    assert set(WebhookDelivery.objects.filter(event=event).values_list("status", flat=True)) == {
        DeliveryStatus.SUCCEEDED
    }
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE


def test_a_deployment_for_an_unknown_tenant_is_rejected(client, django_capture_on_commit_callbacks):
    envelope = sample_envelope(DetailType.TENANT_DEPLOYMENT)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/api/events/",
            data=json.dumps(envelope),
            content_type="application/json",
            HTTP_X_API_KEY=settings.INTAKE_API_KEYS[0],
        )

    event = ReceivedEvent.objects.get(event_id=envelope["id"])
    assert event.status == EventStatus.FAILED
    assert "unknown" in event.last_error
    assert not WebhookDelivery.objects.exists()
