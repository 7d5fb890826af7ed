"""A Celery worker is killed with SIGKILL (its whole process group: a lost machine) in the middle of
provisioning and in the middle of a webhook delivery. After a restart every event is processed once,
every build is started under one idempotency token, and every delivery completes with one webhook-id.
"""

import json
import re
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from standardwebhooks import Webhook

from devstack.stack import TcpProxy
from tests.faults.support import (
    DrillSummary,
    Receiver,
    count_statuses,
    post_event,
    provisioning_envelope,
    report,
    wait_for,
)

pytestmark = pytest.mark.faults

TOKEN = re.compile(r'"idempotencyToken"\s*:\s*"([^"]+)"')


def test_worker_killed_mid_provisioning_builds_once_per_token_and_processes_every_event_once(
    request, make_stack, basic_tier, aws
):
    from events.models import EventAttempt, EventStatus, ReceivedEvent
    from tenants.models import Build

    # Given CodeBuild behind a proxy that lets StartBuild reach moto but holds its answer back
    moto = urlsplit(aws["moto_url"])
    with TcpProxy(moto.hostname, moto.port, record=True) as codebuild:
        stack = make_stack(
            extra_env={
                "AWS_ENDPOINT_URL_CODEBUILD": codebuild.url,
                "EVENT_SWEEP_AFTER_SECONDS": "3",
                "EVENT_SWEEP_INTERVAL_SECONDS": "1",
            }
        )
        web = stack.start_web(workers=2, threads=4)
        stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
        stack.start_beat()
        codebuild.hold_responses()
        envelopes = [provisioning_envelope() for _ in range(4)]
        ids = [envelope["id"] for envelope in envelopes]

        # When provisioning events arrive and the worker dies while StartBuild calls are in flight
        assert [post_event(web.url, envelope) for envelope in envelopes] == [202] * len(envelopes)
        wait_for(lambda: codebuild.held_connections >= 2, timeout=60, what="two StartBuild calls in flight")
        killed = stack.kill_worker()
        codebuild.release()
        stack.restart_worker()

        # Then every event is processed (the sweeper re-runs the abandoned ones)
        wait_for(
            lambda: count_statuses(ids).get(EventStatus.PROCESSED, 0) == len(ids),
            timeout=90,
            what=f"every event processed (now {dict(count_statuses(ids))})",
        )
        sent = codebuild.sent_text()

    # Once: each event has exactly one successful attempt; the killed attempts were closed as abandoned
    interrupted = 0
    for event in ReceivedEvent.objects.filter(event_id__in=ids):
        outcomes = list(EventAttempt.objects.filter(event=event).values_list("outcome", flat=True))
        assert outcomes.count(EventAttempt.Outcome.SUCCEEDED) == 1, outcomes
        interrupted += len(outcomes) - 1
    assert interrupted >= 2, "the drill did not interrupt any handler"
    # One build per tenant; every StartBuild for a tenant carried that build's idempotency token
    tokens_sent = TOKEN.findall(sent)
    calls_per_token = defaultdict(int)
    for token in tokens_sent:
        calls_per_token[token] += 1
    for envelope in envelopes:
        tenant_id = envelope["detail"]["tenant"]["id"]
        builds = list(Build.objects.filter(tenant_id=tenant_id))
        assert len(builds) == 1, builds
        assert builds[0].build_id
        tenant_tokens = {token for token in tokens_sent if token.startswith(f"{tenant_id}:")}
        assert tenant_tokens == {builds[0].idempotency_token}, tenant_tokens
    repeated = sum(1 for count in calls_per_token.values() if count > 1)
    assert repeated >= 2, calls_per_token  # the interrupted StartBuild calls were repeated with the same token

    summary = DrillSummary("worker killed mid-provisioning", sent=len(ids), accepted=len(ids), processed=len(ids))
    summary.notes.append(
        f"killed pids {killed}; {interrupted} attempts abandoned and re-run; {repeated} StartBuild calls "
        "repeated with the same idempotency token, 1 build row per tenant"
    )
    report(request, summary)
    assert summary.lost == 0


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_worker_killed_mid_delivery_resends_with_the_same_webhook_id(request, make_stack, basic_tier):
    from celery import current_app

    from events.models import EventStatus, ReceivedEvent
    from tenants.models import Tenant, TenantStatus
    from webhooks.models import AttemptOutcome, DeliveryAttempt, DeliveryStatus, WebhookDelivery
    from webhooks.services.endpoints import endpoint_create

    receiver = Receiver()
    try:
        # Given three subscribers of tenant.deployed on a receiver that holds its answers back
        secrets = {}
        for name in ("s1", "s2", "s3"):
            _endpoint, secret = endpoint_create(url=f"{receiver.url}/{name}", events=["tenant.deployed"])
            secrets[f"/{name}"] = secret
        stack = make_stack(
            extra_env={
                "WEBHOOK_CHAIN_STEPS": "subscribers",
                "WEBHOOK_CONNECT_TIMEOUT": "1",
                "WEBHOOK_READ_TIMEOUT": "2",
                "WEBHOOK_SWEEP_AFTER_SECONDS": "1",
                "CELERY_VISIBILITY_TIMEOUT": "5",
            }
        )
        web = stack.start_web(workers=2, threads=4)
        stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
        provisioning = provisioning_envelope()
        tenant_id = provisioning["detail"]["tenant"]["id"]
        assert post_event(web.url, provisioning) == 202
        wait_for(
            lambda: Tenant.objects.filter(pk=tenant_id, status=TenantStatus.PROVISIONING).exists(),
            timeout=60,
            what="the tenant provisioning",
        )

        # When the deployment starts and the worker is killed while deliveries are in flight
        receiver.hold()
        deployment = deployment_envelope(tenant_id=tenant_id, tenant=provisioning["detail"]["tenant"])
        assert post_event(web.url, deployment) == 202
        wait_for(lambda: receiver.waiting >= 2, timeout=60, what="two deliveries in flight")
        killed = stack.kill_worker()
        receiver.release()
        stack.restart_worker()

        # Then, once the killed attempts' lease has run out, the sweeper sends them again
        lease = timedelta(seconds=1 + 2 + 30)
        deliveries = WebhookDelivery.objects.filter(tenant_id=tenant_id)

        def all_succeeded() -> bool:
            statuses = list(deliveries.values_list("status", flat=True))
            if len(statuses) == 3 and set(statuses) == {DeliveryStatus.SUCCEEDED}:
                return True
            # Beat sweeps every minute; the drill runs the same sweep task itself, through the broker.
            with current_app.connection_for_write(stack.redis_url) as connection:
                current_app.send_task("webhooks.sweep", queue="webhooks", connection=connection)
            return False

        started = time.monotonic()
        wait_for(all_succeeded, timeout=lease.total_seconds() + 60, interval=2, what="every delivery succeeded")
        recovery = time.monotonic() - started
    finally:
        receiver.close()

    # Every delivery completed, each with one webhook-id on every request, every signature valid
    by_path = defaultdict(list)
    for received in receiver.requests:
        by_path[received.path].append(received)
    repeated = 0
    for delivery in deliveries:
        path = urlsplit(delivery.url).path
        requests_seen = by_path[path]
        assert requests_seen, path
        assert {received.headers["webhook-id"] for received in requests_seen} == {delivery.message_id}
        for received in requests_seen:
            Webhook(secrets[path]).verify(received.body, received.headers)
        repeated += len(requests_seen) > 1
        outcomes = list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("outcome", flat=True))
        assert outcomes.count(AttemptOutcome.SUCCEEDED) == 1, outcomes
    assert repeated >= 2, {path: len(seen) for path, seen in by_path.items()}
    assert DeliveryAttempt.objects.filter(delivery__in=deliveries, outcome=AttemptOutcome.INTERRUPTED).count() >= 2
    assert Tenant.objects.get(pk=tenant_id).status == TenantStatus.ACTIVE
    events = ReceivedEvent.objects.filter(event_id__in=[provisioning["id"], deployment["id"]])
    processed = events.filter(status=EventStatus.PROCESSED).count()

    summary = DrillSummary("worker killed mid-delivery", sent=2, accepted=2, processed=processed, lost=2 - processed)
    summary.notes.append(
        f"killed pids {killed}; 3 deliveries, {repeated} re-sent with the same webhook-id "
        f"{recovery:.0f} s after the restart (lease); tenant ACTIVE"
    )
    report(request, summary)
    assert summary.lost == 0


def deployment_envelope(*, tenant_id: str, tenant: dict) -> dict:
    """TENANT_DEPLOYMENT as the orchestrator publishes it after a successful provisioning build."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "TENANT_DEPLOYMENT",
        "source": "saas.fault-drills",
        "account": "123456789012",
        "time": "2025-01-15T10:31:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "tenant": json.dumps(tenant, separators=(",", ":")),
            "secret": "drill-hmac-secret",
            "context": str(uuid.uuid4()),
            "CODEBUILD_BUILD_SUCCEEDING": "1",
            "CODEBUILD_BUILD_POSTBUILD": "1",
            "tier": "BASIC",
        },
    }
