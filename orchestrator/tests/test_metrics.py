"""GET /metrics: bearer-token protected, Prometheus text (or OpenMetrics), every app's metrics; database gauges
cached per METRICS_DATABASE_REFRESH_SECONDS; a worker's own scrape port."""

import urllib.request

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

from devstack.processes import free_port
from orchestrator.metrics import worker_metrics_serve
from orchestrator.tests.scraping import TOKEN, parse, scrape

pytestmark = pytest.mark.django_db

# One family per thing the operators' issue asks for (names without the counters' _total).
EXPECTED_FAMILIES = {
    "orchestrator_intake_requests": "counter",
    "orchestrator_intake_request_duration_seconds": "histogram",
    "orchestrator_event_handler_runs": "counter",
    "orchestrator_event_handler_duration_seconds": "histogram",
    "orchestrator_events": "gauge",
    "orchestrator_events_oldest_unprocessed_age_seconds": "gauge",
    "orchestrator_outbox_unsent": "gauge",
    "orchestrator_outbox_oldest_unsent_age_seconds": "gauge",
    "orchestrator_webhook_delivery_attempts": "counter",
    "orchestrator_webhook_delivery_attempt_duration_seconds": "histogram",
    "orchestrator_webhook_circuits": "gauge",
    "orchestrator_webhook_deliveries": "gauge",
    "orchestrator_tenants": "gauge",
    "orchestrator_builds": "gauge",
    "orchestrator_tenant_provisioning_duration_seconds": "histogram",
}


def test_metrics_are_not_served_while_no_token_is_configured(client, settings):
    settings.METRICS_TOKENS = []

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer ", f"Token {TOKEN}"],
    ids=["none", "wrong", "basic", "empty", "other-scheme"],
)
def test_a_scrape_without_a_configured_bearer_token_is_refused(client, settings, authorization):
    settings.METRICS_TOKENS = [TOKEN]
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}

    response = client.get("/metrics", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="orchestrator-metrics"'
    assert response.json()["error"]["code"] == "not_authenticated"
    assert b"orchestrator_" not in response.content.replace(b"orchestrator-metrics", b"")


def test_every_configured_token_is_accepted_during_a_rotation(client, settings):
    settings.METRICS_TOKENS = ["old-token", "new-token"]

    answers = [client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {t}").status_code for t in ("old-token", "new-token")]

    assert answers == [200, 200]


def test_only_get_is_answered(client, settings):
    settings.METRICS_TOKENS = [TOKEN]

    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_scrape_is_prometheus_text_with_every_apps_metrics(client, settings):
    settings.METRICS_TOKENS = [TOKEN]

    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = parse(response.content.decode()).families
    assert {name: families.get(name) for name in EXPECTED_FAMILIES} == EXPECTED_FAMILIES


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(client, settings):
    settings.METRICS_TOKENS = [TOKEN]

    response = client.get(
        "/metrics",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
        HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    names = {family.name for family in openmetrics_families(response.content.decode())}
    assert set(EXPECTED_FAMILIES) <= names


def test_a_worker_serves_its_processes_metrics_on_its_port_without_the_database_gauges(client, settings):
    # Given a worker's scrape port, and an intake request counted in this process
    settings.METRICS_PORT = free_port()
    settings.METRICS_ADDRESS = "127.0.0.1"
    rejected = {"outcome": "rejected", "reason": "unsupported_media_type"}
    before = scrape(client, settings).value("orchestrator_intake_requests_total", **rejected)
    client.post("/api/events/", data="x", content_type="text/plain", HTTP_X_API_KEY="test-intake-key")
    server = worker_metrics_serve()
    try:
        # When Prometheus scrapes the port
        url = f"http://127.0.0.1:{settings.METRICS_PORT}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            served = parse(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()

    # Then it has the counters, and not the gauges only the web server reads
    assert served.value("orchestrator_intake_requests_total", **rejected) == before + 1
    assert "orchestrator_tenants" not in served.families


def test_no_worker_port_serves_nothing(settings):
    settings.METRICS_PORT = 0

    assert worker_metrics_serve() is None
