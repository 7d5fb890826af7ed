"""The webhooks' metrics, against real receivers: attempts by step and outcome with their latency, open
circuits and unfinished deliveries read from the database."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devstack.receivers import Reply
from orchestrator.tests.scraping import scrape
from webhooks.models import DeliveryStatus, DeliveryStep
from webhooks.services.attempts import delivery_attempt
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db

ATTEMPTS = "orchestrator_webhook_delivery_attempts_total"
SECONDS = "orchestrator_webhook_delivery_attempt_duration_seconds"


def deltas(before, after, name, keys):
    return {key: after.value(name, **dict(key)) - before.value(name, **dict(key)) for key in keys}


def test_attempts_are_counted_by_step_and_outcome_and_timed(client, settings, receiver, run_deployment):
    # Given a receiver that takes the chain's calls, and subscribers answering 204, 503, 400, or not allowed
    settings.WEBHOOK_RETRY_SCHEDULE = [3600]
    receiver.script("/busy", Reply(503))
    receiver.script("/bad", Reply(400))
    before = scrape(client, settings)

    # When a deployment runs its chain and each subscriber delivery is attempted once
    run_deployment(base=receiver.url(""))
    for url in (receiver.url("/ok"), receiver.url("/busy"), receiver.url("/bad"), "ftp://127.0.0.1/hook"):
        delivery_attempt(delivery_id=make_delivery(WebhookEndpointFactory(url=url)).pk)

    # Then every attempt is counted under its step and outcome, and timed under its step
    after = scrape(client, settings)
    chain = [step.value for step in DeliveryStep if step != DeliveryStep.SUBSCRIBER]
    counted = deltas(
        before,
        after,
        ATTEMPTS,
        [(("step", step), ("outcome", "succeeded")) for step in chain]
        + [(("step", "subscriber"), ("outcome", outcome)) for outcome in ("succeeded", "retry", "failed", "refused")],
    )
    assert counted == dict.fromkeys(counted, 1)
    timed = deltas(before, after, f"{SECONDS}_count", [(("step", step),) for step in [*chain, "subscriber"]])
    assert timed == {**dict.fromkeys(timed, 1), (("step", "subscriber"),): 4}
    assert [request.path for request in receiver.requests[:3]] == [
        "/bootstrap",
        "/feature-service/bootstrap",
        "/webhook",
    ]


def test_open_and_half_open_circuits_and_unfinished_deliveries_are_read_from_the_database(client, settings):
    settings.WEBHOOK_CIRCUIT_FAILURES = 3
    now = timezone.now()
    later, earlier = now + timedelta(minutes=5), now - timedelta(seconds=1)
    for failures, open_until, active in [
        (3, later, True),  # open
        (7, later, True),  # open (after failed probes)
        (4, earlier, True),  # half-open: its probe may go
        (3, later, False),  # disabled: not counted
        (2, None, True),  # below the threshold: closed
    ]:
        WebhookEndpointFactory(consecutive_failures=failures, circuit_open_until=open_until, is_active=active)
    endpoint = WebhookEndpointFactory()
    for status in [DeliveryStatus.PENDING, DeliveryStatus.RETRYING, DeliveryStatus.RETRYING, DeliveryStatus.SUCCEEDED]:
        make_delivery(endpoint, status=status)

    metrics = scrape(client, settings)

    assert metrics.value("orchestrator_webhook_circuits", state="open") == 2
    assert metrics.value("orchestrator_webhook_circuits", state="half_open") == 1
    unfinished = {status: metrics.value("orchestrator_webhook_deliveries", status=status) for status in DeliveryStatus}
    assert unfinished == {
        **dict.fromkeys(DeliveryStatus, 0),
        DeliveryStatus.PENDING: 1,
        DeliveryStatus.RETRYING: 2,
    }


def test_without_a_threshold_no_circuit_is_counted(client, settings):
    settings.WEBHOOK_CIRCUIT_FAILURES = 0
    WebhookEndpointFactory(consecutive_failures=9, circuit_open_until=timezone.now() + timedelta(minutes=5))

    metrics = scrape(client, settings)

    assert metrics.value("orchestrator_webhook_circuits", state="open") == 0
