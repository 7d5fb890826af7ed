"""OpenTelemetry set-up: off unless the standard variables ask for it; our outbound callbacks as client spans
whose traceparent reaches the receiver (a real one on 127.0.0.1)."""

import pytest
from django.conf import settings as django_settings
from opentelemetry.trace import SpanKind, StatusCode

from devstack.receivers import Receiver, Reply
from orchestrator.http import OutboundRefused, http_post
from orchestrator.telemetry import telemetry_setup, tracing_requested
from orchestrator.tests.tracing import recorded_spans, traceparent


@pytest.mark.parametrize(
    ("environ", "requested"),
    [
        ({}, False),
        ({"OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_SDK_DISABLED": "FALSE "}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_SERVICE_NAME": "orchestrator"}, False),
    ],
)
def test_tracing_is_off_unless_the_standard_variables_ask_for_it(environ, requested):
    assert tracing_requested(environ) is requested


def test_without_the_variables_nothing_is_set_up(monkeypatch):
    for name in ("OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)

    assert telemetry_setup(service="web") is False
    assert not any("opentelemetry" in middleware for middleware in django_settings.MIDDLEWARE)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def test_a_callback_is_a_client_span_whose_traceparent_reaches_the_receiver(receiver):
    receiver.script("/hook", Reply(503))  # "/hook?token=abc" gets the default 204
    with recorded_spans() as exporter:
        ok = http_post(receiver.url("/hook?token=abc"), body=b"{}", headers={"content-type": "application/json"})
        failing = http_post(receiver.url("/hook"), body=b"{}", headers={})
        spans = exporter.get_finished_spans()

    assert (ok.status, failing.status) == (204, 503)
    assert [(span.name, span.kind) for span in spans] == [("POST", SpanKind.CLIENT)] * 2
    assert [request.headers["traceparent"] for request in receiver.requests] == [traceparent(span) for span in spans]
    assert spans[0].attributes["url.full"] == receiver.url("/hook")  # the query (a token, maybe) is left out
    assert spans[0].attributes["http.response.status_code"] == 204
    assert spans[0].status.status_code == StatusCode.UNSET
    assert spans[1].status.status_code == StatusCode.ERROR


def test_a_refused_callback_is_a_failed_span_and_sends_nothing(receiver):
    with recorded_spans() as exporter, pytest.raises(OutboundRefused):
        http_post("ftp://127.0.0.1/hook", body=b"{}", headers={})

    [span] = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
    assert receiver.requests == []


def test_untraced_callbacks_carry_no_traceparent(receiver):
    http_post(receiver.url("/hook"), body=b"{}", headers={})

    assert "traceparent" not in receiver.requests[0].headers


def test_scrapes_and_health_checks_are_not_traced_but_the_api_is(client, settings):
    settings.METRICS_TOKENS = ["t"]
    with recorded_spans() as exporter:
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer t")
        client.get("/orchestrator/status")
        client.get("/api/tenants/metrics-co/")
        spans = exporter.get_finished_spans()

    assert [(span.name, span.kind) for span in spans if span.kind == SpanKind.SERVER] == [
        ("GET api/tenants/<str:pk>/", SpanKind.SERVER)
    ]
