"""The retention machinery (orchestrator/retention.py) on the project's real models: references from other
apps are honoured the way Django's delete would (SET_NULL cleared, CASCADE/PROTECT keep the row), a run
applies each registered rule with its days, and a row another transaction holds is skipped, not waited for."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from events.models import EventStatus, ReceivedEvent
from events.tests.factories import ReceivedEventFactory
from orchestrator.retention import in_batches, retention_run, rows_purge
from orchestrator.tasks import retention_purge
from tenants.tests.factories import BuildFactory
from webhooks.models import DeliveryStep, Deployment, WebhookDelivery
from webhooks.tests.factories import TenantFactory

OLD = timezone.now() - timedelta(days=400)


def processed_event() -> ReceivedEvent:
    event = ReceivedEventFactory(status=EventStatus.PROCESSED)
    ReceivedEvent.objects.filter(pk=event.pk).update(finished_at=OLD)
    return event


@pytest.mark.django_db
def test_references_from_other_apps_are_cleared_or_keep_the_row():
    tenant = TenantFactory()
    kept_by_deployment = processed_event()
    Deployment.objects.create(event=kept_by_deployment, tenant=tenant)
    built = processed_event()
    build = BuildFactory(tenant=tenant, event=built)
    notified = processed_event()
    delivery = WebhookDelivery.objects.create(
        dedupe_key="test:notified",
        tenant=tenant,
        event=notified,
        step=DeliveryStep.SUBSCRIBER,
        signing_scheme="standard",
    )

    purged = rows_purge(ReceivedEvent.objects.filter(status=EventStatus.PROCESSED))

    assert purged == 2
    assert list(ReceivedEvent.objects.values_list("pk", flat=True)) == [kept_by_deployment.pk]
    build.refresh_from_db()
    delivery.refresh_from_db()
    assert (build.event_id, delivery.event_id) == (None, None)
    assert Deployment.objects.filter(event=kept_by_deployment).exists()


@pytest.mark.django_db
def test_batches_take_the_oldest_ids_first_and_at_most_the_batch_size():
    events = [processed_event() for _ in range(5)]

    batches = list(in_batches(ReceivedEvent.objects.all(), batch_size=2))

    assert batches == [[events[0].pk, events[1].pk], [events[2].pk, events[3].pk], [events[4].pk]]


@pytest.mark.django_db
def test_a_run_applies_each_rule_with_its_days_and_zero_keeps_forever(settings):
    settings.EVENT_RETENTION_DAYS = 0
    event = processed_event()

    assert "processed events" not in retention_run()
    assert ReceivedEvent.objects.filter(pk=event.pk).exists()

    settings.EVENT_RETENTION_DAYS = 500
    assert retention_run()["processed events"] == 0

    settings.EVENT_RETENTION_DAYS = 300
    assert retention_purge.delay().get()["processed events"] == 1  # the beat task, run eagerly
    assert not ReceivedEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_a_run_past_its_time_budget_starts_no_rule():
    event = processed_event()

    assert retention_run(max_seconds=0) == {}
    assert ReceivedEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_row_held_by_another_transaction_is_skipped_without_waiting():
    if not connection.features.has_select_for_update_skip_locked:
        pytest.skip("SKIP LOCKED needs PostgreSQL")
    held, free = processed_event(), processed_event()
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                ReceivedEvent.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting for the held row would fail the purge
        purged = rows_purge(ReceivedEvent.objects.filter(status=EventStatus.PROCESSED))
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")

    assert purged == 1
    assert list(ReceivedEvent.objects.values_list("pk", flat=True)) == [held.pk]
    assert not ReceivedEvent.objects.filter(pk=free.pk).exists()
