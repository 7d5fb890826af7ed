"""``bootstrap_aws``: idempotent creation of the AWS side, from steps the apps register.

Each app adds its steps in ``AppConfig.ready`` (``bootstrap_step_register``): events the bus and the
EventBridge -> intake wiring, tenants the DynamoDB tables and the CodeBuild projects. A step creates what is
missing, leaves what exists alone and returns what it created, so ``bootstrap_aws`` can run on every start.
Steps run by ``order``, what others need first: tables (10), the bus (20), projects (30), the wiring on the
bus (40).
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BootstrapStep:
    name: str
    run: Callable[[], list[str]]
    order: int


_steps: dict[str, BootstrapStep] = {}


def bootstrap_step_register(*, name: str, run: Callable[[], list[str]], order: int) -> None:
    """Add a step (a step of the same name is replaced: registering twice is harmless)."""
    _steps[name] = BootstrapStep(name=name, run=run, order=order)


def bootstrap_steps() -> list[BootstrapStep]:
    return sorted(_steps.values(), key=lambda step: step.order)


def bootstrap_aws() -> dict[str, list[str]]:
    """Run every step in order; returns what each created (empty lists on a second run)."""
    return {step.name: step.run() for step in bootstrap_steps()}
