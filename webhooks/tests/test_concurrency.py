"""The per-endpoint in-flight limit, on the real Redis: a busy endpoint's deliveries wait without a thread,
slots come back after a send (even a failed one) and expire with their lease when a worker dies."""

import time

import pytest

from orchestrator.redis_clients import redis_client
from webhooks.concurrency import _key, slot_acquire, slot_release
from webhooks.models import DeliveryAttempt, DeliveryStatus
from webhooks.services import attempts
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def one_request_per_endpoint(settings):
    settings.WEBHOOK_ENDPOINT_MAX_IN_FLIGHT = 1
    yield
    client = redis_client()
    for key in client.scan_iter(match=_key(0).removesuffix("0") + "*"):  # this test database's slots
        client.delete(key)


def test_slots_are_limited_per_endpoint_and_reentrant_for_the_same_delivery():
    assert slot_acquire(endpoint_id=1, delivery_id=10, lease_seconds=60)
    assert not slot_acquire(endpoint_id=1, delivery_id=11, lease_seconds=60)
    assert slot_acquire(endpoint_id=2, delivery_id=11, lease_seconds=60)  # another endpoint: its own slots
    assert slot_acquire(endpoint_id=1, delivery_id=10, lease_seconds=60)  # a redelivered task keeps its slot

    slot_release(endpoint_id=1, delivery_id=10)

    assert slot_acquire(endpoint_id=1, delivery_id=11, lease_seconds=60)


def test_a_slot_whose_lease_ran_out_is_free_again():
    assert slot_acquire(endpoint_id=3, delivery_id=10, lease_seconds=0.2)  # its worker dies: never released
    time.sleep(0.3)
    assert slot_acquire(endpoint_id=3, delivery_id=11, lease_seconds=60)


def test_a_delivery_to_a_busy_endpoint_is_put_back_without_an_attempt(receiver, settings, monkeypatch, committed):
    settings.WEBHOOK_ENDPOINT_BUSY_DELAY_SECONDS = 2.0
    published = []
    monkeypatch.setattr(
        attempts, "deliveries_publish", lambda ids, countdown=0.0: published.append((list(ids), countdown))
    )
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    delivery = make_delivery(endpoint)
    assert slot_acquire(endpoint_id=endpoint.pk, delivery_id=999, lease_seconds=60)  # another delivery is sending

    assert committed(attempts.delivery_attempt, delivery_id=delivery.pk) is None

    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 0
    assert receiver.requests == []
    [(ids, countdown)] = published
    assert ids == [delivery.pk]
    assert 1.0 <= countdown <= 3.0  # jittered around the busy delay

    slot_release(endpoint_id=endpoint.pk, delivery_id=999)
    attempt = attempts.delivery_attempt(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert attempt is not None
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert len(receiver.requests) == 1


def test_the_slot_is_given_back_after_a_failed_send(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    endpoint = WebhookEndpointFactory(url="http://127.0.0.1:9/hook")  # nothing listens: connection refused
    first, second = make_delivery(endpoint), make_delivery(endpoint)

    attempts.delivery_attempt(delivery_id=first.pk)

    first.refresh_from_db()
    assert first.status == DeliveryStatus.RETRYING
    assert slot_acquire(endpoint_id=endpoint.pk, delivery_id=second.pk, lease_seconds=60)


def test_without_a_limit_nothing_is_held_back(settings):
    settings.WEBHOOK_ENDPOINT_MAX_IN_FLIGHT = 0
    assert all(slot_acquire(endpoint_id=4, delivery_id=index, lease_seconds=60) for index in range(20))
