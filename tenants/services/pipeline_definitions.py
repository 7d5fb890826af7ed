"""A tier's pipelines: replace one operation's steps (the API and the admin both come here), read them back.

Rules, checked before anything is written: steps in order (positions are 1..n as given), names are slugs,
unique within the pipeline; every kind is registered (``tenants.pipelines.registry``) and its own
``validate_config`` accepts the config for this tier (a ``build`` step's builders must be allowed by the
tier and a LOCAL project listed in ``LOCAL_BUILD_COMMANDS``; a ``callback`` URL passes the SSRF guard);
timeouts, attempts and backoff within bounds. A failure is one ``ApplicationError`` with a field per
problem (``steps[2].config``...). Saving bumps the tier's version, so its DynamoDB item is written again
with its ``pipelines`` attribute (``tenants.services.sync.tier_item``). Runs under way keep the steps they
copied when they started.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from orchestrator.errors import ApplicationError
from tenants.models import PipelineOperation, PipelineStep, Tier
from tenants.pipelines.registry import UnknownStepKind, step_kind

NAME = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
MAX_STEPS = 50
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 3600
STEP_DEFAULTS: dict[str, Any] = {
    "config": {},
    "timeout_seconds": 3600,
    "max_attempts": 1,
    "backoff_seconds": 30,
    "continue_on_failure": False,
}


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _step_problems(*, row: Mapping[str, Any], tier: Tier, seen: set[str]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    name = row.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        problems["name"] = ["Letters, digits, - and _; at most 64 characters."]
    elif name in seen:
        problems["name"] = [f"Step {name} is given twice."]
    else:
        seen.add(name)
    config = row.get("config", STEP_DEFAULTS["config"])
    try:
        kind = step_kind(str(row.get("kind", "")))
    except UnknownStepKind as error:
        problems["kind"] = [error.message]
    else:
        if not isinstance(config, dict):
            problems["config"] = ["A JSON object."]
        elif config_problems := kind.validate_config(config=config, tier=tier):
            problems["config"] = config_problems
    bounds = {
        "timeout_seconds": (1, MAX_TIMEOUT_SECONDS),
        "max_attempts": (1, MAX_ATTEMPTS),
        "backoff_seconds": (0, MAX_BACKOFF_SECONDS),
    }
    for field, (low, high) in bounds.items():
        if not _whole(row.get(field, STEP_DEFAULTS[field]), low, high):
            problems[field] = [f"A whole number from {low} to {high}."]
    if not isinstance(row.get("continue_on_failure", False), bool):
        problems["continue_on_failure"] = ["true or false."]
    unknown = sorted(set(row) - {"name", "kind", *STEP_DEFAULTS})
    if unknown:
        problems["step"] = [f"Unknown field {', '.join(unknown)}."]
    return problems


def pipeline_problems(*, tier: Tier, operation: str, steps: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Field errors of a pipeline (``{}`` when it may be saved): ``operation``, ``steps``, ``steps[i].field``."""
    if operation not in PipelineOperation.values:
        return {"operation": [f"One of {', '.join(PipelineOperation.values)}."]}
    if len(steps) > MAX_STEPS:
        return {"steps": [f"At most {MAX_STEPS} steps."]}
    problems: dict[str, list[str]] = {}
    seen: set[str] = set()
    for index, row in enumerate(steps):
        if not isinstance(row, Mapping):
            problems[f"steps[{index}]"] = ["A JSON object."]
            continue
        for field, messages in _step_problems(row=row, tier=tier, seen=seen).items():
            problems[f"steps[{index}].{field}"] = messages
    return problems


def pipeline_replace(*, tier: Tier, operation: str, steps: Sequence[Mapping[str, Any]]) -> list[PipelineStep]:
    """Replace the tier's pipeline for ``operation`` with ``steps`` (in order; an empty list removes it)."""
    problems = pipeline_problems(tier=tier, operation=operation, steps=steps)
    if problems:
        field, messages = next(iter(problems.items()))
        raise ApplicationError(
            f"Pipeline {operation} of tier {tier.name} is invalid: {field}: {messages[0]}", fields=problems
        )
    with transaction.atomic():
        tier = Tier.objects.select_for_update().get(pk=tier.pk)
        PipelineStep.objects.filter(tier=tier, operation=operation).delete()
        created = PipelineStep.objects.bulk_create(
            PipelineStep(
                tier=tier,
                operation=operation,
                position=position,
                name=row["name"],
                kind=row["kind"],
                **{field: row.get(field, default) for field, default in STEP_DEFAULTS.items()},
            )
            for position, row in enumerate(steps, start=1)
        )
        tier.save(update_fields=["version", "updated_at"])  # the DynamoDB item is written again
    return created


def step_as_dict(step: PipelineStep) -> dict[str, Any]:
    return {"name": step.name, "kind": step.kind, **{field: getattr(step, field) for field in STEP_DEFAULTS}}


def tier_pipelines(*, tier: Tier) -> dict[str, list[dict[str, Any]]]:
    """Every operation's steps, in order (operations without steps left out)."""
    pipelines: dict[str, list[dict[str, Any]]] = {}
    for step in sorted(tier.pipeline_steps.all(), key=lambda step: (step.operation, step.position)):
        pipelines.setdefault(step.operation, []).append(step_as_dict(step))
    return pipelines
