"""The intake's and the handlers' metrics, as /metrics serves them: every answer counted by outcome and reason
and timed; every handler run by detail-type and outcome; the backlog's size and age read from the database."""

from datetime import timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from events.catalogue import DetailType
from events.intake.group_commit import intake_writer
from events.models import EventStatus, OutboxEvent, OutboxStatus, ReceivedEvent
from events.registry import EventRejected
from events.services import event_process
from orchestrator.tests.scraping import scrape

from .conftest import post_event
from .factories import OutboxEventFactory, ReceivedEventFactory
from .test_group_commit import table_locked, wait_until

REQUESTS = "orchestrator_intake_requests_total"
HANDLER_RUNS = "orchestrator_event_handler_runs_total"


def delta(before, after, name, **labels):
    return after.value(name, **labels) - before.value(name, **labels)


@pytest.mark.django_db
def test_every_intake_answer_is_counted_by_outcome_and_reason_and_timed(client, settings, intake, sample, recorder):
    body = sample(DetailType.TENANT_PROVISIONING)
    other_body = {**body, "detail": {**body["detail"], "extra": 1}}
    before = scrape(client, settings)

    answers = [
        intake(body).status_code,
        intake(body).status_code,
        intake(other_body).status_code,
        intake({**sample(DetailType.TENANT_PROVISIONING), "detail-type": "NOT_A_TYPE"}).status_code,
        intake("{not json").status_code,
        intake(sample(DetailType.TENANT_PROVISIONING), key=None).status_code,
        intake("x", content_type="text/plain").status_code,
    ]

    after = scrape(client, settings)
    assert answers == [202, 200, 409, 400, 400, 401, 415]
    counted = {
        (outcome, reason): delta(before, after, REQUESTS, outcome=outcome, reason=reason)
        for outcome, reason in [
            ("accepted", ""),
            ("duplicate", ""),
            ("rejected", "event_id_conflict"),
            ("rejected", "invalid_event"),
            ("rejected", "malformed_json"),
            ("rejected", "not_authenticated"),
            ("rejected", "unsupported_media_type"),
        ]
    }
    assert counted == dict.fromkeys(counted, 1)
    assert delta(before, after, "orchestrator_intake_request_duration_seconds_count") == len(answers)
    assert delta(before, after, "orchestrator_intake_request_duration_seconds_sum") > 0


@pytest.mark.django_db
def test_the_staff_event_list_is_not_counted_as_intake(admin_client, client, settings):
    before = scrape(client, settings)

    assert admin_client.get("/api/events/").status_code == 200

    after = scrape(client, settings)
    assert delta(before, after, "orchestrator_intake_request_duration_seconds_count") == 0


@pytest.mark.django_db(transaction=True)
def test_an_intake_answer_that_could_not_be_stored_in_time_is_counted_unavailable(client, settings, sample, recorder):
    if connections["default"].vendor != "postgresql":
        pytest.skip("group commit is exercised against PostgreSQL (table locks)")
    settings.INTAKE_GROUP_COMMIT = True
    settings.INTAKE_STORE_TIMEOUT_SECONDS = 0.3
    body = sample(DetailType.TENANT_PROVISIONING)
    before = scrape(client, settings)
    try:
        with table_locked():
            response = post_event(Client(), body)
        # The row is committed once the lock goes; its processing (eager here) runs in the dispatcher thread.
        wait_until(lambda: ReceivedEvent.objects.filter(event_id=body["id"], status=EventStatus.PROCESSED).exists())
    finally:
        intake_writer.close_connections()

    after = scrape(client, settings)
    assert response.status_code == 503
    assert delta(before, after, REQUESTS, outcome="unavailable", reason="store_timeout") == 1


@pytest.mark.django_db
def test_handler_runs_are_counted_by_detail_type_and_outcome_with_their_duration(client, settings, recorder):
    kind = DetailType.TENANT_DEPROVISIONING
    before = scrape(client, settings)

    event_process(event_pk=ReceivedEventFactory().pk)
    recorder.errors[kind] = RuntimeError("CodeBuild is down")
    event_process(event_pk=ReceivedEventFactory().pk)
    recorder.errors[kind] = EventRejected("tenant unknown")
    event_process(event_pk=ReceivedEventFactory().pk)
    done = ReceivedEventFactory(status=EventStatus.PROCESSED)
    assert event_process(event_pk=done.pk).outcome == "skipped"  # not a run

    after = scrape(client, settings)
    runs = {
        outcome: delta(before, after, HANDLER_RUNS, detail_type=kind, outcome=outcome)
        for outcome in ("succeeded", "failed", "rejected", "skipped")
    }
    assert runs == {"succeeded": 1, "failed": 1, "rejected": 1, "skipped": 0}
    assert delta(before, after, "orchestrator_event_handler_duration_seconds_count", detail_type=kind) == 3


@pytest.mark.django_db
def test_the_backlog_and_its_oldest_event_are_read_from_the_database(client, settings):
    # Given events waiting for 10 minutes (accepted), 2 minutes (retrying), a failed and a processed one
    now = timezone.now()
    for status, age in [
        (EventStatus.ACCEPTED, 600),
        (EventStatus.ACCEPTED, 30),
        (EventStatus.RETRYING, 120),
        (EventStatus.FAILED, 3600),
        (EventStatus.PROCESSED, 7200),
    ]:
        event = ReceivedEventFactory(status=status)
        ReceivedEvent.objects.filter(pk=event.pk).update(received_at=now - timedelta(seconds=age))
    # and two outbox rows unsent, the older for 5 minutes, and one sent an hour ago
    for status, age in [(OutboxStatus.PENDING, 300), (OutboxStatus.PENDING, 10), (OutboxStatus.SENT, 3600)]:
        row = OutboxEventFactory(status=status)
        OutboxEvent.objects.filter(pk=row.pk).update(created_at=now - timedelta(seconds=age))

    metrics = scrape(client, settings)

    counts = {status: metrics.value("orchestrator_events", status=status) for status in EventStatus.values}
    assert counts == {"accepted": 2, "processing": 0, "retrying": 1, "failed": 1, "processed": 0}
    assert 600 <= metrics.value("orchestrator_events_oldest_unprocessed_age_seconds") < 660
    assert metrics.value("orchestrator_outbox_unsent") == 2
    assert 300 <= metrics.value("orchestrator_outbox_oldest_unsent_age_seconds") < 360


@pytest.mark.django_db
def test_no_backlog_reads_as_zero_ages(client, settings):
    ReceivedEventFactory(status=EventStatus.PROCESSED)

    metrics = scrape(client, settings)

    assert metrics.value("orchestrator_events_oldest_unprocessed_age_seconds") == 0
    assert metrics.value("orchestrator_outbox_oldest_unsent_age_seconds") == 0
    assert ("orchestrator_outbox_unsent", frozenset()) in metrics.samples
