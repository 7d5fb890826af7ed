"""Tracing as deployed: a live stack (gunicorn gevent workers with group commit, a prefork Celery worker, Redis,
moto) switched on by OTEL_EXPORTER_OTLP_ENDPOINT alone exports its spans over OTLP/HTTP to a collector on
127.0.0.1; the provisioning's request (web) and its processing and CodeBuild call (a pool process) are one trace."""

import threading
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.faults.support import post_event, provisioning_envelope, wait_for


class Collector:
    """An OTLP/HTTP trace receiver: every exported span as (service name, span)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
                for resource_spans in request.resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        collector.spans.extend((attributes["service.name"], span) for span in scope_spans.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, name: str) -> list[tuple[str, object]]:
        return [(service, span) for service, span in self.spans if span.name == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_an_otlp_endpoint_alone_traces_web_and_prefork_worker_into_one_trace(make_stack, basic_tier):
    with closing(Collector()) as collector:
        # Given a stack told only where the collector is
        stack = make_stack(extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"})
        web = stack.start_web(workers=2)
        stack.start_worker(queues=["default", "builds"], concurrency=2)

        # When a provisioning event arrives
        assert post_event(web.url, provisioning_envelope()) == 202

        # Then the web's request and the pool process's work are exported as one trace
        [(web_service, request)] = wait_for(lambda: collector.named("POST api/events/"), timeout=60, what="the request")

        def in_the_request_trace(*names: str) -> list[list[tuple[str, object]]] | None:
            found = [
                [(service, span) for service, span in collector.named(name) if span.trace_id == request.trace_id]
                for name in names
            ]
            return found if all(found) else None

        [(worker_service, processing)], [(_, start_build)] = wait_for(
            lambda: in_the_request_trace("events.process", "CodeBuild.StartBuild"),
            timeout=60,
            what="the event's processing and StartBuild in the request's trace",
        )
    assert (web_service, worker_service) == ("orchestrator-web", "orchestrator-worker")
    assert processing.parent_span_id == request.span_id  # group commit handed the request's context over
    assert start_build.parent_span_id == processing.span_id
