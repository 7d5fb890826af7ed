"""PostgreSQL stops: the intake answers 503 (EventBridge retries 5xx), ``/orchestrator/status`` names the
database, and after it returns nothing accepted is missing.

The drill never touches the machine's shared PostgreSQL: it starts a private cluster (``initdb`` into a
temporary directory, on a free port), points the stack at it and stops that one.
"""

import json
import time
from collections import Counter

import psycopg
import pytest
import requests

from devstack.stack import PrivatePostgres, postgres_bin_dir
from tests.faults.support import API_KEY, DrillSummary, post_event, provisioning_envelope, report, wait_for

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(postgres_bin_dir() is None, reason="PostgreSQL server binaries (initdb, pg_ctl) missing"),
]

PER_PHASE = 10
CREATE_TIER = (
    "from tenants.models import Tier; "
    "Tier.objects.update_or_create(name='BASIC', defaults={'provision_project': 'orchestrator-basic-provision'})"
)


def statuses_in(database_url: str, event_ids: list[str]) -> dict[str, str]:
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1), connect_timeout=5) as connection:
        rows = connection.execute(
            "SELECT event_id, status FROM events_receivedevent WHERE event_id = ANY(%s)", (event_ids,)
        ).fetchall()
    return dict(rows)


def deliver_like_eventbridge(base_url: str, envelope: dict, *, attempts: int = 10) -> tuple[int, list[int]]:
    """POST until a non-5xx answer (EventBridge retries 5xx and timeouts); the final status and all seen."""
    seen = []
    for attempt in range(attempts):
        status = post_event(base_url, envelope)
        seen.append(status)
        if 0 < status < 500:
            return status, seen
        time.sleep(min(0.2 * 2**attempt, 2.0))
    return seen[-1], seen


def test_intake_answers_503_while_postgres_is_down_and_loses_nothing(request, make_stack, basic_tier):
    # Given a stack on a private PostgreSQL cluster, migrated, with the BASIC tier
    with PrivatePostgres(database="orchestrator") as postgres:
        # (beat sweeps every second for events stuck longer than 3 s: a task that lost its connection
        # mid-handler leaves its event "processing" and only the sweeper runs it again)
        stack = make_stack(
            database_url=postgres.url,
            extra_env={"EVENT_SWEEP_AFTER_SECONDS": "3", "EVENT_SWEEP_INTERVAL_SECONDS": "1"},
        )
        stack.manage("migrate", "--no-input", "-v", "0")
        stack.manage("shell", "-c", CREATE_TIER)
        web = stack.start_web(workers=2, threads=4)
        stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
        stack.start_beat()

        before = [provisioning_envelope() for _ in range(PER_PHASE)]
        during = [provisioning_envelope() for _ in range(PER_PHASE)]
        after = [provisioning_envelope() for _ in range(PER_PHASE)]
        ids = [envelope["id"] for envelope in before + during + after]

        # When events arrive before the outage
        assert [post_event(web.url, envelope) for envelope in before] == [202] * PER_PHASE
        wait_for(
            lambda: list(statuses_in(postgres.url, ids[:PER_PHASE]).values()).count("processed") == PER_PHASE,
            timeout=60,
            what="the first events processed",
        )

        # And PostgreSQL goes away
        postgres.stop()
        during_statuses = [post_event(web.url, envelope) for envelope in during]
        status_response = requests.get(f"{web.url}/orchestrator/status", timeout=30)

        # Then the intake answers 503 (never 500, never 202 for something it could not store)
        assert during_statuses == [503] * PER_PHASE, during_statuses
        refused = requests.post(
            f"{web.url}/api/events/",
            data=json.dumps(during[0]),
            headers={"Content-Type": "application/json", "x-api-key": API_KEY},
            timeout=15,
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"], refused.text  # the one error shape, no trace
        # And the status endpoint says which dependency is down
        assert status_response.status_code == 503
        checks = status_response.json()["checks"]
        assert checks["database"]["status"] != "ok", checks
        assert checks["broker"]["status"] == "ok", checks

        # When PostgreSQL returns and EventBridge redelivers what was refused, plus new events
        postgres.start()
        redelivered = [deliver_like_eventbridge(web.url, envelope) for envelope in during + after]

        # Then everything is accepted exactly once and processed; the status endpoint is healthy again
        assert [final for final, _ in redelivered] == [202] * (2 * PER_PHASE), redelivered
        wait_for(
            lambda: list(statuses_in(postgres.url, ids).values()).count("processed") == len(ids),
            timeout=90,
            what=lambda: f"every accepted event processed: {Counter(statuses_in(postgres.url, ids).values())}",
        )
        final = statuses_in(postgres.url, ids)
        # (each web process reuses a round of checks for STATUS_CACHE_SECONDS, so the outage may show a moment longer)
        wait_for(
            lambda: (
                requests.get(f"{web.url}/orchestrator/status", timeout=30).json()["checks"]["database"]["status"]
                == "ok"
            ),
            timeout=30,
            what="the status endpoint reporting the database ok again",
        )

    accepted = PER_PHASE + sum(1 for status, _ in redelivered if status == 202)
    processed = list(final.values()).count("processed")
    summary = DrillSummary("postgres down", sent=len(ids), accepted=accepted, processed=processed)
    summary.lost = accepted - processed
    summary.notes.append(f"{PER_PHASE} answered 503 during the outage, accepted when redelivered")
    report(request, summary)
    assert summary.lost == 0
