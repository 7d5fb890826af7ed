"""Operational events: each is emitted where the thing happens and delivered, signed, to the endpoints that
subscribe to it (a real receiver on 127.0.0.1), with its reason and an absolute admin link, mailed to the staff
who opted in, never carrying a secret, and never sent to the endpoint it is about or looping on itself."""

import json

import pytest
from django.core import mail
from django.urls import reverse

from devstack.receivers import Reply
from orchestrator.tests.factories import alert_mail_windows_clear
from tenants.models import TenantStatus
from tenants.services.lifecycle import tenant_transition
from tenants.tests.factories import TenantFactory
from webhooks.models import OPERATIONAL_EVENT_TYPES, DeliveryStatus, WebhookDelivery, WebhookEventType
from webhooks.services.attempts import delivery_attempt
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery
from webhooks.verify import verify_standard

pytestmark = pytest.mark.django_db

HEADER_TOKEN = "header-token-5d2e9a71c4"  # a credential in a custom header: sealed in the database


@pytest.fixture(autouse=True)
def alerting(settings):
    alert_mail_windows_clear()
    settings.ALERT_EMAILS = ["ops@example.com"]
    settings.ADMIN_BASE_URL = "https://orchestrator.example"
    settings.WEBHOOK_CIRCUIT_FAILURES = 0  # tests that want the breaker turn it on
    return settings


@pytest.fixture
def ops(receiver):
    """The platform team's endpoint, subscribed to every operational event."""
    return WebhookEndpointFactory(url=receiver.url("/ops"), events=sorted(OPERATIONAL_EVENT_TYPES))


@pytest.fixture
def failing(receiver):
    """A subscriber that answers 500 to everything, with a secret and a credential in a custom header."""
    receiver.default("/hook", Reply(500))
    return WebhookEndpointFactory(url=receiver.url("/hook"), custom_headers={"Authorization": f"Bearer {HEADER_TOKEN}"})


def announced(receiver, endpoint, path="/ops") -> list[dict]:
    """The operational events ``endpoint`` received, each signature verified with its secret."""
    return [
        verify_standard(body=request.body, headers=request.headers, secrets=endpoint.secret.reveal())
        for request in receiver.at(path)
    ]


def assert_no_secret(*texts: str, endpoints=()) -> None:
    secrets = [HEADER_TOKEN] + [endpoint.secret.reveal() for endpoint in endpoints]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_a_delivery_that_gives_up_is_announced_signed_and_mailed_without_secrets(
    receiver, ops, failing, fast_retries, committed
):
    # given a delivery to a receiver that keeps failing
    delivery = make_delivery(failing)

    # when it runs out of attempts
    committed(delivery_attempt, delivery_id=delivery.pk)

    # then the ops endpoint got delivery.exhausted, signed, with the reason and the admin link
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    [event] = announced(receiver, ops)
    assert event["type"] == "delivery.exhausted"
    data = event["data"]
    assert data["reason"] == delivery.status_reason
    assert "gave up after 4 attempts" in data["reason"]
    assert data["admin_url"] == "https://orchestrator.example" + reverse(
        "admin:webhooks_webhookdelivery_change", args=[delivery.pk]
    )
    assert data["delivery"]["id"] == delivery.pk
    assert data["delivery"]["attempts"] == 4
    # and the staff got one mail saying the same
    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert message.subject.startswith("[orchestrator] delivery.exhausted:")
    assert data["admin_url"] in message.body
    assert "gave up after 4 attempts" in message.body
    # and no secret anywhere
    bodies = [request.body.decode() for request in receiver.at("/ops")]
    assert_no_secret(*bodies, message.body, message.subject, endpoints=[failing, ops])


def test_a_410_disables_the_endpoint_and_tells_the_others_not_itself(receiver, ops, committed):
    # given a subscriber that also subscribes to operational events, answering 410 Gone
    receiver.default("/gone", Reply(410))
    gone = WebhookEndpointFactory(
        url=receiver.url("/gone"), events=[WebhookEventType.TENANT_DEPLOYED, "endpoint.disabled"]
    )
    delivery = make_delivery(gone)

    # when its delivery is answered 410
    committed(delivery_attempt, delivery_id=delivery.pk)

    # then it is disabled and the ops endpoint was told, the disabled one was not
    gone.refresh_from_db()
    assert not gone.is_active
    [event] = announced(receiver, ops)
    assert event["type"] == "endpoint.disabled"
    assert event["data"]["reason"] == "the receiver answered 410 Gone"
    assert event["data"]["endpoint"]["id"] == gone.pk
    assert event["data"]["admin_url"].endswith(reverse("admin:webhooks_webhookendpoint_change", args=[gone.pk]))
    assert len(receiver.at("/gone")) == 1  # only the delivery that got the 410
    assert not WebhookDelivery.objects.filter(endpoint=gone, event_type="endpoint.disabled").exists()
    assert [m.subject for m in mail.outbox] == [f"[orchestrator] endpoint.disabled: {event['data']['title']}"]


def test_an_opening_circuit_is_announced_once_and_not_to_the_broken_endpoint(
    receiver, ops, failing, settings, committed
):
    # given a breaker opening after 2 failures, and the failing endpoint subscribed to circuit news itself
    settings.WEBHOOK_CIRCUIT_FAILURES = 2
    failing.events = [WebhookEventType.TENANT_DEPLOYED, "endpoint.circuit_opened"]
    failing.save()

    # when three deliveries to it fail (the third is held back by the open circuit)
    for _ in range(3):
        committed(delivery_attempt, delivery_id=make_delivery(failing).pk)

    # then the ops endpoint heard once that its circuit opened
    failing.refresh_from_db()
    assert failing.circuit_opened_at is not None
    [event] = announced(receiver, ops)
    assert event["type"] == "endpoint.circuit_opened"
    assert event["data"]["endpoint"]["id"] == failing.pk
    assert "2 failures in a row" in event["data"]["reason"]
    assert not WebhookDelivery.objects.filter(endpoint=failing, event_type="endpoint.circuit_opened").exists()
    assert len(mail.outbox) == 1
    assert_no_secret(receiver.at("/ops")[0].body.decode(), mail.outbox[0].body, endpoints=[failing, ops])


def test_an_operational_delivery_that_gives_up_is_mailed_not_announced_again(
    receiver, ops, failing, fast_retries, committed
):
    # given two ops endpoints, one of them down
    receiver.default("/ops-down", Reply(503))
    ops_down = WebhookEndpointFactory(url=receiver.url("/ops-down"), events=["delivery.exhausted"])
    delivery = make_delivery(failing)

    # when a subscriber delivery gives up, and so does its announcement to the endpoint that is down
    committed(delivery_attempt, delivery_id=delivery.pk)

    # then the subscriber's failure was announced to both, and the announcement's failure to nobody: no loop
    exhausted = WebhookDelivery.objects.filter(event_type="delivery.exhausted")
    assert sorted((d.endpoint_id, d.status) for d in exhausted) == [
        (ops.pk, DeliveryStatus.SUCCEEDED),
        (ops_down.pk, DeliveryStatus.FAILED),
    ]
    assert [event["data"]["delivery"]["id"] for event in announced(receiver, ops)] == [delivery.pk]
    assert len(receiver.at("/ops-down")) == 4
    # and both failures were mailed (different subjects: the subscriber, the ops endpoint)
    assert sorted(m.subject.split(" to ")[0] for m in mail.outbox) == [
        "[orchestrator] delivery.exhausted: Subscriber webhook delivery.exhausted",
        "[orchestrator] delivery.exhausted: Subscriber webhook tenant.deployed",
    ]


def test_a_failed_provisioning_is_announced_with_its_reason_and_the_tenant_page(receiver, ops, committed):
    # given a provisioning tenant whose build secret is in its builder config (sealed in the database)
    tenant = TenantFactory(
        status=TenantStatus.PROVISIONING,
        builder_config={"type": "CODE_BUILD", "config": {"environmentOverride": {"secret": "build-secret-9f8e7d"}}},
    )

    # when its provisioning fails
    committed(tenant_transition, tenant=tenant, to=TenantStatus.PROVISION_FAILED, reason="terraform apply failed")

    # then the ops endpoint heard it with the reason and the tenant's admin page
    [event] = announced(receiver, ops)
    assert event["type"] == "tenant.provision_failed"
    assert event["data"]["reason"] == "terraform apply failed"
    assert event["data"]["tenant"] == {
        "id": tenant.pk,
        "key": tenant.key,
        "tier": tenant.tier,
        "status": TenantStatus.PROVISION_FAILED,
    }
    assert event["data"]["admin_url"] == "https://orchestrator.example" + reverse(
        "admin:tenants_tenant_change", args=[tenant.pk]
    )
    [message] = mail.outbox
    assert "terraform apply failed" in message.body
    for text in (json.dumps(event), message.body):
        assert "build-secret-9f8e7d" not in text
