"""Redis (the broker) stops while events arrive: the intake keeps answering 202, and once Redis is back
the sweeper (Celery beat) gets every stored event processed."""

import time

import pytest

from tests.faults.support import DrillSummary, count_statuses, post_event, provisioning_envelope, report, wait_for

pytestmark = pytest.mark.faults

PER_PHASE = 6


def test_intake_accepts_while_redis_is_down_and_the_sweeper_processes_everything_after(request, make_stack, basic_tier):
    from events.models import EventStatus, ReceivedEvent

    # Given the server, a worker and beat running the sweeper every second for events older than 2 s
    stack = make_stack(extra_env={"EVENT_SWEEP_AFTER_SECONDS": "2", "EVENT_SWEEP_INTERVAL_SECONDS": "1"})
    web = stack.start_web(workers=2, threads=4)
    stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
    stack.start_beat()
    sent: list[str] = []
    statuses: dict[str, list[int]] = {"before": [], "down": [], "after": []}
    down_latencies: list[float] = []

    def send(phase: str) -> None:
        for _ in range(PER_PHASE):
            envelope = provisioning_envelope()
            sent.append(envelope["id"])
            started = time.monotonic()
            statuses[phase].append(post_event(web.url, envelope))
            if phase == "down":
                down_latencies.append(time.monotonic() - started)

    # When events arrive before, during and after a Redis outage
    send("before")
    stack.stop_redis()
    send("down")
    stored_while_down = ReceivedEvent.objects.filter(event_id__in=sent[PER_PHASE:]).count()
    stack.start_redis()
    restarted = time.monotonic()
    send("after")

    # Then every one was accepted, also while the broker was gone (and stored before the answer)
    assert statuses == {phase: [202] * PER_PHASE for phase in statuses}, statuses
    assert stored_while_down == PER_PHASE
    # And after Redis returned, every stored event was processed (the sweeper re-enqueued the stranded ones)
    wait_for(
        lambda: count_statuses(sent).get(EventStatus.PROCESSED, 0) == len(sent),
        timeout=120,
        what=f"all {len(sent)} events processed (now {dict(count_statuses(sent))})",
    )
    recovery = time.monotonic() - restarted
    outcomes = count_statuses(sent)
    processed = outcomes.get(EventStatus.PROCESSED, 0)
    accepted = sum(phase.count(202) for phase in statuses.values())
    summary = DrillSummary(
        "redis down", sent=len(sent), accepted=accepted, processed=processed, lost=accepted - processed
    )
    down_latencies.sort()
    summary.notes.append(
        f"202 while Redis was down: median {down_latencies[len(down_latencies) // 2] * 1000:.0f} ms, "
        f"max {down_latencies[-1] * 1000:.0f} ms; all processed {recovery:.0f} s after Redis returned"
    )
    report(request, summary)
    assert summary.lost == 0
