"""Who hears that a run finished (or was redriven): listeners keyed by operation.

The operation's owner registers them in ``AppConfig.ready`` (``provision``: ``tenants.services.pipeline_provision``).
They are called inside the transaction that finished the run, with the run locked: they write (a tenant
transition, an outbox event) and defer any I/O with ``transaction.on_commit``.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import User


@dataclass(frozen=True)
class PipelineRunFinished:
    tenant_id: str
    operation: str
    run_id: int
    succeeded: bool
    error: str = ""
    cancelled: bool = False
    actor_user: User | None = None


@dataclass(frozen=True)
class PipelineRunRedriven:
    tenant_id: str
    operation: str
    run_id: int
    actor_user: User | None = None


FinishListener = Callable[[PipelineRunFinished], None]
RedriveListener = Callable[[PipelineRunRedriven], None]

_finish: dict[str, dict[str, FinishListener]] = {}
_redrive: dict[str, dict[str, RedriveListener]] = {}


def run_listener_register(
    *, operation: str, name: str, on_finish: FinishListener, on_redrive: RedriveListener | None = None
) -> None:
    """Listen to runs of ``operation`` (``name`` identifies the listener: registering twice replaces it)."""
    _finish.setdefault(operation, {})[name] = on_finish
    if on_redrive is not None:
        _redrive.setdefault(operation, {})[name] = on_redrive


def run_finished_notify(finished: PipelineRunFinished) -> None:
    for listener in _finish.get(finished.operation, {}).values():
        listener(finished)


def run_redriven_notify(redriven: PipelineRunRedriven) -> None:
    for listener in _redrive.get(redriven.operation, {}).values():
        listener(redriven)
