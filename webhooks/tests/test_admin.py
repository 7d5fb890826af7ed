"""Admin: endpoints with write-only secrets and rotation, deliveries read-only with a POST retry action."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from orchestrator.tests.factories import StaffFactory, signed_in_superuser
from tenants.models import HistoryKind, TenantHistory
from webhooks.models import DeliveryStatus, WebhookEndpoint
from webhooks.tests.factories import DeployingTenantFactory, WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    return signed_in_superuser(client)


def test_adding_an_endpoint_shows_the_generated_secret_once(staff_client):
    # when a superuser adds an endpoint without a secret
    response = staff_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "url": "https://hooks.example.com/in",
            "description": "billing",
            "events": ["tenant.deployed", "tenant.deprovisioned"],
            "signing_scheme": "standard",
            "custom_headers": "{}",
            "is_active": "on",
            "new_secret": "",
        },
    )

    # then the generated secret is shown once, not cached, and never again on its page or the list
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    secret = endpoint.secret.reveal()
    assert secret in response.content.decode()
    change = staff_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert change.status_code == 200
    assert secret not in change.content.decode()
    listing = staff_client.get(reverse("admin:webhooks_webhookendpoint_changelist"))
    assert secret not in listing.content.decode()


def test_the_admin_refuses_reserved_custom_headers(staff_client):
    # when a superuser adds an endpoint that would override the signature header
    response = staff_client.post(
        reverse("admin:webhooks_webhookendpoint_add"),
        {
            "url": "https://hooks.example.com/in",
            "events": ["tenant.deployed"],
            "signing_scheme": "standard",
            "custom_headers": '{"webhook-signature": "v1,x"}',
            "is_active": "on",
        },
    )

    # then the form says why and nothing was created
    assert response.status_code == 200
    assert "webhook-signature: not allowed" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_rotating_secrets_from_the_admin(staff_client):
    # given an endpoint and its secret
    endpoint = WebhookEndpointFactory()
    old = endpoint.secret.reveal()

    # when a superuser rotates it from the list
    response = staff_client.post(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"action": "rotate_secrets", "_selected_action": [endpoint.pk]},
    )

    # then the new secret is shown once, and the old one still signs during the grace period
    endpoint.refresh_from_db()
    new = endpoint.secret.reveal()
    assert new != old
    page = response.content.decode()
    assert new in page
    assert old not in page
    assert endpoint.signing_secrets() == [new, old]


def test_retry_selected_from_the_admin(staff_client, receiver, django_capture_on_commit_callbacks):
    # given a failed delivery for a tenant, and one already delivered
    tenant = DeployingTenantFactory()
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    failed = make_delivery(endpoint, status=DeliveryStatus.FAILED, tenant=tenant)
    done = make_delivery(endpoint, status=DeliveryStatus.SUCCEEDED, tenant=tenant)

    # when staff run "Retry selected" on both
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = staff_client.post(
            reverse("admin:webhooks_webhookdelivery_changelist"),
            {"action": "retry_selected", "_selected_action": [failed.pk, done.pk]},
            follow=True,
        )

    # then the failed one is queued, the delivered one is reported, and the retry is in the history
    messages = [str(m) for m in response.context["messages"]]
    assert any("1 delivery(ies) queued" in m for m in messages)
    assert any("already succeeded" in m for m in messages)
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.PENDING
    assert len(callbacks) == 1
    entry = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert entry.actor_user == staff_client.user


def test_retry_is_post_only_and_needs_the_permission(client, receiver):
    # given staff who may only view deliveries, and a failed delivery
    user = StaffFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(user)
    delivery = make_delivery(WebhookEndpointFactory(url=receiver.url("/hook")), status=DeliveryStatus.FAILED)

    # when they open the list and post the retry action anyway
    page = client.get(reverse("admin:webhooks_webhookdelivery_changelist"))
    client.post(
        reverse("admin:webhooks_webhookdelivery_changelist"),
        {"action": "retry_selected", "_selected_action": [delivery.pk]},
    )

    # then the action is not offered and the delivery was not retried
    assert page.status_code == 200
    assert "retry_selected" not in page.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_delivery_pages_show_attempts_and_mask_secrets(staff_client, receiver):
    from webhooks.services.attempts import delivery_attempt

    delivery = make_delivery(WebhookEndpointFactory(url=receiver.url("/hook")))
    type(delivery).objects.filter(pk=delivery.pk).update(payload={"authClient": {"clientSecret": "cs-1234567"}})
    delivery_attempt(delivery_id=delivery.pk)

    page = staff_client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])).content.decode()
    assert "cs-1234567" not in page
    assert re.search(r"webhook-signature.*\*{8}", page)
    listing = staff_client.get(reverse("admin:webhooks_webhookdelivery_changelist"), {"status__exact": "succeeded"})
    assert listing.status_code == 200
    assert str(delivery.url) in listing.content.decode()


def test_a_failed_delivery_page_has_a_retry_button_that_sends_it_again(
    staff_client, receiver, django_capture_on_commit_callbacks
):
    # given a failed delivery and a delivered one
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    failed = make_delivery(endpoint, status=DeliveryStatus.FAILED, tenant=DeployingTenantFactory())
    done = make_delivery(endpoint, status=DeliveryStatus.SUCCEEDED)
    retry_url = reverse("admin:webhooks_webhookdelivery_retry", args=[failed.pk])

    # then only the failed one offers the button
    assert retry_url in staff_client.get(reverse("admin:webhooks_webhookdelivery_change", args=[failed.pk])).text
    page = staff_client.get(reverse("admin:webhooks_webhookdelivery_change", args=[done.pk])).text
    assert 'data-action="retry"' not in page

    # when staff press it
    assert staff_client.get(retry_url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(retry_url, follow=True)

    # then it was sent again and delivered, with the staff member on record
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.SUCCEEDED
    assert [request.headers["webhook-id"] for request in receiver.at("/hook")] == [failed.message_id]
    assert any("queued" in str(message) for message in response.context["messages"])
    assert TenantHistory.objects.filter(tenant=failed.tenant, actor_user=staff_client.user).exists()


def test_the_retry_button_needs_the_permission(client, receiver):
    # given staff who may only view deliveries, and a failed delivery
    user = StaffFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(user)
    delivery = make_delivery(WebhookEndpointFactory(url=receiver.url("/hook")), status=DeliveryStatus.FAILED)
    retry_url = reverse("admin:webhooks_webhookdelivery_retry", args=[delivery.pk])

    # then its page shows no Retry button, and posting to it anyway is forbidden and changes nothing
    assert retry_url not in client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])).text
    assert client.post(retry_url).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
