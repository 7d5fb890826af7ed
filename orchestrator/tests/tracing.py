"""Tracing in tests: the SDK's in-memory exporter behind our own set-up, switched off again afterwards."""

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orchestrator.telemetry import telemetry_setup, telemetry_teardown


@contextmanager
def recorded_spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on (every instrumentation), each finished span kept in memory; off and uninstrumented after."""
    exporter = InMemorySpanExporter()
    assert telemetry_setup(service="tests", span_processor=SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        telemetry_teardown()
        exporter.shutdown()


def traceparent(span: object) -> str:
    """The W3C ``traceparent`` header that names ``span`` (a finished SDK span)."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
