"""Dependency checks behind ``GET /orchestrator/status``: each answers ok or a short error string."""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from orchestrator.aws import aws_client

CHECK_TIMEOUT_SECONDS = 3.0


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


def _describe(error: Exception) -> str:
    """A short, secret-free description: the error class and, for AWS, its error code."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"AWS error: {response['Error'].get('Code', 'unknown')}"
    return f"{error.__class__.__name__}: unreachable"


def _timed(name: str, check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
        result: dict[str, Any] = {"status": "ok"}
    except Exception as error:  # every failure is reported, none escapes
        result = {"status": _describe(error)}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def run_checks() -> dict[str, dict[str, Any]]:
    """Run every check concurrently so one slow dependency does not add to the others."""
    results: dict[str, dict[str, Any]] = {}
    # The database check must run on this thread: Django connections are per thread.
    results["database"] = _timed("database", CHECKS["database"])
    others = {name: check for name, check in CHECKS.items() if name != "database"}
    with ThreadPoolExecutor(max_workers=len(others)) as pool:
        futures = {name: pool.submit(_timed, name, check) for name, check in others.items()}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=CHECK_TIMEOUT_SECONDS + 8)
            except Exception:
                results[name] = {"status": "TimeoutError: no answer", "latency_ms": None}
    return results
