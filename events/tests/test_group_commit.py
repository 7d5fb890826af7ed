"""Group commit (events.intake.group_commit) with real threads, a real PostgreSQL and real locks: requests that
arrive together share one statement, each still answers only after its own row is committed, and a
failure stays with the request it belongs to."""

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.db import DataError, connections
from django.test import Client

from events.catalogue import DetailType
from events.dispatch import events_dispatch
from events.intake.envelope import Envelope, envelope_validate
from events.intake.group_commit import intake_writer
from events.models import ReceivedEvent

from .conftest import post_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def group_commit(settings) -> Iterator[None]:
    if connections["default"].vendor != "postgresql":
        pytest.skip("group commit is exercised against PostgreSQL (table locks, pg_stat_activity)")
    settings.INTAKE_GROUP_COMMIT = True
    yield
    intake_writer.close_connections()  # the writer's own connection must not outlive the test database


def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def blocked_inserts() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@contextmanager
def table_locked() -> Iterator[None]:
    """Hold an exclusive lock on the events table from another connection: inserts wait behind it."""
    holder = connections.create_connection("default")
    try:
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE events_receivedevent IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        holder.rollback()
        holder.close()


def post_all(bodies: list[dict], *, while_locked: bool = True) -> list[int]:
    """Post each body from its own thread; with ``while_locked`` all but the first queue, in order, behind
    the first one's batch, which waits for the lock."""

    def post(body: dict) -> int:
        try:
            return post_event(Client(), body).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        if not while_locked:
            return list(pool.map(post, bodies))
        with table_locked():
            first = pool.submit(post, bodies[0])
            wait_until(lambda: blocked_inserts() == 1)  # the writer is inside its first batch
            rest = []
            for queued, body in enumerate(bodies[1:], start=1):  # one at a time: the queue keeps their order
                rest.append(pool.submit(post, body))
                wait_until(lambda queued=queued: intake_writer._queue.qsize() == queued)
        return [first.result(timeout=30)] + [future.result(timeout=30) for future in rest]


def distinct_events(sample, count: int) -> list[dict]:
    bodies = []
    for index in range(count):
        body = sample(DetailType.TENANT_PROVISIONING)
        body["id"] = f"{body['id']}-{index}"
        bodies.append(body)
    return bodies


def batch_sizes(records: list[logging.LogRecord]) -> list[int]:
    return [len(record.events) for record in records if record.getMessage() == "events accepted"]


def test_events_arriving_together_share_one_insert_and_are_each_processed_once(sample, recorder, caplog):
    bodies = distinct_events(sample, 12)

    with caplog.at_level(logging.INFO, logger="events.services"):
        statuses = post_all(bodies)

    assert statuses == [202] * 12
    # The first event waited for the lock alone; the eleven that queued meanwhile went in one statement.
    assert batch_sizes(caplog.records) == [1, 11]
    assert ReceivedEvent.objects.filter(event_id__in=[body["id"] for body in bodies]).count() == 12
    wait_until(lambda: recorder.count() == 12)
    assert sorted(pk for _, pk, _ in recorder.calls) == sorted(ReceivedEvent.objects.values_list("pk", flat=True))


def test_one_id_twice_in_a_batch_is_stored_once_and_a_different_body_is_refused(sample, recorder):
    first, same, different = (sample(DetailType.TENANT_PROVISIONING) for _ in range(3))
    same["id"] = different["id"] = first["id"]
    different["detail"]["tenant"]["name"] = "Someone else"

    statuses = post_all([sample(DetailType.TENANT_DEPROVISIONING), first, same, different])

    assert statuses == [202, 202, 200, 409]
    assert ReceivedEvent.objects.filter(event_id=first["id"]).count() == 1
    wait_until(lambda: recorder.count() == 2)


def test_concurrent_senders_without_a_lock_all_get_their_answer(sample, recorder):
    bodies = distinct_events(sample, 30)

    statuses = post_all(bodies, while_locked=False)

    assert statuses == [202] * 30
    wait_until(lambda: recorder.count() == 30)


def test_a_refused_row_fails_alone_and_the_rest_of_its_batch_is_stored(sample):
    good = [envelope_validate(body) for body in distinct_events(sample, 3)]
    # longer than the column: the database refuses the row
    bad = dataclasses.replace(envelope_validate(sample(DetailType.TENANT_PROVISIONING)), account="x" * 40)
    outcomes: dict[str, object] = {}

    def store(envelope: Envelope) -> None:
        try:
            outcomes[envelope.event_id] = intake_writer.store(envelope)
        except Exception as error:
            outcomes[envelope.event_id] = error
        finally:
            connections.close_all()

    with table_locked():
        threads = [threading.Thread(target=store, args=(event,)) for event in (good[0], bad, *good[1:])]
        threads[0].start()
        wait_until(lambda: blocked_inserts() == 1)
        for thread in threads[1:]:
            thread.start()
        wait_until(lambda: intake_writer._queue.qsize() == 3)
    for thread in threads:
        thread.join(timeout=30)

    assert isinstance(outcomes[bad.event_id], DataError)
    stored = dict(ReceivedEvent.objects.values_list("event_id", "pk"))
    assert {event.event_id: outcomes[event.event_id] for event in good} == {
        event.event_id: stored[event.event_id] for event in good
    }
    assert bad.event_id not in stored


def test_an_answer_that_takes_too_long_is_a_503_and_the_retry_is_a_duplicate(sample, settings):
    settings.INTAKE_STORE_TIMEOUT_SECONDS = 0.3
    body = sample(DetailType.TENANT_PROVISIONING)

    with table_locked():
        response = post_event(Client(), body)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "store_timeout"

    # The row was committed once the lock went away; EventBridge's retry is then answered as a duplicate.
    wait_until(lambda: ReceivedEvent.objects.filter(event_id=body["id"]).exists())
    assert post_event(Client(), body).status_code == 200


def test_a_connection_lost_between_batches_is_replaced_without_failing_a_request(sample):
    first, second = distinct_events(sample, 2)
    assert post_event(Client(), first).status_code == 202
    with connections["default"].cursor() as cursor:  # as if the server had restarted: the writer's session dies
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
        )

    assert post_event(Client(), second).status_code == 202
    assert ReceivedEvent.objects.filter(event_id=second["id"]).exists()


def test_dispatch_sends_a_few_ids_per_message(settings, monkeypatch):
    from events.tasks import process_events

    settings.EVENT_DISPATCH_BATCH = 3
    sent: list[list[int]] = []
    monkeypatch.setattr(process_events, "apply_async", lambda kwargs: sent.append(kwargs["event_pks"]))

    events_dispatch([1, 2, 3, 4, 5, 6, 7])

    assert sent == [[1, 2, 3], [4, 5, 6], [7]]
