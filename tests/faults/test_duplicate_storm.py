"""Duplicate storm: one event id posted 200 times at once to the real server -> one row, one handler run."""

import pytest

from tests.faults.support import DrillSummary, post_concurrently, provisioning_envelope, report, wait_for

pytestmark = pytest.mark.faults

COPIES = 200


def test_one_event_posted_200_times_concurrently_is_stored_once_and_handled_once(request, make_stack, basic_tier):
    from events.models import EventAttempt, EventStatus, ReceivedEvent
    from tenants.models import Build

    # Given the production server (3 processes x 4 threads) and a worker
    stack = make_stack()
    web = stack.start_web(workers=3, threads=4)
    stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
    envelope = provisioning_envelope()
    tenant_id = envelope["detail"]["tenant"]["id"]

    # When the same event arrives 200 times at once
    statuses = post_concurrently(web.url, [envelope] * COPIES, threads=100)

    # Then exactly one request created it and every other one was answered "duplicate"
    assert statuses.count(202) == 1, sorted(set(statuses))
    assert statuses.count(200) == COPIES - 1, sorted(set(statuses))
    assert ReceivedEvent.objects.filter(event_id=envelope["id"]).count() == 1
    event = wait_for(
        lambda: ReceivedEvent.objects.filter(event_id=envelope["id"], status=EventStatus.PROCESSED).first(),
        timeout=60,
        what="the event to be processed",
    )
    # And its handler ran once: one attempt, one build for the tenant
    attempts = EventAttempt.objects.filter(event=event)
    assert attempts.count() == 1
    assert attempts.get().outcome == EventAttempt.Outcome.SUCCEEDED
    assert Build.objects.filter(tenant_id=tenant_id).count() == 1

    summary = DrillSummary("duplicate storm", sent=COPIES, accepted=1, processed=1, lost=0)
    summary.notes.append(f"{statuses.count(200)} answered duplicate")
    report(request, summary)
