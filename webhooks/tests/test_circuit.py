"""The circuit breaker per endpoint, against real receivers: a dead endpoint stops costing attempts, one probe
at a time tries it again, and whatever waited goes out once it answers."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from devstack.processes import free_port
from devstack.receivers import Reply
from webhooks import circuit
from webhooks.models import AttemptOutcome, DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import attempts
from webhooks.services.attempts import deliveries_attempt, delivery_attempt
from webhooks.services.dispatch import deliveries_dispatch_due, deliveries_sweep
from webhooks.services.retry import delivery_retry
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def breaker(settings, monkeypatch):
    settings.WEBHOOK_CIRCUIT_FAILURES = 3
    settings.WEBHOOK_CIRCUIT_COOLDOWN_SECONDS = 60
    settings.WEBHOOK_CIRCUIT_MAX_COOLDOWN_SECONDS = 300
    # A failed delivery's own retry is an hour away (not a jittered draw that may be due at once): the
    # circuit decides what is sent next.
    monkeypatch.setattr(attempts, "retry_delay", lambda **_: 3600.0)
    return settings


@pytest.fixture
def dead_endpoint():
    """An endpoint on a loopback port nothing listens on: every connection is refused."""
    return WebhookEndpointFactory(url=f"http://127.0.0.1:{free_port()}/hook")


def trip(endpoint, *, failures=3):
    for _ in range(failures):
        delivery_attempt(delivery_id=make_delivery(endpoint).pk)
    endpoint.refresh_from_db()
    return endpoint


def half_open(endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(circuit_open_until=timezone.now() - timedelta(seconds=1))
    endpoint.refresh_from_db()


def test_failures_in_a_row_open_the_circuit_and_later_deliveries_wait_without_an_attempt(dead_endpoint):
    # given an endpoint that refused three deliveries in a row
    before = timezone.now()
    endpoint = trip(dead_endpoint)
    assert endpoint.consecutive_failures == 3
    assert circuit.circuit_state(endpoint) == "open"
    assert before + timedelta(seconds=60) <= endpoint.circuit_open_until <= timezone.now() + timedelta(seconds=60)
    assert endpoint.circuit_opened_at >= before

    # when a fourth delivery is due
    waiting = make_delivery(endpoint)
    assert delivery_attempt(delivery_id=waiting.pk) is None

    # then it was not sent: no attempt spent, it waits for the circuit, and says why
    waiting.refresh_from_db()
    assert DeliveryAttempt.objects.filter(delivery=waiting).count() == 0
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.RETRYING, 0)
    assert waiting.next_attempt_at == endpoint.circuit_open_until
    assert "circuit open" in waiting.status_reason
    assert "3 failures in a row" in waiting.status_reason


def test_answers_from_a_live_receiver_do_not_count_and_a_success_resets_the_count(receiver):
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    # given two 5xx answers in a row
    receiver.script("/hook", Reply(503), Reply(500), Reply(404), Reply(429), Reply(200))
    for _ in range(2):
        delivery_attempt(delivery_id=make_delivery(endpoint).pk)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 2

    # when the receiver answers 404 and 429 (it is up, it refuses these), then 200
    for _ in range(2):
        delivery_attempt(delivery_id=make_delivery(endpoint).pk)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 2  # neither a failure nor a success
    delivery_attempt(delivery_id=make_delivery(endpoint).pk)

    # then the success reset the count: the circuit never opened
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.circuit_open_until) == (0, None)


def test_the_dispatcher_sends_nothing_while_open_and_one_probe_when_half_open(dead_endpoint, published):
    # given a tripped endpoint with three deliveries waiting (due long ago) and a healthy retry elsewhere
    endpoint = trip(dead_endpoint)
    overdue = timezone.now() - timedelta(minutes=5)
    waiting = [make_delivery(endpoint, status=DeliveryStatus.RETRYING, next_attempt_at=overdue) for _ in range(3)]
    elsewhere = make_delivery(
        WebhookEndpointFactory(url="http://127.0.0.1:9/x"), status=DeliveryStatus.RETRYING, next_attempt_at=overdue
    )

    # when the dispatcher and the sweeper pass while the circuit is open
    assert deliveries_dispatch_due() == 1
    deliveries_sweep()
    # then only the other endpoint's retry was queued (by both: the sweeper ignores queued_at)
    assert {pk for batch in published for pk in batch} == {elsewhere.pk}

    # when the cooldown is over (half-open)
    published.clear()
    half_open(endpoint)
    assert deliveries_dispatch_due() == 1
    # then exactly one of the waiting deliveries is queued: the probe
    [[probe]] = published
    assert probe in {delivery.pk for delivery in waiting}


def test_a_half_open_endpoint_gets_one_probe_per_batch_the_others_keep_waiting(dead_endpoint):
    endpoint = trip(dead_endpoint)
    half_open(endpoint)
    batch = [make_delivery(endpoint) for _ in range(3)]

    attempts = deliveries_attempt(delivery_ids=[delivery.pk for delivery in batch])

    assert len(attempts) == 1  # the probe (refused again)
    statuses = WebhookDelivery.objects.filter(pk__in=[d.pk for d in batch]).values_list("attempts", flat=True)
    assert sorted(statuses) == [0, 0, 1]


def test_a_failed_probe_opens_the_circuit_for_twice_as_long(dead_endpoint):
    endpoint = trip(dead_endpoint)
    half_open(endpoint)
    probed_at = timezone.now()

    attempt = delivery_attempt(delivery_id=make_delivery(endpoint).pk)

    endpoint.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.RETRY
    assert endpoint.consecutive_failures == 4
    assert circuit.circuit_state(endpoint) == "open"
    assert endpoint.circuit_open_until >= probed_at + timedelta(seconds=120)  # 60 s doubled


def test_the_cooldown_doubles_per_failed_probe_up_to_the_cap():
    assert [circuit.cooldown(failures).total_seconds() for failures in (3, 4, 5, 6, 9)] == [60, 120, 240, 300, 300]


def test_a_successful_probe_closes_the_circuit_and_releases_every_waiting_delivery(receiver):
    # given an endpoint tripped by three 503s in a row, with deliveries waiting for it
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    receiver.script("/hook", Reply(503), Reply(503), Reply(503))  # then 200s: it recovered
    endpoint = trip(endpoint)
    waiting = [make_delivery(endpoint) for _ in range(2)]
    deliveries_attempt(delivery_ids=[delivery.pk for delivery in waiting])
    assert len(receiver.at("/hook")) == 3  # held back: the circuit is open

    # when the cooldown is over and the probe is answered 200
    half_open(endpoint)
    released_at = timezone.now()
    attempt = delivery_attempt(delivery_id=make_delivery(endpoint).pk)

    # then the circuit is closed and every waiting delivery is due now
    endpoint.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.SUCCEEDED
    assert (endpoint.consecutive_failures, endpoint.circuit_open_until, endpoint.circuit_opened_at) == (0, None, None)
    for delivery in waiting:
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.RETRYING
        assert released_at - timedelta(seconds=1) <= delivery.next_attempt_at <= timezone.now()
    # and they go out when they are attempted
    deliveries_attempt(delivery_ids=[delivery.pk for delivery in waiting])
    statuses = WebhookDelivery.objects.filter(pk__in=[delivery.pk for delivery in waiting]).values_list("status")
    assert set(statuses) == {(DeliveryStatus.SUCCEEDED,)}


def test_a_waiting_delivery_older_than_the_retry_window_fails(dead_endpoint, breaker):
    endpoint = trip(dead_endpoint)
    old = make_delivery(endpoint)
    WebhookDelivery.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(seconds=breaker.WEBHOOK_RETRY_WINDOW + 60)
    )

    assert delivery_attempt(delivery_id=old.pk) is None

    old.refresh_from_db()
    assert old.status == DeliveryStatus.FAILED
    assert "longer than the retry window" in old.status_reason
    assert old.attempts == 0


def test_a_staff_retry_goes_out_at_once_as_the_probe(dead_endpoint, django_user_model, committed):
    endpoint = trip(dead_endpoint)
    failed = make_delivery(endpoint, status=DeliveryStatus.FAILED)
    staff = django_user_model.objects.create_user("ops", is_staff=True)

    result = committed(delivery_retry, delivery=failed, actor_user=staff)

    # (tasks run eagerly in tests: the retry was attempted, as the probe, although the circuit was open)
    assert result.queued
    failed.refresh_from_db()
    assert failed.attempts == 1
    assert DeliveryAttempt.objects.get(delivery=failed).outcome == AttemptOutcome.RETRY
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 4


def test_without_a_threshold_the_breaker_is_off(dead_endpoint, breaker):
    breaker.WEBHOOK_CIRCUIT_FAILURES = 0
    endpoint = trip(dead_endpoint, failures=5)
    assert endpoint.consecutive_failures == 0
    assert delivery_attempt(delivery_id=make_delivery(endpoint).pk) is not None


def test_staff_see_the_circuit_and_close_it_to_send_what_waited(dead_endpoint, admin_client, receiver):
    # given a tripped endpoint with a delivery waiting, whose receiver staff have brought back
    endpoint = trip(dead_endpoint)
    waiting = make_delivery(endpoint)
    delivery_attempt(delivery_id=waiting.pk)

    # then the admin list shows the open circuit and the API says "open"
    page = admin_client.get("/admin/webhooks/webhookendpoint/").content.decode()
    assert "open until" in page
    assert "3 failures in a row" in page
    answer = admin_client.get(f"/api/webhook-endpoints/{endpoint.pk}/").json()
    assert (answer["circuit"], answer["consecutive_failures"]) == ("open", 3)

    # when staff close the circuit (admin action, POST)
    response = admin_client.post(
        "/admin/webhooks/webhookendpoint/", {"action": "close_circuits", "_selected_action": [endpoint.pk]}
    )

    # then the waiting delivery is due now and the circuit is closed
    assert response.status_code == 302
    endpoint.refresh_from_db()
    waiting.refresh_from_db()
    assert circuit.circuit_state(endpoint) == "closed"
    assert waiting.next_attempt_at <= timezone.now()


def test_a_new_url_closes_the_circuit_but_saving_the_same_one_does_not(dead_endpoint):
    from webhooks.services.endpoints import endpoint_update

    endpoint = trip(dead_endpoint)
    endpoint_update(endpoint=endpoint, url=endpoint.url, description="unchanged address")
    endpoint.refresh_from_db()
    assert circuit.circuit_state(endpoint) == "open"

    endpoint_update(endpoint=endpoint, url="http://127.0.0.1:9/new")
    endpoint.refresh_from_db()
    assert circuit.circuit_state(endpoint) == "closed"


@pytest.mark.django_db(transaction=True)
def test_a_success_resets_failures_other_workers_counted_while_it_was_in_flight(receiver):
    # given an endpoint that answers slowly; its count is 0 when the attempt starts
    hold = threading.Event()
    receiver.script("/hook", Reply(200, hold=hold))
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"))
    delivery = make_delivery(endpoint)

    def attempt_in_another_thread() -> None:
        try:
            delivery_attempt(delivery_id=delivery.pk)
        finally:
            connections.close_all()  # this thread's connection, or the test database could not be dropped

    worker = threading.Thread(target=attempt_in_another_thread)
    worker.start()

    # when other workers count two failures meanwhile, and then this attempt is answered 200
    deadline = timezone.now() + timedelta(seconds=10)
    while not receiver.at("/hook") and timezone.now() < deadline:
        hold.wait(0.01)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=2)
    hold.set()
    worker.join(10)

    # then the success reset the count the database had, not the one loaded before the request
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0
