"""1,000 tenants provisioned in one run, each event through the events app's processing service, the
real handler, CodeBuild's StartBuild (moto) and the DynamoDB write, with a constant number of queries
per event. The events are stored in bulk first (the intake's HTTP path is covered by the other tests).

On PostgreSQL the events are received by four threads at once (four workers, each with its own
connection, as in production); SQLite takes them one at a time (it has a single writer)."""

import functools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from events.catalogue import DetailType
from events.intake.envelope import envelope_validate
from events.models import EventStatus, ReceivedEvent
from events.services import event_process
from tenants.models import Build, Tenant, TenantStatus
from tenants.tests.conftest import envelope, provisioning_detail, tenant_item_of

TENANTS = int(os.environ.get("SCALE_TENANTS", "1000"))
# Claim (1 transaction) + handler (1) + the recorded build started after commit + DynamoDB write (2 queries).
# Reading the tier's allowed builders (security finding H1) and recording the build before StartBuild (L6)
# each added one query per event to the budget of 35 before them; it stays constant in the number of tenants.
QUERY_BUDGET = 37


def stored_events(count: int) -> list[int]:
    events = []
    for number in range(count):
        body = envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(key=f"tenant-{number}"))
        parsed = envelope_validate(body)
        events.append(
            ReceivedEvent(
                event_id=parsed.event_id,
                detail_type=parsed.detail_type,
                source=parsed.source,
                account=parsed.account,
                region=parsed.region,
                time=parsed.time,
                resources=parsed.resources,
                detail=parsed.detail,
                envelope=parsed.raw,
                body_sha256=parsed.body_sha256,
                tenant_id=parsed.tenant_id,
            )
        )
    return [event.pk for event in ReceivedEvent.objects.bulk_create(events, batch_size=500)] or list(
        ReceivedEvent.objects.order_by("pk").values_list("pk", flat=True)
    )


def provision(event_pk: int, *, max_queries: Callable) -> int:
    """One tenant's event through the real services, within the query budget; returns its queries."""
    try:
        connection.queries_log.clear()  # a bounded deque: a full one would count nothing
        with max_queries(QUERY_BUDGET) as queries:  # this thread's connection (a per-thread proxy)
            outcome = event_process(event_pk=event_pk)  # commits; the DynamoDB write runs after (eager)
        assert outcome.outcome == "succeeded", outcome
        return len(queries)
    finally:
        if connection.vendor != "sqlite":
            connection.close()  # each worker thread's own connection


@pytest.mark.django_db(transaction=True)
def test_thousand_tenants_without_per_event_query_growth(codebuild_tier, caplog, django_assert_max_num_queries):
    caplog.set_level(logging.WARNING)  # thousands of INFO lines would only cost time
    event_pks = stored_events(TENANTS)
    run = functools.partial(provision, max_queries=django_assert_max_num_queries)
    started = time.monotonic()
    if connection.vendor == "sqlite":
        counts = [run(pk) for pk in event_pks]
    else:
        with ThreadPoolExecutor(max_workers=4) as pool:
            counts = list(pool.map(run, event_pks))
    elapsed = time.monotonic() - started

    assert Tenant.objects.filter(status=TenantStatus.PROVISIONING).count() == TENANTS
    assert Build.objects.exclude(build_id="").count() == TENANTS
    assert ReceivedEvent.objects.filter(status=EventStatus.PROCESSED).count() == TENANTS
    assert Tenant.objects.filter(synced_version=2, version=2).count() == TENANTS
    last = Tenant.objects.get(key=f"tenant-{TENANTS - 1}")
    assert tenant_item_of(last.pk)["status"] == "PROVISIONING"
    # no growth: the last hundred events cost what the first hundred did
    assert max(counts[-100:]) <= max(counts[:100]), (counts[:5], counts[-5:])
    print(f"\n{TENANTS} tenants in {elapsed:.1f}s; queries per event: {min(counts)}..{max(counts)}")
