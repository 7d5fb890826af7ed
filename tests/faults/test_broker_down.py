"""Redis (the broker) stops while events arrive and while the worker is in the middle of tasks: the intake
keeps answering 202, the worker survives the outage (same process, for both pools the deployment uses), and
once Redis is back the sweeper (Celery beat) gets every stored event processed."""

import time
from urllib.parse import urlsplit

import pytest

from devstack.stack import TcpProxy
from tests.faults.support import DrillSummary, count_statuses, post_event, provisioning_envelope, report, wait_for

pytestmark = pytest.mark.faults

PER_PHASE = 6


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_intake_accepts_while_redis_is_down_and_the_sweeper_processes_everything_after(
    request, make_stack, basic_tier, aws, pool
):
    from events.models import EventStatus, ReceivedEvent

    # Given the server, a worker, and beat running the sweeper every second for events older than 2 s;
    # CodeBuild sits behind a proxy that holds StartBuild answers, so tasks are in flight when Redis stops
    moto = urlsplit(aws["moto_url"])
    with TcpProxy(moto.hostname, moto.port) as codebuild:
        stack = make_stack(
            extra_env={
                "AWS_ENDPOINT_URL_CODEBUILD": codebuild.url,
                "EVENT_SWEEP_AFTER_SECONDS": "2",
                "EVENT_SWEEP_INTERVAL_SECONDS": "1",
            }
        )
        web = stack.start_web(workers=2, threads=4)
        worker = stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2, pool=pool)
        worker_pid = worker.pid
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

        # When events arrive before, during and after a Redis outage that starts while one handler is running
        # and the worker waits for more (the state Celery 5.7.0 died in)
        send("before")
        wait_for(
            lambda: count_statuses(sent).get(EventStatus.PROCESSED, 0) == len(sent),
            timeout=60,
            what=lambda: f"the first events processed (now {dict(count_statuses(sent))})",
        )
        codebuild.hold_responses()
        in_flight = provisioning_envelope()
        sent.append(in_flight["id"])
        assert post_event(web.url, in_flight) == 202
        wait_for(lambda: codebuild.held_connections >= 1, timeout=60, what="a StartBuild call in flight")
        stack.stop_redis()
        codebuild.release()
        send("down")
        stored_while_down = ReceivedEvent.objects.filter(event_id__in=sent[PER_PHASE + 1 :]).count()
        stack.start_redis()
        restarted = time.monotonic()
        send("after")

        # Then every one was accepted, also while the broker was gone (and stored before the answer)
        assert statuses == {phase: [202] * PER_PHASE for phase in statuses}, statuses
        assert stored_while_down == PER_PHASE

        # And after Redis returned, every stored event was processed (the sweeper re-enqueued the stranded
        # ones) by the same worker process, which reconnected instead of dying with its tasks
        def all_processed() -> bool:
            assert worker.running, f"the worker died:\n{worker.log_tail()}"
            assert worker.pid == worker_pid
            return count_statuses(sent).get(EventStatus.PROCESSED, 0) == len(sent)

        wait_for(
            all_processed,
            timeout=120,
            what=lambda: f"all {len(sent)} events processed (now {dict(count_statuses(sent))})",
        )
    recovery = time.monotonic() - restarted
    outcomes = count_statuses(sent)
    processed = outcomes.get(EventStatus.PROCESSED, 0)
    accepted = sum(phase.count(202) for phase in statuses.values()) + 1  # and the one in flight
    summary = DrillSummary(
        f"redis down ({pool} worker)", sent=len(sent), accepted=accepted, processed=processed, lost=accepted - processed
    )
    down_latencies.sort()
    summary.notes.append(
        "a handler in flight when Redis stopped; the worker survived (same pid); "
        f"202 while Redis was down: median {down_latencies[len(down_latencies) // 2] * 1000:.0f} ms, "
        f"max {down_latencies[-1] * 1000:.0f} ms; all processed {recovery:.0f} s after Redis returned"
    )
    report(request, summary)
    assert summary.lost == 0
