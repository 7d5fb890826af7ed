"""One tenant operation, one trace: a provisioning run with a real Celery worker (real Redis), CodeBuild and
DynamoDB on moto, and a real receiver, traced by our set-up into the SDK's in-memory exporter. The span tree
crosses the task boundary (request -> publish -> task run -> the event's processing -> AWS calls), and the
callback's traceparent lets the receiver join the deployment's trace."""

import json
import time
import uuid
from contextlib import closing

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections
from django.db.models import F
from django.test import Client
from opentelemetry.trace import SpanKind

from devstack.pytest_plugin import use_broker
from devstack.receivers import Receiver
from events.catalogue import DetailType
from events.intake.group_commit import intake_writer
from events.models import OutboxEvent, OutboxStatus
from orchestrator.celery import app as celery_app
from orchestrator.tests.tracing import recorded_spans, traceparent
from tenants.bootstrap import ensure_codebuild_projects
from tenants.models import Build, Tenant, TenantStatus
from tenants.tests.conftest import API_KEY, envelope, outcome_detail, provisioning_detail
from tenants.tests.factories import TierFactory
from webhooks.services.endpoints import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def basic_tier(transactional_db, aws):
    TierFactory(name="BASIC", provision_project="orchestrator-basic-provision")
    ensure_codebuild_projects()


@pytest.fixture
def traced_worker(live_services):
    """Tracing on, tasks sent through Redis to a real worker (in a thread of this process: same exporter)."""
    with (
        recorded_spans() as exporter,
        use_broker(live_services["redis_url"]),
        start_worker(celery_app, pool="solo", perform_ping_check=False, queues=["default", "builds", "webhooks"]),
    ):
        yield exporter
    if connections["default"].vendor == "postgresql":  # the worker thread's connection must not outlive the test
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what() if callable(what) else what}"
        time.sleep(0.1)
    return value


def post(body):
    response = Client().post(
        "/api/events/", data=json.dumps(body), content_type="application/json", HTTP_X_API_KEY=API_KEY
    )
    assert response.status_code == 202, response.content
    return response


class Tree:
    """The finished spans of one trace, by id, with their parents."""

    def __init__(self, spans, trace_id):
        self.spans = [span for span in spans if span.context.trace_id == trace_id]
        self.by_id = {span.context.span_id: span for span in self.spans}

    def one(self, name=None, **attributes):
        found = [
            span
            for span in self.spans
            if (name is None or span.name == name)
            and all(span.attributes.get(key) == value for key, value in attributes.items())
        ]
        assert len(found) == 1, (name, attributes, [span.name for span in self.spans])
        return found[0]

    def parent(self, span):
        return self.by_id.get(span.parent.span_id) if span.parent else None

    def path(self, span):
        """Names from the root down to ``span``."""
        names = []
        while span is not None:
            names.append(span.name)
            span = self.parent(span)
        return names[::-1]


def server_span(spans, before):
    [server] = [span for span in spans[before:] if span.kind == SpanKind.SERVER]
    return server


def test_a_provisioning_run_is_one_trace_across_the_task_boundary_and_callbacks_carry_it(
    basic_tier, traced_worker, settings
):
    with closing(Receiver()) as receiver:
        settings.WEBHOOK_CHAIN_STEPS = ["subscribers"]
        # the test posts the deployment itself, as the bus would: the emulated relay must not post it too
        settings.EVENT_EMULATOR_RELAY = False
        endpoint_create(url=receiver.url("/deployed"), events=["tenant.deployed"])
        detail = provisioning_detail()
        tenant_id = detail["tenant"]["id"]

        # When the provisioning event arrives and a worker handles it
        post(envelope(DetailType.TENANT_PROVISIONING, detail))
        wait_for(
            lambda: Tenant.objects.filter(
                pk=tenant_id, status=TenantStatus.PROVISIONING, synced_version=F("version")
            ).exists(),
            "the tenant provisioning and mirrored to DynamoDB",
        )
        # (the task's span ends after its after-commit work, StartBuild: wait for both to be finished)
        spans = wait_for(
            lambda: (
                {"run/events.process_events", "CodeBuild.StartBuild"}
                <= {span.name for span in traced_worker.get_finished_spans()}
                and traced_worker.get_finished_spans()
            ),
            "the provisioning task finished",
        )
        request = server_span(spans, 0)
        tree = Tree(spans, request.context.trace_id)

        # Then the request, the publish, the task run, the event's processing and its AWS calls form one tree
        start_build = tree.one(**{"rpc.service": "CodeBuild", "rpc.method": "StartBuild"})
        assert tree.path(start_build) == [
            request.name,
            "apply_async/events.process_events",
            "run/events.process_events",
            "events.process",
            "CodeBuild.StartBuild",
        ]
        assert request.attributes["http.route"] == "api/events/"
        assert (tree.one("apply_async/events.process_events").kind, tree.one("run/events.process_events").kind) == (
            SpanKind.PRODUCER,
            SpanKind.CONSUMER,
        )
        put_items = [span for span in tree.spans if span.attributes.get("rpc.method") == "PutItem"]
        assert put_items, "the DynamoDB mirror's writes are part of the provisioning's trace"
        assert all("run/tenants.sync_tenant" in tree.path(span) for span in put_items)

        # When the build's success arrives: its own operation, whose outbox event reaches EventBridge in its trace
        build = Build.objects.get(tenant_id=tenant_id)
        before = len(traced_worker.get_finished_spans())
        post(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant_id, build.build_id)))
        deployment = wait_for(
            lambda: OutboxEvent.objects.filter(tenant_id=tenant_id, status=OutboxStatus.SENT).first(),
            "TENANT_DEPLOYMENT sent",
        )
        # (the sending task goes on after the row is marked sent: it pushes the emulated bus's relay)
        spans = wait_for(
            lambda: (
                any(span.name == "run/events.publish_outbox" for span in traced_worker.get_finished_spans()[before:])
                and traced_worker.get_finished_spans()
            ),
            "the outbox task finished",
        )
        success = server_span(spans, before)
        assert success.context.trace_id != request.context.trace_id
        put_events = Tree(spans, success.context.trace_id).one(
            **{"rpc.service": "EventBridge", "rpc.method": "PutEvents"}
        )
        assert "run/events.publish_outbox" in Tree(spans, success.context.trace_id).path(put_events)

        # When the deployment runs: the subscriber's callback is a client span of the deployment's trace, and the
        # receiver gets it as traceparent
        before = len(traced_worker.get_finished_spans())
        post({**envelope(DetailType.TENANT_DEPLOYMENT, deployment.detail), "id": str(uuid.uuid4())})
        wait_for(lambda: receiver.requests, "the subscriber called")
        wait_for(lambda: Tenant.objects.filter(pk=tenant_id, status=TenantStatus.ACTIVE).exists(), "the tenant ACTIVE")
        spans = wait_for(
            lambda: (
                [s for s in traced_worker.get_finished_spans() if s.kind == SpanKind.CLIENT and s.name == "POST"]
                and traced_worker.get_finished_spans()
            ),
            "the callback's span",
        )
        deploying = server_span(spans, before)
        tree = Tree(spans, deploying.context.trace_id)
        callback = tree.one("POST")
        assert callback.kind == SpanKind.CLIENT
        assert tree.path(callback)[:4] == [
            deploying.name,
            "apply_async/events.process_events",
            "run/events.process_events",
            "events.process",
        ]
        assert "run/webhooks.deliver_many" in tree.path(callback)
        assert receiver.requests[0].headers["traceparent"] == traceparent(callback)


def test_with_group_commit_each_event_continues_its_own_requests_trace(basic_tier, traced_worker, settings):
    if connections["default"].vendor != "postgresql":
        pytest.skip("group commit is exercised against PostgreSQL")
    settings.INTAKE_GROUP_COMMIT = True
    details = [provisioning_detail(key=f"acme{n}") for n in range(2)]
    try:
        # When two events are stored by the intake's writer thread and dispatched by its dispatcher thread
        for detail in details:
            post(envelope(DetailType.TENANT_PROVISIONING, detail))
        for detail in details:
            wait_for(
                lambda detail=detail: (
                    Build.objects.filter(tenant_id=detail["tenant"]["id"]).exclude(build_id="").exists()
                ),
                "the build started",
            )
    finally:
        intake_writer.close_connections()

    # Then each event's processing (and its StartBuild) is in the trace of the request that accepted it,
    # linked to the task that ran it (once those spans have ended: the build id is stored before they do)
    spans = wait_for(
        lambda: (
            [span.name for span in traced_worker.get_finished_spans()].count("CodeBuild.StartBuild") >= 2
            and [span.name for span in traced_worker.get_finished_spans()].count("events.process") >= 2
            and traced_worker.get_finished_spans()
        ),
        "both events' spans ended",
    )
    requests = [span for span in spans if span.kind == SpanKind.SERVER]
    assert len(requests) == 2
    for request in requests:
        tree = Tree(spans, request.context.trace_id)
        start_build = tree.one(**{"rpc.service": "CodeBuild", "rpc.method": "StartBuild"})
        assert tree.path(start_build) == [request.name, "events.process", "CodeBuild.StartBuild"]
        [link] = tree.one("events.process").links
        run = next(span for span in spans if span.context.span_id == link.context.span_id)
        assert run.name == "run/events.process_events"
