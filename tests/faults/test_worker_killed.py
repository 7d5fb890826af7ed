"""A Celery worker is killed with SIGKILL (its whole process group: a lost machine) in the middle of
provisioning, of a LOCAL build and of a webhook delivery, and the web goes down while a LOCAL build ends.
After a restart every event is processed once, every build is recorded before it starts and started under
one idempotency token, a LOCAL build runs again (once) and reports one outcome, and every delivery
completes with one webhook-id; no staff action is needed for the tenant to reach ACTIVE.
"""

import contextlib
import json
import re
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from standardwebhooks import Webhook

from devstack.envelopes import bus_envelope
from devstack.processes import free_port
from devstack.stack import LiveStack, TcpProxy
from tests.faults.support import (
    TIER,
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
    from tenants.models import Build, BuildStatus

    # Given CodeBuild behind a proxy that lets StartBuild reach moto but holds its answer back
    moto = urlsplit(aws["moto_url"])
    with TcpProxy(moto.hostname, moto.port, record=True) as codebuild:
        stack = make_stack(
            extra_env={
                "AWS_ENDPOINT_URL_CODEBUILD": codebuild.url,
                "EVENT_SWEEP_AFTER_SECONDS": "3",
                "EVENT_SWEEP_INTERVAL_SECONDS": "1",
                "BUILD_START_RETRY_AFTER_SECONDS": "3",
                "BUILD_RECOVERY_INTERVAL_SECONDS": "1",
            }
        )
        web = stack.start_web(workers=2, threads=4)
        stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
        stack.start_beat()
        codebuild.hold_responses()
        envelopes = [provisioning_envelope() for _ in range(4)]
        ids = [envelope["id"] for envelope in envelopes]
        tenant_ids = [envelope["detail"]["tenant"]["id"] for envelope in envelopes]
        builds = Build.objects.filter(tenant_id__in=tenant_ids)

        # When provisioning events arrive and the worker dies while StartBuild calls are in flight
        assert [post_event(web.url, envelope) for envelope in envelopes] == [202] * len(envelopes)
        wait_for(lambda: codebuild.held_connections >= 2, timeout=60, what="two StartBuild calls in flight")
        killed = stack.kill_worker()
        # (the builds whose StartBuild was in flight were committed before CodeBuild was called)
        pending_at_kill = builds.filter(status=BuildStatus.PENDING_START).count()
        codebuild.release()
        stack.restart_worker()

        # Then every event is processed (the sweeper re-runs the abandoned ones) and every build started
        # (the recovery starts the recorded ones again)
        wait_for(
            lambda: (
                count_statuses(ids).get(EventStatus.PROCESSED, 0) == len(ids)
                and builds.filter(status=BuildStatus.IN_PROGRESS).exclude(build_id="").count() == len(ids)
            ),
            timeout=90,
            what=lambda: (
                f"every event processed and build started (now {dict(count_statuses(ids))}, "
                f"builds {list(builds.values_list('status', flat=True))})"
            ),
        )
        sent = codebuild.sent_text()

    # Once: each event has exactly one successful attempt; the killed attempts were closed as abandoned
    interrupted = 0
    for event in ReceivedEvent.objects.filter(event_id__in=ids):
        outcomes = list(EventAttempt.objects.filter(event=event).values_list("outcome", flat=True))
        assert outcomes.count(EventAttempt.Outcome.SUCCEEDED) == 1, outcomes
        interrupted += len(outcomes) - 1
    assert pending_at_kill >= 2, "the interrupted starts left no recorded build"
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
        f"killed pids {killed}; {pending_at_kill} builds recorded but not started at the kill, {interrupted} "
        f"event attempts abandoned and re-run; {repeated} StartBuild calls repeated with the same idempotency "
        "token, 1 build row per tenant"
    )
    report(request, summary)
    assert summary.lost == 0


LOCAL_STACK_ENV = {
    "LOCAL_BUILDER_ENABLED": "true",
    "LOCAL_BUILDER_ALLOW_IN_PRODUCTION": "true",  # the drills' stacks run the production settings
    "LOCAL_BUILD_COMMANDS": "demo/build.sh provision",
    "LOCAL_BUILD_LEASE_SECONDS": "3",
    "BUILD_RECOVERY_INTERVAL_SECONDS": "1",
}


def local_tier(*, receiver_url: str, build_seconds: int) -> None:
    """Tier BASIC on the LOCAL builder: ``demo/build.sh``, working ``build_seconds``, outputs pointing at
    ``receiver_url`` (the deployment chain's app plane, feature service and control plane)."""
    from tenants.models import Tier

    tier, _ = Tier.objects.update_or_create(
        name=TIER,
        defaults={
            "provision_project": "demo/build.sh provision",
            "deprovision_project": "",
            "allowed_builders": ["LOCAL"],
        },
    )
    tier.variables.create(name="BUILD_SECONDS", value=str(build_seconds))
    tier.variables.create(name="DEMO_RECEIVER_URL", value=receiver_url)


def start_local_provisioning(make_stack, *, receiver: Receiver, build_seconds: int) -> tuple[LiveStack, str, str]:
    """A stack (web, worker, beat) with LOCAL builds under a 3-second lease, and a tenant's provisioning
    event accepted by it; returns the stack, its URL and the tenant id."""
    local_tier(receiver_url=receiver.url, build_seconds=build_seconds)
    web_port = free_port()
    stack = make_stack(extra_env={**LOCAL_STACK_ENV, "ORCHESTRATOR_BASE_URL": f"http://127.0.0.1:{web_port}"})
    web = stack.start_web(port=web_port)
    stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
    stack.start_beat()
    provisioning = provisioning_envelope(builder="LOCAL")
    assert post_event(web.url, provisioning) == 202
    return stack, web.url, provisioning["detail"]["tenant"]["id"]


def deployed_once_provisioned(web_url: str, tenant_id: str, *, timeout: float) -> float:
    """Wait until the build's outcome took the tenant to DEPLOYING (returns when, monotonic), deliver the
    TENANT_DEPLOYMENT the orchestrator published (its outbox row) back to the intake as the bus rule and
    API destination would, and wait until the deployment chain made the tenant ACTIVE."""
    from events.models import OutboxEvent
    from tenants.models import Tenant, TenantStatus

    tenant = Tenant.objects.filter(pk=tenant_id)
    wait_for(
        lambda: tenant.filter(status=TenantStatus.DEPLOYING).exists(),
        timeout=timeout,
        what=lambda: f"the tenant deploying (now {list(tenant.values_list('status', 'status_reason'))})",
    )
    deploying_at = time.monotonic()
    published = OutboxEvent.objects.get(tenant_id=tenant_id, detail_type="TENANT_DEPLOYMENT")
    envelope = bus_envelope(
        detail_type=published.detail_type,
        source=published.source,
        detail=published.detail,
        time="2025-01-15T10:31:00Z",
        event_id=published.eventbridge_id,
    )
    assert post_event(web_url, envelope) == 202
    wait_for(lambda: tenant.filter(status=TenantStatus.ACTIVE).exists(), timeout=60, what="the tenant active")
    return deploying_at


def provisioning_outcomes(tenant_id: str) -> list[str]:
    """The build outcome events the intake received for the tenant."""
    from events.models import ReceivedEvent

    outcomes = ReceivedEvent.objects.filter(tenant_id=tenant_id, detail_type__startswith="TENANT_PROVISIONING_")
    return list(outcomes.values_list("detail_type", flat=True))


def build_commands(stack) -> list[int]:
    """Pids of ``demo/build.sh`` processes started by the stack's worker."""
    import psutil

    pids = []
    for pid in stack.processes["worker"].children():
        with contextlib.suppress(psutil.NoSuchProcess):
            if any("demo/build.sh" in part for part in psutil.Process(pid).cmdline()):
                pids.append(pid)
    return pids


def gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_worker_killed_mid_local_build_runs_it_again_and_the_tenant_reaches_active(request, make_stack, aws):
    from events.models import ReceivedEvent
    from tenants.models import Build, BuildStatus, TenantHistory

    receiver = Receiver()
    try:
        # Given a LOCAL build that works for a few seconds, under a 3-second runner lease
        stack, web_url, tenant_id = start_local_provisioning(make_stack, receiver=receiver, build_seconds=6)

        # When the worker is killed while the build command runs
        [command] = wait_for(lambda: build_commands(stack), timeout=60, what="the build command running")
        killed = stack.kill_worker()
        killed_at = time.monotonic()
        wait_for(lambda: gone(command), timeout=10, what="the build command killed with its runner")
        stack.restart_worker()

        # Then the build runs again once its lease ran out, and the tenant moves on without staff
        recovery = deployed_once_provisioned(web_url, tenant_id, timeout=90) - killed_at
    finally:
        receiver.close()

    # Exactly one build, run twice under the same identity, and one successful outcome
    [build] = Build.objects.filter(tenant_id=tenant_id)
    assert (build.status, build.runs) == (BuildStatus.SUCCEEDED, 2)
    assert provisioning_outcomes(tenant_id) == ["TENANT_PROVISIONING_SUCCESS"]
    assert ReceivedEvent.objects.get(event_id=build.outcome["id"]).envelope == build.outcome
    history = TenantHistory.objects.filter(tenant_id=tenant_id)
    assert history.filter(summary__startswith="Local runner", summary__contains="lost").count() == 1
    assert "/webhook" in {received.path for received in receiver.requests}  # the control plane heard of it

    summary = DrillSummary("worker killed mid-LOCAL build", sent=2, accepted=2, processed=2)
    summary.notes.append(
        f"killed pids {killed} and build command {command}; the build ran again under its id "
        f"{build.build_id} and the tenant was deploying {recovery:.0f} s after the kill (lease 3 s); "
        "1 success outcome; tenant ACTIVE"
    )
    report(request, summary)


def test_web_down_when_a_local_build_ends_its_outcome_is_posted_when_web_is_back(request, make_stack, aws):
    from events.models import ReceivedEvent
    from tenants.models import Build, BuildStatus, Tenant, TenantHistory, TenantStatus

    receiver = Receiver()
    try:
        # Given a LOCAL build running
        stack, web_url, tenant_id = start_local_provisioning(make_stack, receiver=receiver, build_seconds=3)
        wait_for(lambda: build_commands(stack), timeout=60, what="the build command running")

        # When the web goes down before it ends, and stays down through the runner's own posts
        stack.stop_web()
        down_at = time.monotonic()
        history = TenantHistory.objects.filter(tenant_id=tenant_id)
        tenant = Tenant.objects.filter(pk=tenant_id)
        wait_for(
            lambda: (
                history.filter(summary__contains="not delivered to the intake yet").exists()
                or tenant.filter(status=TenantStatus.PROVISION_FAILED).exists()
            ),
            timeout=60,
            what="the runner giving up posting",
        )
        stack.start_web(port=stack.web.port)
        outage = time.monotonic() - down_at

        # Then the stored outcome is posted again, accepted, and the tenant moves on
        deployed_once_provisioned(web_url, tenant_id, timeout=60)
    finally:
        receiver.close()

    [build] = Build.objects.filter(tenant_id=tenant_id)
    assert (build.status, build.runs) == (BuildStatus.SUCCEEDED, 1)
    assert build.outcome_posted_at is not None
    assert build.outcome_post_attempts >= 2
    assert provisioning_outcomes(tenant_id) == ["TENANT_PROVISIONING_SUCCESS"]
    assert ReceivedEvent.objects.get(event_id=build.outcome["id"]).envelope == build.outcome

    summary = DrillSummary("web down while a LOCAL build ends", sent=2, accepted=2, processed=2)
    summary.notes.append(
        f"web down {outage:.0f} s; the stored outcome was accepted at post round {build.outcome_post_attempts}; "
        "1 success outcome; tenant ACTIVE"
    )
    report(request, summary)


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
    detail = {
        "tenant": json.dumps(tenant, separators=(",", ":")),
        "secret": "drill-hmac-secret",
        "context": str(uuid.uuid4()),
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_BUILD_POSTBUILD": "1",
        "tier": "BASIC",
    }
    return bus_envelope(
        detail_type="TENANT_DEPLOYMENT", source="saas.fault-drills", detail=detail, time="2025-01-15T10:31:00Z"
    )
