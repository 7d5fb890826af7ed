"""Builds: record the intent, start it through its builder after commit, record what the backend
reports, poll.

Idempotency: a build's ``idempotency_token`` is ``{tenant}:{purpose}:{attempt}`` and unique. The row is
recorded as ``PENDING_START`` in the transaction that starts the attempt, and the builder is called only
after that commits (``build_start_after_commit`` → ``build_start``), only while the row is still
``PENDING_START``. So no build ever runs without its row: a crash before the builder answered leaves the
intent, which the recovery (``build_intents_hand_out``, every ``BUILD_RECOVERY_INTERVAL_SECONDS``) starts
again after ``BUILD_START_RETRY_AFTER_SECONDS`` with the same token, which CodeBuild answers with the
build it already started (within its 5-minute window).
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orchestrator.errors import ApplicationError
from orchestrator.links import https_link
from tenants.builders.base import BuildRejected, BuildState, BuildUnavailable
from tenants.builders.registry import builder_for
from tenants.models import (
    BUILD_FAILURE_STATUSES,
    BUILD_OPEN_STATUSES,
    OPERATION_PURPOSES,
    PURPOSE_STATUSES,
    Build,
    BuildPurpose,
    BuildStatus,
    HistoryKind,
    Tenant,
    TenantHistory,
    Tier,
    attempt_field,
)
from tenants.selectors import tier_get
from tenants.services.build_policy import builder_check, builder_type_of
from tenants.services.environment import EnvVar, build_environment, environment_masked
from tenants.services.history import history_record
from tenants.services.lifecycle import TransitionCause, tenant_transition
from tenants.services.operation_outcomes import operation_finish
from tenants.services.pipeline_runs import step_build_failed

logger = logging.getLogger(__name__)


def idempotency_token(*, tenant_id: str, purpose: str, attempt: int) -> str:
    return f"{tenant_id}:{purpose}:{attempt}"


STEP_BUILD_TOKEN_PREFIX = "step:"  # noqa: S105 (a prefix, not a secret)


def step_build_token(*, step_key: str, attempt: int) -> str:
    """A pipeline build step's token: one build per attempt of the step run, whoever starts it."""
    return f"{STEP_BUILD_TOKEN_PREFIX}{step_key}:{attempt}"


def is_step_build(build: Build) -> bool:
    """A build of a pipeline's build step: its outcome moves its step run, never the tenant directly."""
    return build.idempotency_token.startswith(STEP_BUILD_TOKEN_PREFIX)


def build_tier_name(*, tenant: Tenant, purpose: str) -> str:
    """The tier whose project builds ``purpose``: an update runs its target tier's (the pending one)."""
    if purpose == BuildPurpose.UPDATE and tenant.pending_tier:
        return tenant.pending_tier
    return tenant.tier


def environment_for(*, tenant: Tenant, tier: Tier, purpose: str) -> list[EnvVar]:
    """An update's build gets the pending plan and, besides ``TIER`` (the target), ``PREVIOUS_TIER``."""
    updating = purpose == BuildPurpose.UPDATE
    return build_environment(
        tier_name=tier.name,
        tier_variables=[(v.name, v.value, v.type) for v in tier.variables.all()],
        tenant_id=tenant.pk,
        tenant_document=tenant.document,
        plan=(tenant.pending_plan or tenant.plan) if updating else tenant.plan,
        builder_config=tenant.builder_config,
        previous_tier=tenant.tier if updating else None,
    )


def build_environment_for(*, build: Build) -> list[EnvVar]:
    """The environment of an existing build, computed again (secrets are never stored unmasked)."""
    name = build_tier_name(tenant=build.tenant, purpose=build.purpose)
    tier = tier_get(name=name)
    if tier is None:
        raise BuildRejected(f"Tier {name!r} no longer exists in the tier mapping.")
    builder_check(tier=tier, builder_type=build.builder_type)  # the tier may have changed since the start
    return environment_for(tenant=build.tenant, tier=tier, purpose=build.purpose)


def history_record_build(
    *, build: Build, summary: str, details: dict[str, Any] | None = None, actor_user: User | None = None
) -> TenantHistory:
    return history_record(
        tenant=build.tenant,
        kind=HistoryKind.BUILD,
        summary=summary,
        details={"build_id": build.build_id, "purpose": build.purpose, "attempt": build.attempt, **(details or {})},
        actor_user=actor_user,
        ref_type="build",
        ref_id=build.pk,
    )


def build_create(
    *,
    tenant: Tenant,
    purpose: str,
    attempt: int,
    tier: Tier,
    environment: Sequence[EnvVar],
    event: Any = None,
    project: str = "",
    token: str = "",
) -> Build:
    """The ``Build`` row for one attempt (inside the caller's transaction; the builder runs after commit).
    A pipeline's build step names its ``project`` and its ``token`` (``step_build_token``)."""
    if not project:
        project = tier.project_for(purpose)
    return Build.objects.create(
        tenant=tenant,
        event=event,
        purpose=purpose,
        attempt=attempt,
        status=BuildStatus.PENDING_START,
        builder_type=str((tenant.builder_config or {}).get("type", "")),
        project=project,
        idempotency_token=token or idempotency_token(tenant_id=tenant.pk, purpose=purpose, attempt=attempt),
        environment=environment_masked(environment),
    )


def build_start_after_commit(*, build: Build, environment: Sequence[EnvVar] | None) -> None:
    """Start ``build`` in this process once the transaction that recorded it commits (should the process
    die first, or the start fail unexpectedly, the recovery starts it)."""
    transaction.on_commit(lambda: build_start(build_pk=build.pk, environment=environment), robust=True)


def build_start(*, build_pk: int, environment: Sequence[EnvVar] | None = None) -> Build:
    """Start a recorded build (``PENDING_START``) through its builder; a build in any other status is left
    alone, and racing callers (the task, the recovery) skip a build another one is starting. A refusal
    (``BuildRejected``, a bad environment) fails the build and the tenant; an unreachable backend leaves
    it pending with the reason, for the recovery to start again with the same token. ``environment``:
    the one computed when the build was recorded (computed again without it)."""
    with transaction.atomic():
        # Locked while the builder is called (the intent itself was committed before).
        build = (
            Build.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=build_pk, status=BuildStatus.PENDING_START)
            .select_related("tenant")
            .first()
        )
        if build is None:
            return Build.objects.get(pk=build_pk)
        try:
            builder = builder_for(build.builder_type)
            if environment is None:
                environment = build_environment_for(build=build)
            started = builder.start(build=build, environment=environment)
        except BuildUnavailable as error:
            logger.warning("build %s not started yet: %s", build.pk, error.message)
            build.status_reason = f"Not started yet: {error.message}"[:4000]
            build.last_polled_at = timezone.now()
            build.save(update_fields=["status_reason", "last_polled_at"])
        except ApplicationError as error:  # BuildRejected, or an environment no longer valid
            build_record_state(build=build, status=BuildStatus.FAILED, reason=error.message, source="start")
            build.refresh_from_db()
        else:
            build.status = BuildStatus.IN_PROGRESS
            build.status_reason = ""
            build.build_id, build.arn, build.logs_url = started.build_id, started.arn, started.logs_url[:2048]
            build.save(update_fields=["status", "status_reason", "build_id", "arn", "logs_url"])
            history_record_build(
                build=build,
                summary=f"{build.purpose.capitalize()} build #{build.attempt} started: {build.builder_type} "
                f"{build.project} → {started.build_id}",
                details={"project": build.project, "builder": build.builder_type},
            )
    return build


def build_intents_hand_out(*, now: Any) -> int:
    """Recorded builds still not started ``BUILD_START_RETRY_AFTER_SECONDS`` after they were recorded or
    last tried (the process died between commit and the builder's answer, or the backend was down): one
    start task each, with the same token. Returns how many were handed out."""
    from tenants.tasks import start_build

    threshold = now - timedelta(seconds=settings.BUILD_START_RETRY_AFTER_SECONDS)
    due = list(
        Build.objects.filter(status=BuildStatus.PENDING_START, started_at__lt=threshold)
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=threshold))
        .order_by("started_at")
        .values_list("pk", flat=True)[:500]
    )
    if due:
        logger.warning("starting %d recorded builds again with their tokens: %s", len(due), due)
        with transaction.atomic():
            Build.objects.filter(pk__in=due).update(last_polled_at=now)
            for pk in due:
                transaction.on_commit(partial(start_build.delay, build_pk=pk), robust=True)
    return len(due)


def _tenant_waits_for(build: Build, tenant: Tenant) -> bool:
    """True when ``build`` is the tenant's current attempt and the tenant is still waiting for it."""
    if is_step_build(build):
        return False
    running, _failed, _done = PURPOSE_STATUSES[build.purpose]
    return tenant.status == running and build.attempt == getattr(tenant, attempt_field(build.purpose))


def build_record_state(
    *,
    build: Build,
    status: str,
    reason: str = "",
    ended_at: Any = None,
    logs_url: str = "",
    source: str = "",
) -> Build:
    """Apply a state the builder reported (state-change event, poller, local runner).

    A terminal failure of the tenant's current build fails the tenant (no failure event will come, or it
    would be a duplicate). A success only marks the build: the tenant moves when the success event, which
    carries the post-build outputs, arrives; until then the build is flagged ``awaiting_outcome_event``.
    """
    with transaction.atomic():
        build = Build.objects.select_for_update().select_related("tenant").get(pk=build.pk)
        now = timezone.now()
        if build.status not in BUILD_OPEN_STATUSES or status in BUILD_OPEN_STATUSES:
            Build.objects.filter(pk=build.pk).update(last_polled_at=now)
            return build
        tenant = Tenant.objects.select_for_update().get(pk=build.tenant_id)
        waiting = _tenant_waits_for(build, tenant)
        build.status = status
        build.status_reason = reason[:4000]
        build.ended_at = ended_at or now
        build.last_polled_at = now
        if logs_url := https_link(logs_url, source=f"build {build.pk} logs"):
            build.logs_url = logs_url
        build.awaiting_outcome_event = status == BuildStatus.SUCCEEDED and waiting
        build.save(
            update_fields=[
                "status",
                "status_reason",
                "ended_at",
                "last_polled_at",
                "logs_url",
                "awaiting_outcome_event",
            ]
        )
        label = BuildStatus(status).label.lower()
        history_record_build(
            build=build,
            summary=f"Build {build.build_id or build.pk} {label}"
            + (f": {reason}" if reason else "")
            + ("; waiting for its outcome event" if build.awaiting_outcome_event else ""),
            details={"status": status, "reason": reason, "source": source},
        )
        if status in BUILD_FAILURE_STATUSES and is_step_build(build):
            step_build_failed(build=build, reason=f"Build {label}" + (f": {reason}" if reason else ""))
        if status in BUILD_FAILURE_STATUSES and waiting:
            _running, failed, _done = PURPOSE_STATUSES[build.purpose]
            failure = f"{build.purpose.capitalize()} build {label}" + (f": {reason}" if reason else "")
            cause = TransitionCause(build_pk=build.pk, build_id=build.build_id, source=source)
            if build.purpose in OPERATION_PURPOSES:
                operation_finish(
                    tenant_id=tenant.pk, operation=build.purpose, succeeded=False, error=failure, cause=cause
                )
            else:
                tenant_transition(tenant=tenant, to=failed, reason=failure, cause=cause)
    return build


def build_apply_state(*, state: BuildState, source: str) -> Build | None:
    build = Build.objects.filter(Q(build_id=state.build_id) | Q(arn=state.build_id)).first()
    if build is None:
        return None
    return build_record_state(
        build=build,
        status=state.status,
        reason=state.reason,
        ended_at=state.ended_at,
        logs_url=state.logs_url,
        source=source,
    )


def builds_poll(*, now: Any = None) -> dict[str, int]:
    """Ask each builder about builds in progress for longer than ``BUILD_POLL_AFTER_SECONDS``."""
    now = now or timezone.now()
    threshold = now - timedelta(seconds=settings.BUILD_POLL_AFTER_SECONDS)
    due = list(
        Build.objects.filter(status=BuildStatus.IN_PROGRESS, started_at__lt=threshold)
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=threshold))
        .select_related("tenant")
        .order_by("started_at")[:500]
    )
    counts = {"polled": 0, "updated": 0}
    by_type: dict[str, list[Build]] = defaultdict(list)
    for build in due:
        by_type[build.builder_type].append(build)
    for builder_type, builds in by_type.items():
        try:
            states = builder_for(builder_type).poll(builds=builds)
        except BuildRejected:
            logger.warning("cannot poll %d builds of unknown builder type %r", len(builds), builder_type)
            continue
        Build.objects.filter(pk__in=[build.pk for build in builds]).update(last_polled_at=now)
        counts["polled"] += len(builds)
        for state in states:
            if state.status != BuildStatus.IN_PROGRESS and build_apply_state(state=state, source="poller"):
                counts["updated"] += 1
    return counts


@dataclass(frozen=True)
class AttemptPlan:
    """What one attempt runs: the tier, its project, the builder and the environment (secrets unresolved)."""

    tier: Tier
    project: str
    builder_type: str
    environment: list[EnvVar]


def attempt_plan(*, tenant: Tenant, purpose: str, tier: Tier | None = None) -> AttemptPlan:
    """Resolve the tier (``tier``: the tenant's, with its variables, when the caller has read it already), the
    project, the builder (checked against the tier's allow-list and the deployment) and the environment of an
    attempt for ``tenant`` (saved or not); ``ApplicationError`` with the reason the attempt would fail. Reads
    only: the real attempt (``tenant_attempt_start``) and the dry run share it."""
    name = build_tier_name(tenant=tenant, purpose=purpose)
    if tier is None or tier.name != name:
        tier = tier_get(name=name)
    if tier is None:
        raise ApplicationError(f"Unknown tier {name!r}: it is not in the tier mapping.")
    project = tier.project_for(purpose)
    if not project:
        raise ApplicationError(f"Tier {tier.name!r} has no {purpose} project.")
    builder_type = builder_type_of(tenant.builder_config)
    builder_check(tier=tier, builder_type=builder_type)
    environment = environment_for(tenant=tenant, tier=tier, purpose=purpose)
    return AttemptPlan(tier=tier, project=project, builder_type=builder_type, environment=environment)


@dataclass(frozen=True)
class ActionResult:
    """What a staff action did: ``changed`` is False for "already done" (a message, not an error)."""

    tenant: Tenant
    changed: bool
    message: str
    build: Build | None = None


def tenant_attempt_start(
    *,
    tenant: Tenant,
    purpose: str,
    event: Any,
    actor_user: User | None,
    tier: Tier | None = None,
) -> tuple[Build | None, list[EnvVar] | None]:
    """One new attempt (tenant locked by the caller): move to the running status, then record its build
    (``attempt_build_record``; ``tier``: the tenant's, with its variables, when the caller has read it already)."""
    cause = attempt_begin(tenant=tenant, purpose=purpose, event=event, actor_user=actor_user)
    return attempt_build_record(
        tenant=tenant, purpose=purpose, event=event, actor_user=actor_user, cause=cause, tier=tier
    )


def attempt_begin(*, tenant: Tenant, purpose: str, event: Any, actor_user: User | None) -> TransitionCause:
    """Count a new attempt of ``purpose`` (tenant locked by the caller) and move to its running status.
    Returns the cause recorded with the move (the attempt's later moves carry it too)."""
    running, _failed, _done = PURPOSE_STATUSES[purpose]
    field = attempt_field(purpose)
    attempt = getattr(tenant, field) + 1
    Tenant.objects.filter(pk=tenant.pk).update(**{field: attempt})
    setattr(tenant, field, attempt)
    cause = TransitionCause(event_pk=event.pk if event else None, details={"attempt": attempt})
    tenant_transition(
        tenant=tenant, to=running, reason=f"{purpose} attempt {attempt}", actor_user=actor_user, cause=cause
    )
    return cause


def attempt_build_record(
    *,
    tenant: Tenant,
    purpose: str,
    event: Any,
    actor_user: User | None,
    cause: TransitionCause,
    tier: Tier | None = None,
) -> tuple[Build | None, list[EnvVar] | None]:
    """Resolve the tier, builder and environment of the current attempt and record its ``Build``
    (``PENDING_START``: the caller starts it after commit); any problem fails the attempt with its reason."""
    _running, failed, _done = PURPOSE_STATUSES[purpose]
    attempt = getattr(tenant, attempt_field(purpose))
    try:
        plan = attempt_plan(tenant=tenant, purpose=purpose, tier=tier)
    except ApplicationError as error:
        if purpose in OPERATION_PURPOSES:
            operation_finish(tenant_id=tenant.pk, operation=purpose, succeeded=False, error=error.message, cause=cause)
        else:
            tenant_transition(tenant=tenant, to=failed, reason=error.message, actor_user=actor_user, cause=cause)
        return None, None
    build = build_create(
        tenant=tenant,
        purpose=purpose,
        attempt=attempt,
        tier=plan.tier,
        environment=plan.environment,
        event=event,
    )
    return build, plan.environment


def tenant_staff_attempt(
    *, tenant: Tenant, purpose: str, request_summary: str, actor_user: User | None
) -> ActionResult:
    """A staff-requested attempt (retry provisioning, deprovision): recorded with the user, then started
    once that is committed (call it outside any transaction)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        history_record(
            tenant=tenant,
            kind=HistoryKind.STAFF_ACTION,
            summary=request_summary,
            details={"from": tenant.status},
            actor_user=actor_user,
        )
        build, environment = tenant_attempt_start(tenant=tenant, purpose=purpose, event=None, actor_user=actor_user)
    if build is not None:
        build = build_start(build_pk=build.pk, environment=environment)
    tenant.refresh_from_db()
    attempt = getattr(tenant, attempt_field(purpose))
    if build is not None and build.status == BuildStatus.IN_PROGRESS:
        outcome = f"started ({build.build_id})."
    elif build is not None and build.status == BuildStatus.PENDING_START:
        outcome = f"recorded; it starts as soon as its builder answers ({build.status_reason})."
    else:
        outcome = f"failed: {tenant.status_reason}"
    return ActionResult(
        tenant=tenant, changed=True, message=f"{tenant.key}: {purpose}ing attempt {attempt} {outcome}", build=build
    )


def tenant_event_attempt_start(*, tenant: Tenant, purpose: str, event: Any, tier: Tier | None = None) -> Build | None:
    """An event's attempt (inside the handler's transaction): recorded now, its build started once that
    transaction has committed. None when no build was recorded (the tenant's status says why)."""
    build, environment = tenant_attempt_start(tenant=tenant, purpose=purpose, event=event, actor_user=None, tier=tier)
    if build is not None:
        build_start_after_commit(build=build, environment=environment)
    return build


def event_handled_result(*, tenant: Tenant, build: Build | None) -> dict[str, Any]:
    """What a lifecycle handler stores on its event: the tenant's status and the build it started, if any."""
    return {
        "tenant": tenant.pk,
        "status": tenant.status,
        "reason": tenant.status_reason,
        "build": build.idempotency_token if build else None,
    }
