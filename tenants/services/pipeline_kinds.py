"""The step kinds the tenants app owns: ``build``, ``approval``, ``wait`` (registered in ``TenantsConfig.ready``).

- ``build``: ``{"project": "...", "builders": ["CODE_BUILD", "LOCAL"]}``. The tenant's ``builderConfig.type``
  must be one of the step's builders, and the tier's (``builder_check``); the environment is the one every
  build gets (tier < plan < override). The build's token is ``step:{key}:{attempt}``, so a step started
  twice for one attempt never starts two builds. It completes on the build's outcome event
  (``tenants.services.outcomes``), or fails when its builder reports a failure (``build_record_state``);
  the outcome's detail becomes the step's outputs (what later callbacks read).
- ``approval``: ``{"prompt": "..."}``; waits for ``step_approve`` / ``step_reject`` (``pipeline_actions``).
- ``wait``: ``{"seconds": N}`` (a delay: a countdown task, the sweep as a fallback) or ``{"event": "NAME"}``
  (finished by ``pipeline_wait_event_signal``); the step's timeout bounds an event wait.
"""

from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.builders.local_sandbox import command_listed
from tenants.builders.registry import known_types
from tenants.models import Build, BuilderType, BuildPurpose, PipelineOperation, StepRun, StepRunStatus, Tier
from tenants.pipelines.registry import StepContext, StepFailed, StepKind, StepStart, StepWaits
from tenants.selectors import tier_get
from tenants.services.build_policy import builder_check, builder_type_of
from tenants.services.builds import build_create, build_start_after_commit, environment_for, step_build_token
from tenants.services.pipeline_runs import step_run_complete

MAX_WAIT_SECONDS = 7 * 24 * 3600


def _text(config: dict[str, Any], name: str, *, max_length: int = 255) -> str:
    value = config.get(name)
    return value.strip() if isinstance(value, str) and 0 < len(value.strip()) <= max_length else ""


def _unknown_keys(config: dict[str, Any], allowed: set[str]) -> list[str]:
    extra = sorted(set(config) - allowed)
    return [f"Unknown config key {', '.join(extra)}; allowed: {', '.join(sorted(allowed))}."] if extra else []


class BuildStep(StepKind):
    kind = "build"

    def validate_config(self, *, config: dict[str, Any], tier: Tier) -> list[str]:
        problems = _unknown_keys(config, {"project", "builders"})
        project = _text(config, "project")
        if not project:
            problems.append("project: the CodeBuild project (or LOCAL command) to run, at most 255 characters.")
        builders = config.get("builders")
        if not isinstance(builders, list) or not builders or not all(isinstance(b, str) for b in builders):
            return [*problems, f"builders: a non-empty list of {', '.join(known_types())}."]
        for builder in builders:
            if builder not in known_types():
                problems.append(f"builders: unknown builder {builder}; known: {', '.join(known_types())}.")
            elif builder not in (tier.allowed_builders or []):
                problems.append(f"builders: tier {tier.name} does not allow {builder}.")
        if BuilderType.LOCAL in builders:
            if not settings.LOCAL_BUILDER_ENABLED:
                problems.append("builders: the LOCAL builder is disabled on this deployment (LOCAL_BUILDER_ENABLED).")
            elif project and not command_listed(project):
                listed = "; ".join(settings.LOCAL_BUILD_COMMANDS) or "none"
                problems.append(f"project: a LOCAL build may only run a command of LOCAL_BUILD_COMMANDS ({listed}).")
        return problems

    def start(self, *, context: StepContext) -> StepStart:
        step, tenant = context.step_run, context.tenant
        builder_type = builder_type_of(tenant.builder_config)
        if builder_type not in step.config.get("builders", []):
            return StepFailed(
                f"Step {step.name} allows builders {', '.join(step.config.get('builders', []))}, "
                f"not {builder_type or '(none)'} (builderConfig.type)."
            )
        tier = tier_get(name=tenant.tier)
        if tier is None:
            return StepFailed(f"Unknown tier {tenant.tier!r}: it is not in the tier mapping.")
        builder_check(tier=tier, builder_type=builder_type)
        token = step_build_token(step_key=step.key, attempt=step.attempts)
        build = Build.objects.filter(idempotency_token=token).first()
        purpose = (
            BuildPurpose.DEPROVISION
            if context.run.operation == PipelineOperation.DEPROVISION
            else BuildPurpose.PROVISION
        )
        environment = environment_for(tenant=tenant, tier=tier, purpose=purpose)
        if build is None:
            build = build_create(
                tenant=tenant,
                purpose=purpose,
                attempt=step.attempts,
                tier=tier,
                environment=environment,
                project=step.config["project"],
                token=token,
            )
            build_start_after_commit(build=build, environment=environment)
        step.build = build
        return StepWaits()


class ApprovalStep(StepKind):
    kind = "approval"
    needs_decision = True

    def validate_config(self, *, config: dict[str, Any], tier: Tier) -> list[str]:
        problems = _unknown_keys(config, {"prompt"})
        if "prompt" in config and not _text(config, "prompt", max_length=500):
            problems.append("prompt: text of at most 500 characters.")
        return problems

    def start(self, *, context: StepContext) -> StepStart:
        step = context.step_run
        step.decision, step.decided_by, step.decision_comment, step.decided_at = "", None, "", None
        return StepWaits(approval=True)


class WaitStep(StepKind):
    kind = "wait"

    def validate_config(self, *, config: dict[str, Any], tier: Tier) -> list[str]:
        problems = _unknown_keys(config, {"seconds", "event"})
        seconds, event = config.get("seconds"), config.get("event")
        if (seconds is None) == (event is None):
            return [*problems, "Either seconds (a delay) or event (a name to wait for), not both."]
        if seconds is not None and (
            not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 < seconds <= MAX_WAIT_SECONDS
        ):
            problems.append(f"seconds: a whole number from 1 to {MAX_WAIT_SECONDS}.")
        if event is not None and not _text(config, "event", max_length=64):
            problems.append("event: a name of at most 64 characters.")
        return problems

    def deadline_means_success(self, *, step_run: StepRun) -> bool:
        return "seconds" in step_run.config

    def start(self, *, context: StepContext) -> StepStart:
        step = context.step_run
        seconds = step.config.get("seconds")
        if seconds is None:
            return StepWaits()
        # The delay is the deadline: the countdown task finishes it on time, the sweep if that task is lost.
        step.deadline_at = timezone.now() + timedelta(seconds=seconds)
        from tenants.tasks import finish_wait_step

        transaction.on_commit(
            partial(
                finish_wait_step.apply_async,
                kwargs={"step_run_id": step.pk, "attempt": step.attempts},
                countdown=seconds,
            ),
            robust=True,
        )
        return StepWaits()


def wait_step_finish(*, step_run_id: int, attempt: int) -> bool:
    """A delay is over (the countdown task)."""
    return step_run_complete(step_run_id=step_run_id, attempt=attempt, succeeded=True)


def pipeline_wait_event_signal(*, tenant_id: str, name: str, outputs: dict[str, Any] | None = None) -> int:
    """The named event a ``wait`` step of the tenant's live run waits for has come: finish those steps."""
    waiting = StepRun.objects.filter(
        run__tenant_id=tenant_id, kind=WaitStep.kind, status=StepRunStatus.RUNNING, config__event=name
    ).values_list("pk", "attempts")
    return sum(
        step_run_complete(step_run_id=pk, attempt=attempt, succeeded=True, outputs=outputs or {})
        for pk, attempt in waiting
    )
