"""Broker outages lose nothing: the event is stored and accepted; the sweeper enqueues it once the broker
is back, and a real worker (real Redis) processes it."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.test import override_settings
from django.utils import timezone

from devstack.processes import free_port
from devstack.pytest_plugin import use_broker
from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent
from events.services import events_sweep_stale
from orchestrator.celery import app as celery_app

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_broker_down_then_up_loses_nothing(intake, sample, recorder, live_services):
    body = sample(DetailType.TENANT_PROVISIONING)

    # Given the broker is down: the event is still stored and accepted.
    with use_broker(f"redis://127.0.0.1:{free_port()}/0"):
        response = intake(body)
    assert response.status_code == 202, response.content
    event = ReceivedEvent.objects.get(event_id=body["id"])
    assert event.status == EventStatus.ACCEPTED
    assert recorder.count() == 0

    # When the broker is back and the sweeper runs after the threshold, with a real worker consuming.
    ReceivedEvent.objects.filter(pk=event.pk).update(updated_at=timezone.now() - timedelta(seconds=600))
    with use_broker(live_services["redis_url"]), start_worker(celery_app, perform_ping_check=False, pool="solo"):
        celery_app.control.purge()
        with override_settings(EVENT_SWEEP_AFTER_SECONDS=120):
            assert events_sweep_stale() == [event.pk]
        processed = wait_for(lambda: ReceivedEvent.objects.get(pk=event.pk).status == EventStatus.PROCESSED)

    # Then it was processed exactly once.
    assert processed
    assert recorder.count(event.pk) == 1


def test_after_a_failed_publish_the_intake_stops_waiting_on_the_dead_broker(intake, sample, recorder):
    from events.dispatch import broker_breaker

    first, second = sample(DetailType.TENANT_PROVISIONING), sample(DetailType.TENANT_PROVISIONING)
    second["id"] = first["id"] + "-second"

    with use_broker(f"redis://127.0.0.1:{free_port()}/0"):
        assert intake(first).status_code == 202
        assert broker_breaker.is_open()
        started = time.monotonic()
        assert intake(second).status_code == 202
        paused_answer_seconds = time.monotonic() - started

    # Both are stored for the sweeper; the second answer did not try the broker (no connect timeouts).
    assert ReceivedEvent.objects.filter(status=EventStatus.ACCEPTED).count() == 2
    assert paused_answer_seconds < 1.0
