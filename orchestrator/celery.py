"""The Celery application: configured from Django settings (``CELERY_*``), tasks found in each app."""

import os
from typing import Any

from celery import Celery, Task
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings.production")

app = Celery("orchestrator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def recycle_database_connections(task: Task | None = None, **kwargs: Any) -> None:
    """Treat each task like a request: reuse the connection per CONN_MAX_AGE, drop it if it broke.

    Celery's Django fix-up would otherwise close every connection before and after every task (unless
    ``CELERY_DB_REUSE_MAX`` is set, which the settings do), paying a new PostgreSQL connection per task.
    """
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@setup_logging.connect
def use_django_logging(**kwargs: Any) -> None:
    """Workers and beat log as the web server does (settings ``LOGGING``: one format, a request id, secrets
    masked, periodic-task chatter at DEBUG), instead of Celery replacing the handlers with its own. Their level
    is ``LOG_LEVEL``; a ``-l`` option on the command line is not used."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@worker_ready.connect
def serve_worker_metrics(**kwargs: Any) -> None:
    """The worker's metrics on METRICS_PORT, served by its main process for all of its pool (orchestrator.metrics)."""
    from orchestrator.metrics import worker_metrics_serve

    worker_metrics_serve()


@worker_process_shutdown.connect
def forget_pool_process(pid: int | None = None, **kwargs: Any) -> None:
    """A prefork pool process ends (replaced, or the worker stops): its live gauges no longer count."""
    from orchestrator.metrics import process_exited

    process_exited(pid or os.getpid())


@worker_process_init.connect
def trace_pool_process(**kwargs: Any) -> None:
    """Tracing (off unless OTEL_* asks for it) in each prefork pool process, after its fork."""
    from orchestrator.telemetry import telemetry_setup

    telemetry_setup(service="worker")


@worker_init.connect
def trace_worker(sender: Any = None, **kwargs: Any) -> None:
    """Tracing in a worker whose pool does not fork (threads): its main process runs the tasks."""
    from celery.concurrency import get_implementation

    from orchestrator.telemetry import telemetry_setup

    pool = get_implementation(getattr(sender, "pool_cls", None) or "prefork")
    if not pool.__module__.endswith(".prefork"):
        telemetry_setup(service="worker")
