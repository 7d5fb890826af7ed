"""The one task policy (Sentry's ``instrumented_task`` idea): every Celery task is declared with
``lifecycle_task``, which states its name, queue and retries and sets what every task shares.

Shared by all: a message is acknowledged only after its task ran and is re-queued when the worker dies
(``acks_late``, ``reject_on_worker_lost``), so tasks are written to be run twice; retries wait with
exponential backoff and full jitter. The registered name is part of the wire (a message queued before an
upgrade must still find its task): rename a task only together with a migration of what is queued.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import shared_task
from django.conf import settings


@dataclass(frozen=True)
class Retry:
    """Retry the task when it raises one of ``on``: at most ``max_retries`` times, waiting about
    ``backoff`` x 2^n seconds (capped at ``backoff_max``, full jitter) before retry n."""

    on: tuple[type[Exception], ...]
    max_retries: int
    backoff: int = 1
    backoff_max: int = 600


def lifecycle_task(
    *, name: str, queue: str | None = None, retry: Retry | None = None
) -> Callable[[Callable[..., Any]], Any]:
    """Declare a Celery task: ``name`` (never change it), ``queue`` (default: the default queue) and what
    it retries. Without ``retry`` a failure is left to the service's own bookkeeping (a sweeper)."""
    options: dict[str, Any] = {
        "name": name,
        "queue": queue or settings.CELERY_TASK_DEFAULT_QUEUE,
        "acks_late": True,
        "reject_on_worker_lost": True,
    }
    if retry is not None:
        options |= {
            "autoretry_for": retry.on,
            "max_retries": retry.max_retries,
            "retry_backoff": retry.backoff,
            "retry_backoff_max": retry.backoff_max,
            "retry_jitter": True,
        }
    return shared_task(**options)
