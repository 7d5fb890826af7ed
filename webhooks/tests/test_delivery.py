"""The delivery engine against a real receiver: retry rules, Retry-After, timeouts, 410, same webhook-id."""

import json
import random
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from devstack.receivers import Reply
from webhooks.delivery import retry_delay, retry_schedule
from webhooks.models import (
    AttemptOutcome,
    DeliveryAttempt,
    DeliveryStatus,
)
from webhooks.services.attempts import delivery_attempt
from webhooks.services.dispatch import deliveries_sweep
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery
from webhooks.tests.independent import standard_ok

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint(receiver):
    return WebhookEndpointFactory(url=receiver.url("/hook"))


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_answers_schedule_another_attempt(receiver, endpoint, status):
    # given a receiver answering a retryable status
    receiver.script("/hook", Reply(status))
    delivery = make_delivery(endpoint)

    # when one attempt is made
    before = timezone.now()
    attempt = delivery_attempt(delivery_id=delivery.pk)

    # then it is recorded and another attempt is scheduled within the first backoff step (full jitter)
    delivery.refresh_from_db()
    assert attempt.status_code == status
    assert attempt.outcome == AttemptOutcome.RETRY
    assert delivery.status == DeliveryStatus.RETRYING
    assert before <= delivery.next_attempt_at <= timezone.now() + timedelta(seconds=5)
    assert len(receiver.at("/hook")) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 301, 302, 307])
def test_other_4xx_and_3xx_fail_without_retry(receiver, endpoint, status):
    # given a receiver answering a final status (a redirect points at a second path)
    receiver.script("/hook", Reply(status, headers={"Location": receiver.url("/elsewhere")}))
    delivery = make_delivery(endpoint)

    # when one attempt is made
    attempt = delivery_attempt(delivery_id=delivery.pk)

    # then the delivery failed for good and no redirect was followed
    delivery.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.FAILED
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.next_attempt_at is None
    assert receiver.paths() == ["/hook"]
    assert str(status) in delivery.status_reason


def test_retry_after_is_honoured(receiver, endpoint):
    # given a receiver rate-limiting with Retry-After: 120
    receiver.script("/hook", Reply(429, headers={"Retry-After": "120"}))
    delivery = make_delivery(endpoint)

    # when one attempt is made
    before = timezone.now()
    delivery_attempt(delivery_id=delivery.pk)

    # then the next attempt is not before the receiver asked (and not much later)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at >= before + timedelta(seconds=120)
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=121)


def test_an_early_task_does_not_send_before_the_scheduled_time(receiver, endpoint):
    # given a delivery scheduled for later
    delivery = make_delivery(
        endpoint, status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    # when its task runs now (duplicate or early)
    assert delivery_attempt(delivery_id=delivery.pk) is None

    # then nothing was sent
    assert receiver.requests == []


def test_a_timeout_is_recorded_and_retried(receiver, endpoint, settings):
    # given a receiver that does not answer within the read timeout
    settings.WEBHOOK_READ_TIMEOUT = 0.3
    hold = threading.Event()
    receiver.script("/hook", Reply(204, hold=hold))
    delivery = make_delivery(endpoint)

    # when one attempt is made
    try:
        attempt = delivery_attempt(delivery_id=delivery.pk)
    finally:
        hold.set()

    # then the attempt records the timeout and a retry is scheduled
    delivery.refresh_from_db()
    assert attempt.status_code is None
    assert "timed out" in attempt.error
    assert attempt.outcome == AttemptOutcome.RETRY
    assert delivery.status == DeliveryStatus.RETRYING


def test_a_refused_connection_is_retried(endpoint, settings):
    # given an endpoint where nothing listens
    from devstack.processes import free_port

    endpoint.url = f"http://127.0.0.1:{free_port()}/hook"
    endpoint.save()
    delivery = make_delivery(endpoint)

    # when one attempt is made
    attempt = delivery_attempt(delivery_id=delivery.pk)

    # then it is a network error, retried
    assert attempt.outcome == AttemptOutcome.RETRY
    assert "connection" in attempt.error


def test_a_receiver_failing_three_times_then_succeeding(receiver, endpoint, fast_retries, committed):
    # given a receiver that fails three times, then accepts
    receiver.script("/hook", Reply(500), Reply(503), Reply(502), Reply(204))
    delivery = make_delivery(endpoint)

    # when the delivery runs with its retries (due at once in this test)
    committed(delivery_attempt, delivery_id=delivery.pk)

    # then four attempts were made, the last succeeded, all with the same webhook-id and valid signatures
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    outcomes = list(delivery.attempt_log.order_by("number").values_list("status_code", "outcome"))
    assert outcomes == [
        (500, AttemptOutcome.RETRY),
        (503, AttemptOutcome.RETRY),
        (502, AttemptOutcome.RETRY),
        (204, AttemptOutcome.SUCCEEDED),
    ]
    requests = receiver.at("/hook")
    assert {r.headers["webhook-id"] for r in requests} == {delivery.message_id}
    assert all(standard_ok(r.body, r.headers, endpoint.secret.reveal()) for r in requests)
    assert len({r.body for r in requests}) == 1  # exactly the same bytes every time


def test_giving_up_after_the_schedule(receiver, endpoint, fast_retries, committed):
    # given a receiver that always fails
    receiver.default("/hook", Reply(500))
    delivery = make_delivery(endpoint)

    # when the delivery runs with its retries
    committed(delivery_attempt, delivery_id=delivery.pk)

    # then it stopped after the schedule (1 + 3 retries) and failed for good
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 4
    assert "gave up after 4 attempts" in delivery.status_reason
    assert len(receiver.at("/hook")) == 4


def test_410_gone_disables_the_subscriber_endpoint(receiver, endpoint):
    # given a subscriber that answers 410 Gone
    receiver.script("/hook", Reply(410))
    delivery = make_delivery(endpoint)
    later = make_delivery(endpoint)

    # when one attempt is made
    delivery_attempt(delivery_id=delivery.pk)

    # then the endpoint is disabled, and its other queued delivery is not sent
    endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert endpoint.is_active is False
    assert "410" in endpoint.disabled_reason
    assert delivery.status == DeliveryStatus.CANCELLED
    delivery_attempt(delivery_id=later.pk)
    later.refresh_from_db()
    assert later.status == DeliveryStatus.CANCELLED
    assert len(receiver.requests) == 1


def test_a_worker_killed_mid_request_resends_with_the_same_webhook_id(receiver, endpoint, settings):
    # given an attempt left RUNNING by a worker that died long ago
    delivery = make_delivery(endpoint, attempts=1, round_attempts=1)
    DeliveryAttempt.objects.create(
        delivery=delivery, number=1, url=delivery.url, started_at=timezone.now() - timedelta(minutes=10)
    )

    # when the re-delivered task runs
    attempt = delivery_attempt(delivery_id=delivery.pk)

    # then the old attempt is marked interrupted and the request went out again with the same id
    assert attempt.number == 2
    assert delivery.attempt_log.get(number=1).outcome == AttemptOutcome.INTERRUPTED
    (request,) = receiver.at("/hook")
    assert request.headers["webhook-id"] == delivery.message_id


def test_an_attempt_in_flight_is_not_sent_twice(receiver, endpoint):
    # given an attempt another worker started a moment ago
    delivery = make_delivery(endpoint, attempts=1)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, url=delivery.url)

    # when a duplicate task runs
    assert delivery_attempt(delivery_id=delivery.pk) is None

    # then nothing was sent
    assert receiver.requests == []


def test_custom_headers_never_override_signatures(receiver):
    # given an endpoint whose custom headers try to set signature headers (stored directly, bypassing validation)
    endpoint = WebhookEndpointFactory(
        url=receiver.url("/hook"),
        custom_headers={"webhook-signature": "v1,forged", "Webhook-Id": "forged", "X-Team": "billing"},
    )
    delivery = make_delivery(endpoint)

    # when it is sent
    delivery_attempt(delivery_id=delivery.pk)

    # then the engine's headers won and the harmless custom header was sent
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == delivery.message_id
    assert standard_ok(request.body, request.headers, endpoint.secret.reveal())
    assert "forged" not in request.headers["webhook-signature"]
    assert request.headers["x-team"] == "billing"


def test_the_response_is_stored_truncated(receiver, endpoint, settings):
    # given a receiver answering a large body
    settings.WEBHOOK_STORED_RESPONSE_CHARS = 100
    receiver.script("/hook", Reply(400, body=json.dumps({"error": "x" * 5000}).encode()))
    delivery = make_delivery(endpoint)

    # when one attempt is made
    attempt = delivery_attempt(delivery_id=delivery.pk)

    # then only the first characters are stored
    assert len(attempt.response_body) == 100
    assert attempt.response_body.startswith('{"error": "xxx')


def test_the_sweeper_re_enqueues_lost_deliveries(receiver, endpoint, settings, committed):
    # given a delivery due for a while whose task was lost
    delivery = make_delivery(endpoint, next_attempt_at=timezone.now() - timedelta(minutes=10))

    # when the sweeper runs
    count = committed(deliveries_sweep)

    # then it was sent
    assert count == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED


def test_the_default_schedule_backs_off_then_retries_hourly_for_a_day(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 30, 120, 600, 1800, 3600]
    settings.WEBHOOK_RETRY_INTERVAL = 3600
    settings.WEBHOOK_RETRY_WINDOW = 24 * 3600

    schedule = retry_schedule()

    assert schedule[:6] == [5, 30, 120, 600, 1800, 3600]
    assert set(schedule[6:]) == {3600}
    assert 23 * 3600 <= sum(schedule) <= 24 * 3600


def test_backoff_uses_full_jitter_and_stops_after_the_schedule(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = [5, 30]
    settings.WEBHOOK_RETRY_WINDOW = 0
    rng = random.Random(7)

    delays = [retry_delay(failures=1, rng=rng) for _ in range(200)]

    assert all(0 <= d <= 5 for d in delays)
    assert max(delays) - min(delays) > 2  # spread out, not a fixed delay
    assert 0 <= retry_delay(failures=2, rng=rng) <= 30
    assert retry_delay(failures=3, rng=rng) is None
    assert retry_delay(failures=1, retry_after=60, rng=rng) >= 60
