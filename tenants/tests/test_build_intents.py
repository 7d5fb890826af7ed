"""A build is recorded (``PENDING_START``) with its attempt and handed to CodeBuild only after that commits;
a start that never happened or never answered is started again by the recovery with the same token.

CodeBuild is moto_server over HTTP; a crash is simulated with botocore's own event hooks on the client
(the request really reaches moto; the worker "dies" before it can use the answer)."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent
from orchestrator.aws import aws_client
from tenants.builders import registry
from tenants.builders.codebuild import CodeBuildBuilder
from tenants.models import Build, BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.recovery import builds_recover
from tenants.tests.conftest import API_KEY, envelope, provisioning_detail

RETRY_AFTER = timedelta(seconds=settings.BUILD_START_RETRY_AFTER_SECONDS + 1)


def _seen_from_another_connection(tenant_id: str) -> list[tuple[str, str]]:
    """The tenant's builds as a second database session sees them (only what is committed)."""

    def read() -> list[tuple[str, str]]:
        try:
            return list(Build.objects.filter(tenant_id=tenant_id).values_list("status", "idempotency_token"))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(read).result(timeout=30)


class WorkerDiesAfterStartBuild:
    """botocore hooks on the CodeBuild client: note what is committed when StartBuild is sent, and raise
    once after moto answered (the build exists on the CodeBuild side, the worker never saves its id)."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.committed_at_send: list[list[tuple[str, str]]] = []
        self.tokens: list[str] = []
        self.crashed = False
        self.client = aws_client("codebuild")

    def before_send(self, request, **kwargs):
        body = json.loads(request.body.decode() if isinstance(request.body, bytes) else request.body)
        self.tokens.append(body["idempotencyToken"])
        self.committed_at_send.append(_seen_from_another_connection(self.tenant_id))

    def after_call(self, **kwargs):
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("worker killed right after StartBuild answered")

    def __enter__(self):
        self.client.meta.events.register("before-send.codebuild.StartBuild", self.before_send)
        self.client.meta.events.register("after-call.codebuild.StartBuild", self.after_call)
        return self

    def __exit__(self, *exc):
        self.client.meta.events.unregister("before-send.codebuild.StartBuild", self.before_send)
        self.client.meta.events.unregister("after-call.codebuild.StartBuild", self.after_call)


def test_a_crash_between_commit_and_codebuild_answer_is_recovered_with_the_same_token(
    transactional_db, codebuild_tier, client
):
    # Given a worker that dies right after CodeBuild took the StartBuild call
    detail = provisioning_detail()
    tenant_id = detail["tenant"]["id"]
    with WorkerDiesAfterStartBuild(tenant_id) as codebuild:
        # When the provisioning event is processed
        body = envelope(DetailType.TENANT_PROVISIONING, detail)
        response = client.post(
            "/api/events/", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=API_KEY
        )
        assert response.status_code == 202

        # Then CodeBuild was called only once the build's row was committed, and the row outlived the crash
        token = f"{tenant_id}:provision:1"
        assert codebuild.committed_at_send == [[(BuildStatus.PENDING_START, token)]]
        assert codebuild.crashed
        build = Build.objects.get(tenant_id=tenant_id)
        assert (build.status, build.build_id) == (BuildStatus.PENDING_START, "")
        tenant = Tenant.objects.get(pk=tenant_id)
        assert tenant.status == TenantStatus.PROVISIONING
        assert ReceivedEvent.objects.get(event_id=body["id"]).status == EventStatus.PROCESSED

        # When the recovery runs (not before BUILD_START_RETRY_AFTER_SECONDS)
        assert builds_recover(now=build.started_at + timedelta(seconds=1))["started"] == 0
        counts = builds_recover(now=build.started_at + RETRY_AFTER)

    # Then the build started with the same token, once more, and nothing is left to recover
    assert counts["started"] == 1
    assert codebuild.tokens == [token, token]
    build.refresh_from_db()
    assert build.status == BuildStatus.IN_PROGRESS
    assert build.build_id.startswith("orchestrator-basic-provision:")
    assert Build.objects.filter(tenant_id=tenant_id).count() == 1
    assert builds_recover(now=timezone.now() + RETRY_AFTER * 2)["started"] == 0
    started = TenantHistory.objects.filter(tenant_id=tenant_id, kind=HistoryKind.BUILD, summary__contains="started")
    assert started.count() == 1


class _UnreachableCodeBuild:
    def start_build(self, **kwargs):
        from botocore.exceptions import EndpointConnectionError

        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


@pytest.mark.django_db
def test_codebuild_down_leaves_the_build_pending_until_the_recovery_starts_it(
    codebuild_tier, send_event, codebuild_calls, run_commit_hooks
):
    # Given CodeBuild unreachable when the provisioning event is processed
    detail = provisioning_detail()
    with registry.override("CODE_BUILD", CodeBuildBuilder(client=_UnreachableCodeBuild())):
        event = send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    # Then the event is done, the tenant provisioning and its build recorded, pending, with the reason
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISIONING
    build = Build.objects.get(tenant=tenant)
    assert build.status == BuildStatus.PENDING_START
    assert build.status_reason.startswith("Not started yet: CodeBuild is unreachable")
    tried_at = build.last_polled_at
    assert tried_at is not None

    # When CodeBuild is back: nothing before the retry interval after the failed try, then one start
    with run_commit_hooks():
        assert builds_recover(now=tried_at + timedelta(seconds=1))["started"] == 0
    with run_commit_hooks():
        assert builds_recover(now=tried_at + RETRY_AFTER)["started"] == 1

    build.refresh_from_db()
    assert build.status == BuildStatus.IN_PROGRESS
    assert build.status_reason == ""
    starts = [body["idempotencyToken"] for operation, body in codebuild_calls if operation == "StartBuild"]
    assert starts == [build.idempotency_token]


@pytest.mark.django_db
def test_a_started_build_is_never_started_again(codebuild_tier, send_event, codebuild_calls, run_commit_hooks):
    send_event(envelope(DetailType.TENANT_PROVISIONING, provisioning_detail()))
    build = Build.objects.get()
    assert build.status == BuildStatus.IN_PROGRESS

    with run_commit_hooks():
        counts = builds_recover(now=timezone.now() + RETRY_AFTER)

    assert counts["started"] == 0
    assert [operation for operation, _ in codebuild_calls].count("StartBuild") == 1
