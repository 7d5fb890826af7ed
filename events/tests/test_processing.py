"""Dispatch and processing: idempotent, one attempt per run, retries with backoff, rejection, sweeper."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus, ReceivedEvent
from events.registry import EventRejected
from events.services import event_process, events_run, events_sweep_stale, retry_delay
from events.tasks import process_event, sweep_stale_events

from .factories import ReceivedEventFactory

pytestmark = pytest.mark.django_db


def attempts(event):
    return list(EventAttempt.objects.filter(event=event).order_by("number").values_list("number", "outcome"))


def test_success_records_result_and_one_attempt(recorder):
    event = ReceivedEventFactory()

    outcome = event_process(event_pk=event.pk)

    event.refresh_from_db()
    assert outcome.outcome == "succeeded"
    assert event.status == EventStatus.PROCESSED
    assert event.result == {"handled": DetailType.TENANT_DEPROVISIONING}
    assert event.attempts == 1
    assert event.finished_at is not None
    assert attempts(event) == [(1, "succeeded")]
    assert recorder.calls[0][2] == event.detail


def test_events_of_one_message_are_claimed_together_and_each_run_once(recorder, django_assert_max_num_queries):
    # given three accepted events, one of them named twice in the message
    first, second, third = ReceivedEventFactory.create_batch(3)

    # when the worker runs the message
    with django_assert_max_num_queries(5 + 3 * 4):  # one claim for all; per event: BEGIN, two finishing UPDATEs, COMMIT
        outcomes = events_run(event_pks=[first.pk, second.pk, first.pk, third.pk])

    # then each ran once, with one attempt
    assert [outcome.outcome for outcome in outcomes] == ["succeeded", "succeeded", "skipped", "succeeded"]
    assert recorder.count() == 3
    assert [attempts(event) for event in (first, second, third)] == [[(1, "succeeded")]] * 3


def test_processed_events_are_skipped(recorder):
    event = ReceivedEventFactory()
    event_process(event_pk=event.pk)

    again = event_process(event_pk=event.pk)

    assert again.outcome == "skipped"
    assert recorder.count() == 1
    assert attempts(event) == [(1, "succeeded")]


def test_a_missing_event_is_skipped(recorder):
    assert event_process(event_pk=987654).outcome == "skipped"


@override_settings(EVENT_RETRY_BACKOFF_SECONDS=10, EVENT_RETRY_BACKOFF_MAX_SECONDS=600)
def test_handler_error_is_retrying_with_backoff_and_the_reason(recorder):
    recorder.errors[DetailType.TENANT_DEPROVISIONING] = RuntimeError("CodeBuild said no; token=abc123secret")
    event = ReceivedEventFactory()

    before = timezone.now()
    outcome = event_process(event_pk=event.pk)

    event.refresh_from_db()
    assert outcome.outcome == "failed"
    assert 5 <= outcome.retry_in <= 10
    assert event.status == EventStatus.RETRYING
    assert before + timedelta(seconds=5) <= event.next_attempt_at <= timezone.now() + timedelta(seconds=10)
    assert "RuntimeError: CodeBuild said no" in event.last_error
    assert "abc123secret" not in event.last_error
    assert attempts(event) == [(1, "failed")]


def test_a_retry_that_is_not_due_is_skipped(recorder):
    recorder.errors[DetailType.TENANT_DEPROVISIONING] = RuntimeError("down")
    event = ReceivedEventFactory()
    event_process(event_pk=event.pk)

    assert event_process(event_pk=event.pk).outcome == "skipped"
    assert recorder.count() == 1


@override_settings(EVENT_MAX_ATTEMPTS=3)
def test_out_of_attempts_is_failed_and_then_left_alone(recorder):
    recorder.errors[DetailType.TENANT_DEPROVISIONING] = RuntimeError("still down")
    event = ReceivedEventFactory()

    outcomes = []
    for _ in range(3):
        outcomes.append(event_process(event_pk=event.pk))
        ReceivedEvent.objects.filter(pk=event.pk).update(next_attempt_at=timezone.now())

    event.refresh_from_db()
    assert [o.retry_in is not None for o in outcomes] == [True, True, False]
    assert event.status == EventStatus.FAILED
    assert attempts(event) == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert event_process(event_pk=event.pk).outcome == "skipped"
    assert recorder.count() == 3


def test_backoff_grows_and_is_capped():
    with override_settings(EVENT_RETRY_BACKOFF_SECONDS=10, EVENT_RETRY_BACKOFF_MAX_SECONDS=100):
        delays = {n: [retry_delay(attempt=n) for _ in range(50)] for n in (1, 2, 3, 8)}

    assert all(5 <= d <= 10 for d in delays[1])
    assert all(10 <= d <= 20 for d in delays[2])
    assert all(20 <= d <= 40 for d in delays[3])
    assert all(50 <= d <= 100 for d in delays[8])
    assert len(set(delays[1])) > 1  # jitter


def test_event_rejected_fails_at_once_without_retry(recorder):
    recorder.errors[DetailType.TENANT_DEPROVISIONING] = EventRejected("tenant is already deprovisioned")
    event = ReceivedEventFactory()

    outcome = event_process(event_pk=event.pk)

    event.refresh_from_db()
    assert outcome.outcome == "rejected"
    assert outcome.retry_in is None
    assert event.status == EventStatus.FAILED
    assert "already deprovisioned" in event.last_error
    assert attempts(event) == [(1, "rejected")]


def test_without_a_handler_the_event_fails_visibly():
    event = ReceivedEventFactory(detail_type="SOMETHING_UNREGISTERED")

    outcome = event_process(event_pk=event.pk)

    event.refresh_from_db()
    assert outcome.outcome == "failed"
    assert event.status == EventStatus.RETRYING
    assert "No handler registered" in event.last_error


def test_a_failing_handler_leaves_no_partial_database_writes(recorder):
    from django.contrib.auth import get_user_model

    def write_then_fail(event, detail):
        get_user_model().objects.create(username="written-by-handler")
        raise RuntimeError("after writing")

    recorder.on_call = write_then_fail
    event = ReceivedEventFactory()

    event_process(event_pk=event.pk)

    assert not get_user_model().objects.filter(username="written-by-handler").exists()


def test_the_task_schedules_its_retry(recorder, django_capture_on_commit_callbacks, monkeypatch):
    recorder.errors[DetailType.TENANT_DEPROVISIONING] = RuntimeError("down")
    event = ReceivedEventFactory()
    scheduled = []
    monkeypatch.setattr(process_event, "apply_async", lambda **kwargs: scheduled.append(kwargs))

    with django_capture_on_commit_callbacks(execute=True):
        result = process_event.run(event_pk=event.pk)

    event.refresh_from_db()
    assert result == "failed"
    assert len(scheduled) == 1
    assert scheduled[0]["kwargs"] == {"event_pk": event.pk}
    assert scheduled[0]["countdown"] == pytest.approx((event.next_attempt_at - timezone.now()).total_seconds(), abs=2)


@override_settings(EVENT_SWEEP_AFTER_SECONDS=120)
def test_sweeper_reenqueues_only_stale_unfinished_events(recorder, django_capture_on_commit_callbacks):
    old = timezone.now() - timedelta(seconds=600)
    stale_accepted = ReceivedEventFactory()
    fresh_accepted = ReceivedEventFactory()
    stale_retrying = ReceivedEventFactory(status=EventStatus.RETRYING, next_attempt_at=old, attempts=1)
    done = ReceivedEventFactory(status=EventStatus.PROCESSED)
    ReceivedEvent.objects.filter(pk__in=[stale_accepted.pk, done.pk]).update(updated_at=old)

    with django_capture_on_commit_callbacks(execute=True):
        swept = events_sweep_stale()

    assert sorted(swept) == sorted([stale_accepted.pk, stale_retrying.pk])
    for event in (stale_accepted, stale_retrying):
        event.refresh_from_db()
        assert event.status == EventStatus.PROCESSED
    fresh_accepted.refresh_from_db()
    assert fresh_accepted.status == EventStatus.ACCEPTED
    assert recorder.count(fresh_accepted.pk) == 0
    assert recorder.count(done.pk) == 0


@override_settings(EVENT_SWEEP_AFTER_SECONDS=120)
def test_worker_killed_mid_task_is_rerun_once_as_a_new_attempt(recorder, django_capture_on_commit_callbacks):
    # Given: a worker claimed the event (attempt 1 running) and died; nothing finished it.
    event = ReceivedEventFactory()
    claimed_by_dead_worker = ReceivedEvent.objects.get(pk=event.pk)
    claimed_by_dead_worker.status = EventStatus.PROCESSING
    claimed_by_dead_worker.attempts = 1
    claimed_by_dead_worker.started_at = timezone.now() - timedelta(seconds=30)
    claimed_by_dead_worker.save()
    EventAttempt.objects.create(event=event, number=1)

    # While it is younger than the threshold, nobody steals it.
    with django_capture_on_commit_callbacks(execute=True):
        assert events_sweep_stale() == []
    assert event_process(event_pk=event.pk).outcome == "skipped"

    # When: it is older than the threshold, the sweeper re-runs it.
    ReceivedEvent.objects.filter(pk=event.pk).update(started_at=timezone.now() - timedelta(seconds=600))
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stale_events.run() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stale_events.run() == 0

    # Then: exactly one more handler run, as attempt 2; attempt 1 is closed as abandoned.
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert recorder.count(event.pk) == 1
    assert attempts(event) == [(1, "failed"), (2, "succeeded")]
    assert "Abandoned" in EventAttempt.objects.get(event=event, number=1).error


@override_settings(EVENT_MAX_ATTEMPTS=1, EVENT_SWEEP_AFTER_SECONDS=1)
def test_an_abandoned_event_out_of_attempts_fails_without_running(recorder):
    event = ReceivedEventFactory(
        status=EventStatus.PROCESSING, attempts=1, started_at=timezone.now() - timedelta(seconds=60)
    )

    outcome = event_process(event_pk=event.pk)

    event.refresh_from_db()
    assert outcome.outcome == "failed"
    assert event.status == EventStatus.FAILED
    assert recorder.count() == 0


def test_processing_query_budget(recorder, django_assert_max_num_queries):
    event = ReceivedEventFactory()

    with django_assert_max_num_queries(16):
        event_process(event_pk=event.pk)

    assert connection.vendor in ("postgresql", "sqlite")
