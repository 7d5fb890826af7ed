"""OpenTelemetry traces: one trace per tenant operation, from the intake request through the Celery tasks that
handle it, their AWS calls (DynamoDB, CodeBuild, EventBridge) and each callback attempt, which carries W3C
``traceparent`` so receivers can join it.

Off by default. On when ``OTEL_SDK_DISABLED=false``, or when an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and ``OTEL_SDK_DISABLED`` is not
``true``. Spans are then exported with OTLP over HTTP; the exporter, the batch processor, the sampler and the
resource read their standard ``OTEL_*`` variables. Each process sets tracing up after it forked, as OpenTelemetry
asks of fork-based servers: a gunicorn worker when it loads the application (``orchestrator/wsgi.py``), a prefork
pool process on ``worker_process_init``, a thread-pool worker on ``worker_init`` (``orchestrator/celery.py``).

Instrumented with the official instrumentations: Django (incoming requests; a caller's ``traceparent`` is
honoured), Celery (the context travels in each message's headers), botocore and requests. Our own outbound
callbacks use ``http.client`` (their SSRF guard pins the address), so ``client_span`` gives them a client span and
the ``traceparent`` header. Where work hops threads, the context goes along: the intake's group commit keeps each
accepted event's context (``trace_carrier``) until its id is dispatched, and the event's processing span
(``span`` with ``parent``) continues the request's trace in the worker.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode

TRACER_NAME = "orchestrator"
# Scrapes and health checks are not operations anyone follows (OTEL_PYTHON_DJANGO_EXCLUDED_URLS overrides).
DEFAULT_EXCLUDED_URLS = r"/metrics$,/orchestrator/status$"


@dataclass
class _State:
    enabled: bool = False
    provider: Any = None
    instrumentors: list[Any] = field(default_factory=list)


_state = _State()


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the standard variables switch tracing on (see the module's docstring)."""
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower()
    if disabled == "true":
        return False
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return disabled == "false" or bool(endpoint)


def telemetry_setup(*, service: str, span_processor: Any = None) -> bool:
    """Set tracing up in this process if the environment asks for it (or a test gives a ``span_processor``):
    a tracer provider exporting over OTLP, and the instrumentations. Idempotent; whether tracing is on."""
    if _state.enabled:
        return True
    if span_processor is None and not tracing_requested():
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if span_processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        span_processor = BatchSpanProcessor(OTLPSpanExporter())
    if _state.provider is None:
        named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        resource = Resource.create({} if named else {"service.name": f"orchestrator-{service}"})
        _state.provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(_state.provider)
    _state.provider.add_span_processor(span_processor)
    _state.instrumentors = _instrument()
    _state.enabled = True
    return True


def _instrument() -> list[Any]:
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    excluded = os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS)
    # Any: mypy does not see the instrumentors' common base (BaseInstrumentor) through the package.
    instrumentors: dict[Any, dict[str, Any]] = {
        DjangoInstrumentor(): {"excluded_urls": excluded},
        CeleryInstrumentor(): {},
        BotocoreInstrumentor(): {},
        RequestsInstrumentor(): {},
    }
    for instrumentor, options in instrumentors.items():
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=_state.provider, **options)
    return list(instrumentors)


def telemetry_teardown() -> None:
    """Remove the instrumentations and stop recording (tests); the tracer provider stays for the process."""
    for instrumentor in _state.instrumentors:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    _state.instrumentors = []
    _state.enabled = False


def _tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, tracer_provider=_state.provider)


def trace_carrier() -> dict[str, str] | None:
    """The current trace context as W3C headers, to hand to another thread or process; None when tracing is off
    or nothing is being traced (a cheap check on the intake's hot path)."""
    if not _state.enabled:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier or None


@contextmanager
def span(
    name: str, *, parent: Mapping[str, str] | None = None, attributes: dict[str, Any] | None = None
) -> Iterator[Span]:
    """A span of our own, child of the current one, or of ``parent`` (a ``trace_carrier``) when the work was
    handed over from another thread; then it is linked to the current span too (e.g. the Celery task running it)."""
    if not _state.enabled:
        yield INVALID_SPAN
        return
    context, links = None, []
    if parent:
        context = propagate.extract(parent)
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            links.append(Link(current))
    with _tracer().start_as_current_span(name, context=context, links=links, attributes=attributes) as current_span:
        yield current_span


@dataclass(frozen=True)
class ClientSpan:
    """An outbound request's span and the headers that carry it to the receiver."""

    span: Span
    headers: dict[str, str]

    def answered(self, status: int) -> None:
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))


_NOT_TRACED = ClientSpan(INVALID_SPAN, {})


@contextmanager
def client_span(method: str, url: str) -> Iterator[ClientSpan]:
    """A client span for one HTTP request we send ourselves (HTTP semantic conventions; the URL without its query,
    which may hold a token), and its ``traceparent`` header. An exception marks the span as failed."""
    if not _state.enabled:
        yield _NOT_TRACED
        return
    parts = urlsplit(url)
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "url.full": f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}",
        "server.address": parts.hostname or "",
    }
    if parts.port:
        attributes["server.port"] = parts.port
    with _tracer().start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attributes) as current_span:
        headers: dict[str, str] = {}
        propagate.inject(headers)
        yield ClientSpan(current_span, headers)
