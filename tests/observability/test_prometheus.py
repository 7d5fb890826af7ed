"""A real Prometheus scrapes a live stack (gunicorn's /metrics with the bearer token, a prefork worker's
METRICS_PORT) after a real provisioning run, and its query API reports what happened; the alerting rules load
and evaluate against those series without an error."""

import tempfile
import uuid

import pytest

from devstack import envelopes
from devstack.processes import free_port
from events.catalogue import DetailType
from tests.faults.support import Receiver, post_event, provisioning_envelope, wait_for
from tests.observability.prometheus import ALERTS, BINARY, MISSING, PrometheusServer, dashboard_expressions

pytestmark = pytest.mark.skipif(BINARY is None, reason=MISSING)

TOKEN = "scrape-token-for-tests"


def bus_envelope(detail_type: str, detail: dict, *, source: str = "saas.observability") -> dict:
    return envelopes.bus_envelope(detail_type=detail_type, source=source, detail=detail, time="2025-01-15T10:31:00Z")


def provision_to_active(web_url: str, receiver: Receiver) -> str:
    """Provision one tenant through the intake as EventBridge would deliver each step; its id once ACTIVE."""
    from events.models import OutboxEvent
    from tenants.models import Build, Tenant, TenantStatus

    provisioning = provisioning_envelope()
    tenant_id = provisioning["detail"]["tenant"]["id"]
    assert post_event(web_url, provisioning) == 202
    assert post_event(web_url, provisioning) == 200  # EventBridge delivering it twice
    assert post_event(web_url, {**provisioning, "id": str(uuid.uuid4()), "detail": {}}) == 400
    build = wait_for(
        lambda: Build.objects.filter(tenant_id=tenant_id).exclude(build_id="").first(),
        timeout=60,
        what="the build started on CodeBuild",
    )
    # CodeBuild reports the build's end, then its post-build step the success with the build's outputs
    change = {"build-status": "SUCCEEDED", "project-name": build.project, "build-id": build.arn}
    assert (
        post_event(web_url, bus_envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE, change, source="aws.codebuild"))
        == 202
    )
    success = {
        "tenant": provisioning["detail"]["builderConfig"]["config"]["environmentOverride"]["tenant"],
        "secret": "drill-hmac-secret",
        "context": "ctx",
        "CODEBUILD_BUILD_ID": build.build_id,
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_BUILD_POSTBUILD": "1",
    }
    assert post_event(web_url, bus_envelope(DetailType.TENANT_PROVISIONING_SUCCESS, success)) == 202
    deployment = wait_for(
        lambda: OutboxEvent.objects.filter(detail_type=DetailType.TENANT_DEPLOYMENT, tenant_id=tenant_id).first(),
        timeout=60,
        what="TENANT_DEPLOYMENT emitted",
    )
    assert post_event(web_url, bus_envelope(DetailType.TENANT_DEPLOYMENT, deployment.detail)) == 202
    wait_for(
        lambda: Tenant.objects.filter(pk=tenant_id, status=TenantStatus.ACTIVE).exists() and receiver.requests,
        timeout=60,
        what="the tenant ACTIVE and its subscriber called",
    )
    return tenant_id


def test_prometheus_reports_a_real_provisioning_from_the_web_and_the_worker(make_stack, basic_tier, drill_logs):
    from webhooks.services.endpoints import endpoint_create

    # Given a stack whose web serves /metrics to a token and whose prefork worker serves its port
    receiver = Receiver(status=204)
    endpoint_create(url=f"{receiver.url}/deployed", events=["tenant.deployed"])
    stack = make_stack(
        extra_env={
            "METRICS_TOKENS": TOKEN,
            "METRICS_DATABASE_REFRESH_SECONDS": "0",
            "WEBHOOK_CHAIN_STEPS": "subscribers",
        }
    )
    web = stack.start_web(workers=2)
    worker_port = free_port()
    worker_metrics = tempfile.mkdtemp(prefix="worker-metrics-", dir=drill_logs)
    stack.start_worker(
        queues=["default", "builds", "webhooks"],
        concurrency=2,
        extra_env={
            "PROMETHEUS_MULTIPROC_DIR": worker_metrics,
            "METRICS_PORT": str(worker_port),
            "METRICS_ADDRESS": "127.0.0.1",
        },
    )
    scrape_configs = [
        {
            "job_name": "orchestrator-web",
            "authorization": {"type": "Bearer", "credentials": TOKEN},
            "static_configs": [{"targets": [f"127.0.0.1:{web.port}"]}],
        },
        {"job_name": "orchestrator-worker", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]},
    ]
    try:
        with PrometheusServer(scrape_configs=scrape_configs, rule_files=[ALERTS], log_dir=drill_logs) as prometheus:
            # When a tenant is provisioned from its event to ACTIVE
            provision_to_active(web.url, receiver)

            # Then Prometheus's answers add up what the web and the worker processes counted
            expected = {
                'sum(up{job=~"orchestrator-.*"})': 2,
                'sum(orchestrator_intake_requests_total{outcome="accepted"})': 4,
                'sum(orchestrator_intake_requests_total{outcome="duplicate"})': 1,
                'sum(orchestrator_intake_requests_total{outcome="rejected",reason="invalid_event"})': 1,
                "sum(orchestrator_intake_request_duration_seconds_count)": 6,
                'sum(orchestrator_event_handler_runs_total{outcome="succeeded"})': 4,
                'sum(orchestrator_event_handler_runs_total{outcome="succeeded",detail_type="TENANT_PROVISIONING"})': 1,
                'sum(orchestrator_event_handler_duration_seconds_count{detail_type="TENANT_DEPLOYMENT"})': 1,
                'sum(orchestrator_webhook_delivery_attempts_total{step="subscriber",outcome="succeeded"})': 1,
                'sum(orchestrator_tenant_provisioning_duration_seconds_count{tier="BASIC"})': 1,
                'max(orchestrator_tenants{status="ACTIVE",tier="BASIC"})': 1,
                'max(orchestrator_builds{purpose="provision",status="SUCCEEDED"})': 1,
                "max(orchestrator_events_oldest_unprocessed_age_seconds)": 0,
                'max(orchestrator_events{status="failed"})': 0,
                "max(orchestrator_outbox_unsent)": 0,
                "sum(orchestrator_webhook_circuits)": 0,
            }
            seen = prometheus.wait_for(expected, timeout=60)
            assert seen == expected
            # the onboarding took as long as the run, and the worker's histogram sits in its lowest buckets
            took = prometheus.scalar('sum(orchestrator_tenant_provisioning_duration_seconds_sum{tier="BASIC"})')
            assert 0 < took < 120
            # and every alerting rule evaluated against these series without an error, none firing
            rules = [rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]]
            assert len(rules) == 12
            assert [
                (rule["name"], rule["health"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"
            ] == []
            assert prometheus.query('ALERTS{alertstate="firing"}') == {}
            # and every panel of the Grafana dashboard is a query it accepts (an invalid one is refused: 400)
            for expression in dashboard_expressions():
                prometheus.query(expression.replace("$__rate_interval", "1m"))
            # the web target was scraped with the token only (the worker's port needs none)
            targets = prometheus.api("targets")["activeTargets"]
            assert {(t["labels"]["job"], t["health"]) for t in targets} == {
                ("orchestrator-web", "up"),
                ("orchestrator-worker", "up"),
            }
    finally:
        receiver.close()
