"""The webhooks API: endpoints (write-only secrets, rotation) and deliveries (read, staff retry)."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from devstack.receivers import Reply
from orchestrator.tests.factories import StaffFactory, UserFactory
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services.attempts import delivery_attempt
from webhooks.services.notify import subscribers_notify
from webhooks.tests.factories import DeployingTenantFactory, WebhookEndpointFactory, make_delivery
from webhooks.tests.independent import standard_ok, standard_signature

pytestmark = pytest.mark.django_db


def test_creating_an_endpoint_shows_its_secret_once(api, post_endpoint):
    # when an endpoint is created without a secret
    response = post_endpoint(url="https://hooks.example.com/in", custom_headers={"X-Team": "a"})

    # then the answer carries a generated whsec_ secret, stored encrypted, and never shown again
    assert response.status_code == 201, response.content
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.reveal() == secret
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhookendpoint WHERE id = %s", [endpoint.pk])
        (stored,) = cursor.fetchone()
    assert secret not in stored
    for url in ("/api/webhook-endpoints/", f"/api/webhook-endpoints/{endpoint.pk}/"):
        listed = api.get(url)
        assert listed.status_code == 200
        assert secret not in listed.content.decode()
        assert secret[6:20] not in listed.content.decode()


def test_invalid_endpoints_are_refused_with_field_errors(post_endpoint):
    response = post_endpoint(url="http://169.254.169.254/latest", custom_headers={"webhook-signature": "x"})
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "url" in fields
    assert "custom_headers" in fields


def test_endpoints_can_be_changed(api):
    # given an active endpoint
    endpoint = WebhookEndpointFactory(url="https://hooks.example.com/a")

    # when it is paused through the API
    changed = api.patch(
        f"/api/webhook-endpoints/{endpoint.pk}/", {"is_active": False, "description": "paused"}, format="json"
    )

    # then the answer and the row say so (deleting: test_endpoints.py)
    assert changed.status_code == 200
    assert changed.json()["is_active"] is False
    endpoint.refresh_from_db()
    assert (endpoint.is_active, endpoint.description) == (False, "paused")


def test_rotation_signs_with_both_secrets_during_the_grace_period(api, receiver, settings):
    # given an endpoint with a secret
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    old = endpoint.secret.reveal()

    # when its secret is rotated through the API
    response = api.post(f"/api/webhook-endpoints/{endpoint.pk}/rotate-secret/", {}, format="json")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != old
    assert response.json()["has_previous_secret"] is True

    # then a delivery during the grace period carries a valid signature for each secret
    delivery_attempt(delivery_id=make_delivery(endpoint).pk)
    (request,) = receiver.requests
    assert standard_ok(request.body, request.headers, new)
    assert standard_ok(request.body, request.headers, old)
    assert len(request.headers["webhook-signature"].split(" ")) == 2

    # and after the grace period only the new secret signs
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now() - timedelta(1))
    delivery_attempt(delivery_id=make_delivery(endpoint).pk)
    later = receiver.requests[1]
    assert later.headers["webhook-signature"] == standard_signature(
        new, later.headers["webhook-id"], later.headers["webhook-timestamp"], later.body
    )


def test_deliveries_list_filters_and_detail_masks_secrets(api):
    tenant = DeployingTenantFactory.build()
    endpoint = WebhookEndpointFactory()
    failed = make_delivery(endpoint, status=DeliveryStatus.FAILED)
    make_delivery(endpoint, status=DeliveryStatus.SUCCEEDED)
    other = WebhookEndpointFactory()
    make_delivery(other, status=DeliveryStatus.FAILED)
    WebhookDelivery.objects.filter(pk=failed.pk).update(payload={"authClient": {"secret": "s3cr3t", "clientId": "c"}})

    listed = api.get("/api/webhook-deliveries/", {"status": "failed", "endpoint": endpoint.pk})
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["results"]] == [failed.pk]
    assert api.get("/api/webhook-deliveries/", {"tenant": tenant.pk}).json()["results"] == []
    assert api.get("/api/webhook-deliveries/", {"status": "nope"}).status_code == 400

    detail = api.get(f"/api/webhook-deliveries/{failed.pk}/")
    assert detail.status_code == 200
    assert detail.json()["payload"]["authClient"] == {"secret": "********", "clientId": "c"}
    assert "s3cr3t" not in detail.content.decode()


@pytest.mark.parametrize("rows", [3, 60])
def test_deliveries_list_query_budget_is_constant(api, django_assert_max_num_queries, rows):
    endpoint = WebhookEndpointFactory()
    tenant = DeployingTenantFactory()
    for n in range(rows):
        make_delivery(endpoint, tenant=tenant, dedupe_key=f"list:{n}")

    with django_assert_max_num_queries(3):  # count, page (endpoints joined)
        response = api.get("/api/webhook-deliveries/", {"page_size": 100})

    assert len(response.json()["results"]) == rows


def test_retrying_a_delivery_through_the_api(api, receiver, committed):
    # given a delivery that failed for good, and a receiver that now accepts
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    delivery = make_delivery(endpoint, status=DeliveryStatus.FAILED)

    # when staff retry it
    response = committed(api.post, f"/api/webhook-deliveries/{delivery.pk}/retry/")

    # then it was queued and sent with the same webhook-id
    assert response.status_code == 202
    assert response.json()["queued"] is True
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert receiver.requests[0].headers["webhook-id"] == delivery.message_id

    # and retrying a delivered one is a conflict with the error shape
    again = api.post(f"/api/webhook-deliveries/{delivery.pk}/retry/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_delivered"


def test_retry_needs_the_permission(receiver):
    # given staff without the retry permission, and then with it
    user = StaffFactory()
    client = APIClient()
    client.force_authenticate(user)
    delivery = make_delivery(WebhookEndpointFactory(url=receiver.url("/hook")), status=DeliveryStatus.FAILED)

    assert client.post(f"/api/webhook-deliveries/{delivery.pk}/retry/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="retry_webhookdelivery"))
    user = type(user).objects.get(pk=user.pk)
    client.force_authenticate(user)
    assert client.post(f"/api/webhook-deliveries/{delivery.pk}/retry/").status_code == 202


def test_anonymous_and_non_staff_get_the_error_shape():
    # given an anonymous client, then a signed-in user who is not staff
    client = APIClient()
    anonymous = client.get("/api/webhook-deliveries/")
    client.force_authenticate(UserFactory())
    not_staff = client.get("/api/webhook-endpoints/")

    # then both are refused with the error shape
    assert anonymous.json()["error"]["code"] in {"not_authenticated", "permission_denied"}
    assert not_staff.status_code == 403
    assert not_staff.json()["error"]["code"] == "permission_denied"


def test_notify_creates_one_delivery_per_subscribed_active_endpoint():
    tenant = DeployingTenantFactory()  # its DynamoDB sync is scheduled after commit, which this test never reaches
    WebhookEndpointFactory(events=["tenant.deployed"])
    WebhookEndpointFactory(events=["tenant.deprovisioned"])
    WebhookEndpointFactory(events=["tenant.deployed"], is_active=False)

    created = subscribers_notify(tenant=tenant, event_type="tenant.deployed", dedupe_prefix="x", data={"a": 1})
    again = subscribers_notify(tenant=tenant, event_type="tenant.deployed", dedupe_prefix="x", data={"a": 1})

    assert len(created) == 1
    assert again == []
    assert json.loads(created[0].body.reveal())["data"] == {"a": 1}


def test_receiver_answers_are_recorded_on_the_attempt(api, receiver):
    receiver.script("/hook", Reply(500, body=b"oops"))
    delivery = make_delivery(WebhookEndpointFactory(url=receiver.url("/hook")))
    delivery_attempt(delivery_id=delivery.pk)

    detail = api.get(f"/api/webhook-deliveries/{delivery.pk}/").json()

    (attempt,) = detail["attempt_log"]
    assert attempt["status_code"] == 500
    assert attempt["response_body"] == "oops"
    assert attempt["request_headers"]["webhook-signature"] == "********"
