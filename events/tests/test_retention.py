"""Retention of the events app: processed events (with their attempts) and sent outbox rows older than their
days go, in batches; anything still to be processed or sent stays."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.models import EventAttempt, EventStatus, OutboxEvent, OutboxStatus, ReceivedEvent
from events.retention import events_purge_processed, outbox_purge_sent
from events.tests.factories import OutboxEventFactory, ReceivedEventFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
CUTOFF = NOW - timedelta(days=30)
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)


def event(*, status: str, finished_at, attempts: int = 1) -> ReceivedEvent:
    created = ReceivedEventFactory(status=status)
    ReceivedEvent.objects.filter(pk=created.pk).update(finished_at=finished_at)
    for number in range(1, attempts + 1):
        EventAttempt.objects.create(event=created, number=number)
    return created


def test_processed_events_older_than_the_cutoff_go_with_their_attempts_and_the_rest_stays():
    old = [event(status=EventStatus.PROCESSED, finished_at=OLD, attempts=2) for _ in range(3)]
    recent = event(status=EventStatus.PROCESSED, finished_at=RECENT)
    unfinished = [
        event(status=status, finished_at=OLD)
        for status in (EventStatus.ACCEPTED, EventStatus.PROCESSING, EventStatus.RETRYING, EventStatus.FAILED)
    ]

    purged = events_purge_processed(cutoff=CUTOFF)

    assert purged == 3
    kept = set(ReceivedEvent.objects.values_list("pk", flat=True))
    assert kept == {recent.pk, *(e.pk for e in unfinished)}
    assert not EventAttempt.objects.filter(event_id__in=[e.pk for e in old]).exists()
    assert EventAttempt.objects.filter(event__in=kept).count() == 5


def test_a_purge_deletes_in_batches_of_the_configured_size(settings):
    settings.RETENTION_BATCH_SIZE = 2
    for _ in range(5):
        event(status=EventStatus.PROCESSED, finished_at=OLD)

    with CaptureQueriesContext(connection) as queries:
        purged = events_purge_processed(cutoff=CUTOFF)

    assert purged == 5
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "events_receivedevent"')]
    assert len(deletes) == 3  # 2 + 2 + 1 rows
    assert not ReceivedEvent.objects.exists()


def test_outbox_rows_go_once_sent_and_old_enough_never_before():
    old_sent = OutboxEventFactory(status=OutboxStatus.SENT, sent_at=OLD)
    recent_sent = OutboxEventFactory(status=OutboxStatus.SENT, sent_at=RECENT)
    pending = OutboxEventFactory(status=OutboxStatus.PENDING)
    failed = OutboxEventFactory(status=OutboxStatus.FAILED)
    OutboxEvent.objects.filter(pk__in=[pending.pk, failed.pk]).update(created_at=OLD)

    purged = outbox_purge_sent(cutoff=CUTOFF)

    assert purged == 1
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent_sent.pk, pending.pk, failed.pk}
    assert not OutboxEvent.objects.filter(pk=old_sent.pk).exists()
