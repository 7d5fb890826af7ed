"""Deleting a subscriber endpoint follows one rule (``endpoint_delete``) through the API and the real admin pages
(CSRF enforced): its past deliveries are kept for the audit, and what still waited to be sent to it is cancelled
rather than sent to an address nobody subscribes any more."""

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.urls import reverse
from rest_framework.test import APIClient

from orchestrator.tests.admin_pages import csrf_client, csrf_token, shown_messages
from orchestrator.tests.factories import SuperuserFactory
from webhooks.models import DeliveryStatus, WebhookEndpoint
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


def delete_through_the_api(user, endpoint: WebhookEndpoint) -> list[str]:
    client = APIClient()
    client.force_authenticate(user)
    assert client.delete(f"/api/webhook-endpoints/{endpoint.pk}/").status_code == 204
    return []


def delete_on_the_admin_page(user, endpoint: WebhookEndpoint) -> list[str]:
    client = csrf_client(user)
    url = reverse("admin:webhooks_webhookendpoint_delete", args=[endpoint.pk])
    response = client.post(url, {"post": "yes", "csrfmiddlewaretoken": csrf_token(client.get(url))})
    assert response.status_code == 302
    return shown_messages(response)


def delete_with_the_bulk_action(user, endpoint: WebhookEndpoint) -> list[str]:
    client = csrf_client(user)
    url = reverse("admin:webhooks_webhookendpoint_changelist")
    selected = {"action": "delete_selected", "_selected_action": [endpoint.pk]}
    confirmation = client.post(url, {**selected, "csrfmiddlewaretoken": csrf_token(client.get(url))})
    response = client.post(url, {**selected, "post": "yes", "csrfmiddlewaretoken": csrf_token(confirmation)})
    assert response.status_code == 302
    return shown_messages(response)


@pytest.mark.parametrize("delete", [delete_through_the_api, delete_on_the_admin_page, delete_with_the_bulk_action])
def test_deleting_an_endpoint_cancels_what_waited_for_it_and_keeps_the_rest(delete):
    # given an endpoint with deliveries in every stage: due, retrying, waiting for a chain step, delivered
    endpoint = WebhookEndpointFactory(url="https://hooks.example.com/in")
    waiting = {
        status: make_delivery(endpoint, status=status)
        for status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.WAITING)
    }
    delivered = make_delivery(endpoint, status=DeliveryStatus.SUCCEEDED)
    other = make_delivery(WebhookEndpointFactory(url="https://hooks.example.com/other"))

    # when a superuser deletes the endpoint
    shown = delete(SuperuserFactory(), endpoint)

    # then it is gone; what waited for it is cancelled, saying why; the rest is kept as it was
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    for delivery in waiting.values():
        delivery.refresh_from_db()
        assert (delivery.status, delivery.status_reason) == (DeliveryStatus.CANCELLED, "the endpoint was deleted")
        assert delivery.finished_at is not None
        assert delivery.endpoint_id is None
    delivered.refresh_from_db()
    assert (delivered.status, delivered.endpoint_id) == (DeliveryStatus.SUCCEEDED, None)
    other.refresh_from_db()
    assert other.status == DeliveryStatus.PENDING
    assert all("deleted" in message for message in shown), shown
    assert LogEntry.objects.filter(action_flag=DELETION).count() == (0 if delete is delete_through_the_api else 1)
