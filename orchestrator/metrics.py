"""Prometheus metrics: what ``GET /metrics`` (web) and ``METRICS_PORT`` (workers) serve.

Counters and histograms live in each app's ``metrics`` module and are recorded where things happen, with the
labels of the hot paths bound once at import. A web server or a prefork worker is several processes: with
``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps each process's values in memory-mapped files in that
folder and the process answering a scrape adds them up (its multiprocess mode). ``gunicorn.conf.py`` makes the
folder when nobody gave one; launchers of workers give one (README, Observability).

Gauges that describe the data (tenants by status, the oldest unprocessed event, open circuits, ...) are not
kept by any process: each app registers a ``DatabaseCollector`` that reads them with a few small queries when
the web server is scraped, in the process that answers, at most every METRICS_DATABASE_REFRESH_SECONDS. So
they are never summed across processes, and scraping often costs no more database work than scraping rarely.
Workers' endpoints do not serve them.
"""

import hmac
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any
from wsgiref.simple_server import WSGIServer

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

logger = logging.getLogger(__name__)

# The multiprocess folder must exist before the first metric is created (at import of the apps' metrics).
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
if MULTIPROCESS_DIR:
    os.makedirs(MULTIPROCESS_DIR, exist_ok=True)

# Buckets (seconds) shared by the apps' latency histograms: from a fast request to a slow receiver's timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DatabaseCollector:
    """Gauges read from the database at scrape time, at most every METRICS_DATABASE_REFRESH_SECONDS per process.

    ``read`` runs the queries and returns plain data (cached); ``metrics`` turns it into metric families on
    every scrape, so an age computed from a cached timestamp still grows between two reads. A failing read
    (database down) is logged and its gauges are left out of that scrape.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: Any = None
        self._read_at = float("-inf")

    def read(self) -> Any:
        raise NotImplementedError

    def metrics(self, data: Any, *, now: float) -> Iterable[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            if time.monotonic() - self._read_at >= settings.METRICS_DATABASE_REFRESH_SECONDS:
                try:
                    self._data = self.read()
                except Exception:
                    logger.exception("metrics: %s could not read the database", self.__class__.__name__)
                    self._data = None
                self._read_at = time.monotonic()
            data = self._data
        if data is not None:
            yield from self.metrics(data, now=time.time())


_database_collectors: list[DatabaseCollector] = []


def database_collector_register(collector: DatabaseCollector) -> None:
    """Serve ``collector``'s gauges on the web server's ``/metrics`` (call from ``AppConfig.ready``)."""
    _database_collectors.append(collector)


class _ThisProcess:
    """The default registry's metrics (this process only): what is served without multiprocess mode."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def processes_registry() -> CollectorRegistry:
    """A registry of the metrics recorded by this server's or worker's processes: all of them, added up from
    the multiprocess folder, or this process's own when there is none (a single-process server or worker)."""
    registry = CollectorRegistry()
    if MULTIPROCESS_DIR:
        multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    else:
        registry.register(_ThisProcess())
    return registry


_web_registry: CollectorRegistry | None = None


def web_registry() -> CollectorRegistry:
    """What ``/metrics`` serves: the processes' metrics and the database gauges."""
    global _web_registry
    if _web_registry is None:
        registry = processes_registry()
        for collector in _database_collectors:
            registry.register(collector)
        _web_registry = registry
    return _web_registry


def metrics_exposition(*, accept: str) -> tuple[bytes, str]:
    """The web server's metrics in the format the scraper asked for (Prometheus text or OpenMetrics)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(web_registry()), content_type


def metrics_token_valid(authorization: str) -> bool:
    """Whether an ``Authorization`` header carries one of METRICS_TOKENS as a bearer token."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    given = token.strip().encode()
    # Every configured token is compared (in constant time each), so timing tells nothing about which matched.
    matches = [hmac.compare_digest(given, expected.encode()) for expected in settings.METRICS_TOKENS if expected]
    return any(matches)


def worker_metrics_serve() -> WSGIServer | None:
    """A Celery worker's metrics on METRICS_ADDRESS:METRICS_PORT (no port: not served). Runs in the worker's
    main process; its pool's processes write to the multiprocess folder, which this server adds up."""
    if not settings.METRICS_PORT:
        return None
    if not MULTIPROCESS_DIR:
        logger.warning(
            "metrics: PROMETHEUS_MULTIPROC_DIR is not set, so a prefork worker serves only its main process's "
            "metrics on port %s (set it for the pool's processes to be counted)",
            settings.METRICS_PORT,
        )
    server, _thread = start_http_server(
        settings.METRICS_PORT, addr=settings.METRICS_ADDRESS, registry=processes_registry()
    )
    logger.info("metrics: served on %s:%s", settings.METRICS_ADDRESS, settings.METRICS_PORT)
    return server


def process_exited(pid: int) -> None:
    """Forget a process that ended (gunicorn's ``child_exit``, a pool process's shutdown): its counters stay in
    the folder (they are totals), its live gauges go."""
    if MULTIPROCESS_DIR:
        multiprocess.mark_process_dead(pid, path=MULTIPROCESS_DIR)
