"""Deliveries in batches: one task per fan-out, requests in parallel, answers recorded as they arrive."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devstack.receivers import Reply
from tenants.models import TenantHistory
from webhooks.models import AttemptOutcome, DeliveryAttempt, DeliveryStatus, WebhookDelivery
from webhooks.services import attempts as attempt_engine
from webhooks.services.attempts import deliveries_attempt
from webhooks.services.dispatch import deliveries_dispatch_due, delivery_enqueue
from webhooks.services.notify import subscribers_notify
from webhooks.tests.factories import DeployingTenantFactory, WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


def test_a_fan_out_is_published_as_tasks_of_a_batch_each(receiver, published, settings, committed):
    # given seven subscribed endpoints and batches of three
    settings.WEBHOOK_DELIVERY_BATCH = 3
    for index in range(7):
        WebhookEndpointFactory(url=receiver.url(f"/hook{index}"), events=["tenant.deployed"])

    # when one notification fans out in one transaction
    tenant = DeployingTenantFactory()

    def notify():
        with transaction.atomic():
            return subscribers_notify(tenant=tenant, event_type="tenant.deployed", dedupe_prefix="fan", data={})

    deliveries = committed(notify)

    # then three messages carry the seven deliveries
    assert [len(ids) for ids in published] == [3, 3, 1]
    assert sorted(pk for ids in published for pk in ids) == sorted(delivery.pk for delivery in deliveries)


def test_ids_of_a_rolled_back_transaction_are_not_published(endpoint_at, published, committed):
    # given a delivery enqueued in a transaction that rolls back
    first, second = make_delivery(endpoint_at("/a")), make_delivery(endpoint_at("/b"))

    def rolled_back():
        with transaction.atomic():
            delivery_enqueue(delivery_id=first.pk)
            transaction.set_rollback(True)

    def enqueued():
        with transaction.atomic():
            delivery_enqueue(delivery_id=second.pk)

    # when the next transaction enqueues another
    committed(rolled_back)
    committed(enqueued)

    # then only the committed one is published
    assert published == [[second.pk]]


def test_a_retry_waits_in_the_database_and_the_dispatcher_queues_it_once_when_due(published, monkeypatch, committed):
    # given a receiver that refuses connections and a first retry a minute later (not a jittered draw: one
    # close to 0 s is due at once and rightly queued straight away)
    monkeypatch.setattr(attempt_engine, "retry_delay", lambda **_: 60.0)
    endpoint = WebhookEndpointFactory(url="http://127.0.0.1:9/hook")
    delivery = make_delivery(endpoint)
    committed(deliveries_attempt, delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING

    # when the dispatcher passes before and after the retry is due
    before = committed(deliveries_dispatch_due)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # the minute passed
    due = committed(deliveries_dispatch_due)
    again = committed(deliveries_dispatch_due)

    # then nothing was queued for the retry until it was due, and then once
    assert (before, due, again) == (0, 1, 0)
    assert published == [[delivery.pk]]


def test_the_dispatcher_queues_only_retries_not_queued_since_they_became_due(endpoint_at, published):
    became_due = timezone.now() - timedelta(seconds=5)
    retrying = {"status": DeliveryStatus.RETRYING, "next_attempt_at": became_due}
    queued = make_delivery(endpoint_at("/a"), **retrying, queued_at=became_due + timedelta(seconds=1))
    waiting = make_delivery(endpoint_at("/b"), **retrying, queued_at=became_due - timedelta(hours=1))
    make_delivery(endpoint_at("/c"), next_attempt_at=became_due)  # pending: queued when it was created
    make_delivery(endpoint_at("/d"), status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(60))

    assert deliveries_dispatch_due() == 1

    assert published == [[waiting.pk]]
    assert queued.pk not in published[0]
    waiting.refresh_from_db()
    assert waiting.queued_at >= waiting.next_attempt_at


def test_answers_are_recorded_as_they_arrive(receiver, endpoint_at, monkeypatch):
    # given four fast endpoints and one that holds its answer
    hold = threading.Event()
    receiver.script("/slow", Reply(204, hold=hold))
    fast = [make_delivery(endpoint_at(f"/fast{index}")) for index in range(4)]
    slow = make_delivery(endpoint_at("/slow"))
    groups = []
    conclude = attempt_engine._attempts_conclude

    fast_pks = sorted(delivery.pk for delivery in fast)

    def spy(group):
        groups.append((sorted(sent.flight.delivery.pk for sent in group), hold.is_set()))
        conclude(group)
        if sorted(pk for pks, _ in groups for pk in pks) == fast_pks:
            hold.set()  # the slow receiver answers only after the fast ones were recorded

    monkeypatch.setattr(attempt_engine, "_attempts_conclude", spy)

    # when one batch sends all five
    attempts = deliveries_attempt(delivery_ids=[slow.pk, *(delivery.pk for delivery in fast)])

    # then the fast answers were recorded (together, or in a few groups on a busy machine) while the slow one
    # was still out, then the slow one on its own
    *fast_groups, last = groups
    assert sorted(pk for pks, _ in fast_groups for pk in pks) == fast_pks
    assert all(not held for _, held in fast_groups)
    assert last == ([slow.pk], True)
    assert {attempt.outcome for attempt in attempts} == {AttemptOutcome.SUCCEEDED}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
    assert len(receiver.requests) == 5


def test_a_batch_costs_a_few_statements_per_group_of_answers(endpoint_at):
    # given ten due deliveries of one tenant to fast receivers
    tenant = DeployingTenantFactory()
    deliveries = [make_delivery(endpoint_at(f"/hook{index}"), tenant=tenant) for index in range(10)]

    # when one batch sends them
    with CaptureQueriesContext(connection) as queries:
        attempts = deliveries_attempt(delivery_ids=[delivery.pk for delivery in deliveries])

    # then all were delivered, and recorded on the tenant's timeline, with a fixed few statements per
    # transaction (the start, and one per group of answers: savepoint, lock, deliveries updated, timeline
    # entries and attempts written, circuits read, release), where one delivery at a time took nine each
    assert [attempt.outcome for attempt in attempts] == [AttemptOutcome.SUCCEEDED] * 10
    transactions = sum(query["sql"].startswith("SAVEPOINT") for query in queries)
    assert len(queries) <= 8 * transactions, [query["sql"][:80] for query in queries]
    assert TenantHistory.objects.filter(tenant=tenant, summary__contains="delivered (HTTP 204)").count() == 10
    fields = ("outcome", "status_code", "duration_ms", "error", "response_truncated", "retry_at")
    stored = {row["id"]: row for row in DeliveryAttempt.objects.values("id", *fields)}
    for attempt in attempts:
        assert stored[attempt.pk] == {"id": attempt.pk, **{name: getattr(attempt, name) for name in fields}}
        assert attempt.status_code == 204


def test_a_group_with_failures_records_each_result(endpoint_at, receiver, settings):
    # given one receiver that answers 503, one that is gone, one nothing listens on, and a healthy one
    settings.WEBHOOK_RETRY_SCHEDULE = [60]
    receiver.script("/busy", Reply(503, body=b"try later"))
    receiver.script("/gone", Reply(410))
    deliveries = [
        make_delivery(endpoint_at("/busy")),
        make_delivery(endpoint_at("/gone")),
        make_delivery(WebhookEndpointFactory(url="http://127.0.0.1:9/down")),
        make_delivery(endpoint_at("/ok")),
    ]

    deliveries_attempt(delivery_ids=[delivery.pk for delivery in deliveries])

    # then every attempt row holds its own result
    rows = {
        row["delivery_id"]: row
        for row in DeliveryAttempt.objects.values("delivery_id", "outcome", "status_code", "response_body", "error")
    }
    busy, gone, down, ok = (rows[delivery.pk] for delivery in deliveries)
    assert (busy["outcome"], busy["status_code"], busy["response_body"]) == (AttemptOutcome.RETRY, 503, "try later")
    assert (gone["outcome"], gone["status_code"]) == (AttemptOutcome.FAILED, 410)
    assert down["outcome"] == AttemptOutcome.RETRY
    assert down["status_code"] is None
    assert "refused" in down["error"].lower()
    assert (ok["outcome"], ok["status_code"]) == (AttemptOutcome.SUCCEEDED, 204)
    assert DeliveryAttempt.objects.filter(outcome=AttemptOutcome.RETRY, retry_at__isnull=False).count() == 2
