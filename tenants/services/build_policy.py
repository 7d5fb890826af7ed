"""Which builder a tenant's build may use and what a LOCAL tier may run: the tier decides, the deployment allows.

The event's sender names a builder (``builderConfig.type``); it may only pick one its tier allows
(``Tier.allowed_builders``, CODE_BUILD alone unless a superuser adds LOCAL). LOCAL also has to be enabled on
the deployment (``LOCAL_BUILDER_ENABLED``), a LOCAL tier's projects have to be command lines listed in
``LOCAL_BUILD_COMMANDS``, and its variables have to pass the LOCAL naming rule (``orchestrator.env_names``).

Where each rule is enforced:

- saving a tier: ``tier_validate`` (API, ``import_tiers``, ``seed_demo``, through ``tier_upsert``), and its
  parts ``tier_builder_problems`` / ``tier_variable_problems`` in the admin's forms;
- a provisioning event whose tier refuses its builder: the event is refused (``tenant_provision``), nothing
  is stored or started;
- every attempt (event, staff retry, deprovisioning): ``builder_check`` in ``tenant_attempt_start`` fails
  the attempt with the reason;
- the LOCAL runner, right before it runs anything: ``builder_check`` again (``build_environment_for``),
  the command allow-list (``tenants.builders.local_sandbox.command_argv``) and the names of every variable.
"""

from collections.abc import Iterable
from typing import Any

from django.conf import settings

from orchestrator.env_names import name_problem
from orchestrator.errors import ApplicationError
from tenants.builders.base import BuildRejected
from tenants.builders.local_sandbox import command_listed
from tenants.builders.registry import builder_for
from tenants.models import BuilderType, Tier


class BuilderNotAllowed(BuildRejected):
    code = "builder_not_allowed"


def builder_type_of(builder_config: Any) -> str:
    return str((builder_config or {}).get("type", "")) if isinstance(builder_config, dict) else ""


def builder_check(*, tier: Tier, builder_type: str) -> None:
    """Raise unless ``builder_type`` is a known builder, allowed by ``tier`` and enabled on this deployment."""
    builder_for(builder_type)  # UnknownBuilder (with the known types) first
    allowed = list(tier.allowed_builders or [])
    if builder_type not in allowed:
        raise BuilderNotAllowed(
            f"Tier {tier.name} does not allow builder {builder_type} (builderConfig.type); "
            f"it allows {', '.join(allowed) or 'none'}."
        )
    if builder_type == BuilderType.LOCAL and not settings.LOCAL_BUILDER_ENABLED:
        raise BuilderNotAllowed("The LOCAL builder is disabled on this deployment (LOCAL_BUILDER_ENABLED).")


def builder_refusal(*, tier: Tier | None, builder_config: Any) -> str:
    """Why ``tier`` refuses the builder a provisioning request names ("" when it does not, and when the tier
    (None) or the builder is unknown: the attempt then fails with that reason, as for any other tenant)."""
    if tier is None:
        return ""
    try:
        builder_check(tier=tier, builder_type=builder_type_of(builder_config))
    except BuilderNotAllowed as error:
        return error.message
    except BuildRejected:
        pass  # an unknown builder fails the attempt, with the known types
    return ""


def tier_builder_problems(
    *, allowed_builders: Any, provision_project: str, deprovision_project: str, **operation_projects: str
) -> dict[str, list[str]]:
    """Field errors of a tier's builder settings (``{}`` when none)."""
    known = BuilderType.values
    if not isinstance(allowed_builders, list) or not allowed_builders:
        return {"allowed_builders": [f"Choose at least one of {', '.join(known)}."]}
    unknown = [str(name) for name in allowed_builders if name not in known]
    if unknown:
        return {"allowed_builders": [f"Unknown builder {', '.join(unknown)}; known: {', '.join(known)}."]}
    if len(set(allowed_builders)) != len(allowed_builders):
        return {"allowed_builders": ["Each builder once."]}
    if BuilderType.LOCAL not in allowed_builders:
        return {}
    if not settings.LOCAL_BUILDER_ENABLED:
        return {"allowed_builders": ["The LOCAL builder is disabled on this deployment (LOCAL_BUILDER_ENABLED)."]}
    listed = "; ".join(settings.LOCAL_BUILD_COMMANDS) or "none"
    problems = {}
    projects = {"provision_project": provision_project, "deprovision_project": deprovision_project}
    for field, command in {**projects, **operation_projects}.items():
        if command and not command_listed(command):
            problems[field] = [f"A LOCAL tier may only run a command of LOCAL_BUILD_COMMANDS ({listed})."]
    return problems


def tier_variable_problems(*, names: Iterable[str], allowed_builders: Any) -> dict[str, list[str]]:
    """Variables a LOCAL tier may not have (``{}`` for CodeBuild-only tiers, which keep the plain rule)."""
    if not isinstance(allowed_builders, list) or BuilderType.LOCAL not in allowed_builders:
        return {}
    messages = [f"{name!r} {problem}." for name in names if (problem := name_problem(name, reserved=True, local=True))]
    return {"variables": messages} if messages else {}


def tier_validate(*, tier: Tier) -> None:
    """``ApplicationError`` with field errors unless the saved state of ``tier`` is one it may have."""
    problems = {
        **tier_builder_problems(
            allowed_builders=tier.allowed_builders,
            provision_project=tier.provision_project,
            deprovision_project=tier.deprovision_project,
            update_project=tier.update_project,
            suspend_project=tier.suspend_project,
            resume_project=tier.resume_project,
        ),
        **tier_variable_problems(
            names=[variable.name for variable in tier.variables.all()], allowed_builders=tier.allowed_builders
        ),
    }
    if problems:
        first = next(iter(problems.values()))[0]
        raise ApplicationError(f"Tier {tier.name} is invalid: {first}", fields=problems)
