"""Dependency checks behind ``GET /orchestrator/status``, and the cheap probes beside it.

The status endpoint needs no authentication, so its checks must not be something an anonymous caller can
multiply: a round of checks (one query, one Redis ping, three AWS calls) runs at most once per
``STATUS_CACHE_SECONDS`` in each web process, however many callers ask. Callers arriving while a round is in
flight wait for it rather than starting their own; later callers reuse its result until it expires.
"""

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from orchestrator.aws import aws_client
from orchestrator.redaction import redact_text

CHECK_TIMEOUT_SECONDS = 3.0
ERROR_DETAIL_CHARS = 300


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker() -> None:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def check_dynamodb() -> None:
    aws_client("dynamodb").describe_table(TableName=settings.DYNAMODB_TENANT_TABLE)


def check_eventbridge() -> None:
    aws_client("events").describe_event_bus(Name=settings.EVENT_BUS_NAME)


def check_codebuild() -> None:
    aws_client("codebuild").list_projects(sortBy="NAME")


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "broker": check_broker,
    "dynamodb": check_dynamodb,
    "eventbridge": check_eventbridge,
    "codebuild": check_codebuild,
}


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float | None
    checked_at: datetime
    error: str = ""  # for staff: the error class (or AWS error code) and its message, secrets masked


@dataclass(frozen=True)
class StatusReport:
    checked_at: datetime
    checks: dict[str, CheckResult]

    @property
    def healthy(self) -> bool:
        return all(check.ok for check in self.checks.values())


def _describe(error: Exception) -> str:
    """The error class (for AWS, its error code) and its message, secrets masked, shortened."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        details = response["Error"]
        text = f"{details.get('Code', 'AWS error')}: {details.get('Message', '')}"
    else:
        text = f"{error.__class__.__name__}: {error}"
    return redact_text(text.strip().rstrip(":"))[:ERROR_DETAIL_CHARS]


def _timed(check: Callable[[], None]) -> CheckResult:
    started = time.perf_counter()
    error = ""
    try:
        check()
    except Exception as failure:  # every failure is reported, none escapes
        error = _describe(failure)
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(ok=not error, latency_ms=latency_ms, checked_at=timezone.now(), error=error)


def run_checks(*, pool: ThreadPoolExecutor) -> StatusReport:
    """One round: every check concurrently, so one slow dependency does not add to the others."""
    results: dict[str, CheckResult] = {}
    # The database check must run on this thread: Django connections are per thread.
    results["database"] = _timed(CHECKS["database"])
    futures = {name: pool.submit(_timed, check) for name, check in CHECKS.items() if name != "database"}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=CHECK_TIMEOUT_SECONDS + 8)
        except Exception:
            results[name] = CheckResult(
                ok=False, latency_ms=None, checked_at=timezone.now(), error="TimeoutError: no answer"
            )
    return StatusReport(checked_at=timezone.now(), checks={name: results[name] for name in CHECKS})


class _StatusChecker:
    """This process's checks: one round at a time, its report shared until it expires. The rounds run on
    threads kept from one round to the next, so each keeps its boto3 clients: building them anew took more
    CPU (~0.4 s a round) than everything else a round does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._report: StatusReport | None = None
        self._expires = 0.0

    def _fresh(self) -> StatusReport | None:
        return self._report if time.monotonic() < self._expires else None

    def _round(self) -> StatusReport:
        if self._pool is None or self._pid != os.getpid():  # none yet, or inherited from a parent process
            self._pool = ThreadPoolExecutor(max_workers=len(CHECKS) - 1, thread_name_prefix="status-check")
            self._pid = os.getpid()
        return run_checks(pool=self._pool)

    def report(self, *, ttl: float) -> StatusReport:
        report = self._fresh()
        if report is not None:
            return report
        with self._lock:
            report = self._fresh()  # the round another caller ran while this one waited
            if report is None:
                report = self._round()
                self._report, self._expires = report, time.monotonic() + ttl
            return report

    def clear(self) -> None:
        with self._lock:
            self._report, self._expires = None, 0.0


_checker = _StatusChecker()


def status_report() -> StatusReport:
    """The dependencies' health, at most ``STATUS_CACHE_SECONDS`` old."""
    return _checker.report(ttl=settings.STATUS_CACHE_SECONDS)


def status_cache_clear() -> None:
    _checker.clear()


def database_ready() -> bool:
    """Readiness: this process can reach its database (the intake cannot accept an event otherwise)."""
    try:
        check_database()
    except Exception:
        return False
    return True
