"""Races with real threads and real commits: one row and one handler run per event."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.test import Client

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus, ReceivedEvent
from events.services import event_process

from .conftest import post_event
from .factories import ReceivedEventFactory

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(function):
    """Run in a worker thread with its own database connection, closed afterwards."""

    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    return run


def post_all_at_once(bodies: list[dict]) -> list[int]:
    """POST each body to the intake from its own thread and client, all released together; their statuses."""
    barrier = threading.Barrier(len(bodies))

    @in_thread
    def deliver(body):
        client = Client()
        barrier.wait(timeout=10)
        return post_event(client, body).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(deliver, bodies))


def test_racing_identical_deliveries_store_one_row_and_run_the_handler_once(sample, recorder):
    body = sample(DetailType.TENANT_PROVISIONING)
    senders = 8

    statuses = post_all_at_once([body] * senders)

    assert sorted(statuses) == [200] * (senders - 1) + [202]
    assert ReceivedEvent.objects.filter(event_id=body["id"]).count() == 1
    event = ReceivedEvent.objects.get(event_id=body["id"])
    assert event.status == EventStatus.PROCESSED
    assert recorder.count() == 1
    assert EventAttempt.objects.filter(event=event).count() == 1


def test_racing_deliveries_with_different_bodies_keep_the_first_and_refuse_the_rest(sample, recorder):
    senders = 6
    bodies = []
    for index in range(senders):
        body = sample(DetailType.TENANT_DEPROVISIONING)
        body["detail"]["tenant"]["name"] = f"variant {index}"
        bodies.append(body)

    statuses = post_all_at_once(bodies)

    assert sorted(statuses) == [202] + [409] * (senders - 1)
    assert ReceivedEvent.objects.count() == 1
    assert recorder.count() == 1


def test_two_workers_racing_on_one_event_run_the_handler_once(recorder):
    event = ReceivedEventFactory()
    entered = threading.Event()
    release = threading.Event()

    def slow(evt, detail):
        entered.set()
        release.wait(timeout=30)

    recorder.on_call = slow
    process = in_thread(event_process)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(process, event_pk=event.pk)
        assert entered.wait(timeout=10)
        second = pool.submit(process, event_pk=event.pk)
        # The second worker sees the first one's claim and leaves (on SQLite it waits for the write lock).
        done_early = _wait(second, timeout=3)
        release.set()
        outcomes = sorted([first.result(timeout=30).outcome, second.result(timeout=30).outcome])

    event.refresh_from_db()
    assert outcomes == ["skipped", "succeeded"]
    assert recorder.count(event.pk) == 1
    assert event.status == EventStatus.PROCESSED
    assert list(EventAttempt.objects.filter(event=event).values_list("number", "outcome")) == [(1, "succeeded")]
    if connections["default"].vendor == "postgresql":
        assert done_early


def _wait(future, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if future.done():
            return True
        time.sleep(0.02)
    return False
