"""Step kinds: ``kind`` -> the class that validates a step's config, starts a step run and says how it completes.

Adding a kind is one class and one ``step_kind_register`` line, in the ``AppConfig.ready`` of the app that
owns what the kind does: the tenants app registers ``build``, ``approval`` and ``wait``
(``tenants.services.pipeline_kinds``); the webhooks app, above it, registers ``callback`` and ``notify``.

How a step run completes: ``start`` returns ``StepDone`` (finished in the call), ``StepFailed`` or
``StepWaits`` (something outside finishes it later through ``tenants.services.pipeline_runs.step_run_complete``:
a build's outcome, a delivery's end, a staff decision, a timer or a named event; the step's timeout bounds
the wait).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ApplicationError

if TYPE_CHECKING:
    from tenants.models import PipelineRun, StepRun, Tenant, Tier


@dataclass(frozen=True)
class StepDone:
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepFailed:
    error: str


@dataclass(frozen=True)
class StepWaits:
    """Started; ``approval`` makes the step WAITING (for a person) rather than RUNNING."""

    approval: bool = False


StepStart = StepDone | StepFailed | StepWaits


@dataclass(frozen=True)
class StepContext:
    """What a kind's ``start`` gets: the step run (locked, its ``attempts`` already counting this start),
    its run and tenant, and the outputs of the steps before it (later ones win on a name clash)."""

    step_run: "StepRun"
    run: "PipelineRun"
    tenant: "Tenant"
    outputs: dict[str, Any]


class StepKind(ABC):
    kind: str = ""
    # A kind that needs a person (approval) is shown and permission-checked as such.
    needs_decision: bool = False

    @abstractmethod
    def validate_config(self, *, config: dict[str, Any], tier: "Tier") -> list[str]:
        """Why ``config`` cannot be saved for a step of ``tier`` (empty: it can)."""

    @abstractmethod
    def start(self, *, context: StepContext) -> StepStart:
        """Start one attempt, inside the engine's transaction (the run and the step are locked): write rows,
        defer I/O to after commit. Called again only for a new attempt (``context.step_run.attempts``)."""

    def deadline_means_success(self, *, step_run: "StepRun") -> bool:
        """What reaching the step's deadline means: a failure (a timeout), or for a delay, that it is over."""
        return False


class UnknownStepKind(ApplicationError):
    code = "unknown_step_kind"


_kinds: dict[str, StepKind] = {}


def step_kind_register(kind: StepKind) -> None:
    """Add (or replace: registering twice is harmless) a kind."""
    _kinds[kind.kind] = kind


def step_kind(kind: str) -> StepKind:
    found = _kinds.get(kind)
    if found is None:
        raise UnknownStepKind(
            f"Unknown step kind {kind!r}; known: {', '.join(step_kinds())}.", fields={"kind": [f"unknown {kind!r}"]}
        )
    return found


def step_kinds() -> list[str]:
    return sorted(_kinds)
