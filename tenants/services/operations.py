"""The operations on an active tenant: update (a new plan, maybe another tier), suspend, resume; from their
events (``TENANT_UPDATE``, ``TENANT_SUSPEND``, ``TENANT_RESUME``) and as staff actions, plus the roll back of
a failed update.

Each one moves the tenant to its running status (``UPDATING``, ``SUSPENDING``, ``RESUMING``), counts an
attempt, then starts its work through ``_operation_work_start``; the work ends in
``tenants.services.operation_outcomes.operation_finish``. The work today is the tier's build for the
operation (``Tier.update_project`` of the target tier, ``suspend_project``, ``resume_project``; started like
any build: recorded ``PENDING_START`` with its idempotency token, its outcome event or CodeBuild state
change finishing it), or nothing, an immediate success, when the tier has no such project.

A failed operation is retried by the same request (event or staff action) on its failed status; a failed
update keeps its pending plan for that, or is rolled back (``tenant_update_roll_back``: the tenant is
``ACTIVE`` again on the plan it never left). Requests for a tenant already doing or done with what they ask
change nothing; any other status refuses them (recorded on the timeline).
"""

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import transaction

from events.registry import EventRejected
from orchestrator.errors import ApplicationError, ConflictError
from tenants.models import Build, BuildPurpose, HistoryKind, Tenant, TenantStatus
from tenants.selectors import tier_get
from tenants.services.build_policy import builder_refusal
from tenants.services.builds import (
    ActionResult,
    attempt_begin,
    attempt_build_record,
    build_start_after_commit,
    build_tier_name,
)
from tenants.services.history import event_already_applied, history_record, history_record_event
from tenants.services.lifecycle import TransitionCause, tenant_transition
from tenants.services.operation_outcomes import operation_finish

if TYPE_CHECKING:
    from events.models import ReceivedEvent

# Operation → statuses it starts from (its failed status: a retry), and statuses that already satisfy it.
STARTS_FROM: dict[str, frozenset[str]] = {
    BuildPurpose.UPDATE: frozenset({TenantStatus.ACTIVE, TenantStatus.UPDATE_FAILED}),
    BuildPurpose.SUSPEND: frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPEND_FAILED}),
    BuildPurpose.RESUME: frozenset({TenantStatus.SUSPENDED, TenantStatus.RESUME_FAILED}),
}
ALREADY: dict[str, frozenset[str]] = {
    BuildPurpose.UPDATE: frozenset({TenantStatus.UPDATING}),
    BuildPurpose.SUSPEND: frozenset({TenantStatus.SUSPENDING, TenantStatus.SUSPENDED}),
    BuildPurpose.RESUME: frozenset({TenantStatus.RESUMING, TenantStatus.ACTIVE}),
}


class OperationRefused(ConflictError):
    code = "operation_refused"


class InvalidPlan(ApplicationError):
    code = "invalid_plan"


def _operation_work_start(
    *,
    tenant: Tenant,
    operation: str,
    event: "ReceivedEvent | None",
    actor_user: User | None,
    cause: TransitionCause,
) -> Build | None:
    """Start the work of ``operation`` for ``tenant`` (locked, already in the running status, its attempt
    counted), in the caller's transaction; the work reports its end to ``operation_finish``.

    The one seam where a pipeline run takes over. Until then: the tier's build for the operation (the
    target tier's for an update), started once the transaction commits; or, when the tier defines no
    project for it, an immediate success.
    """
    tier = tier_get(name=build_tier_name(tenant=tenant, purpose=operation))
    if tier is not None and not tier.project_for(operation):
        details = {**cause.details, "work": f"none: tier {tier.name} has no {operation} project"}
        operation_finish(
            tenant_id=tenant.pk,
            operation=operation,
            succeeded=True,
            cause=TransitionCause(event_pk=cause.event_pk, details=details),
        )
        return None
    build, environment = attempt_build_record(
        tenant=tenant, purpose=operation, event=event, actor_user=actor_user, cause=cause
    )
    if build is not None:
        build_start_after_commit(build=build, environment=environment)
    return build


def plan_problem(*, plan: dict[str, Any], builder_config: dict[str, Any]) -> str:
    """Why ``plan`` cannot be a tenant's new plan ("" when it can): its tier must be in the tier mapping and
    allow the tenant's builder."""
    tier_name = str(plan.get("tier") or "")
    tier = tier_get(name=tier_name)
    if tier is None:
        return f"Unknown tier {tier_name!r}: it is not in the tier mapping."
    return builder_refusal(tier=tier, builder_config=builder_config)


def _begin(
    *,
    tenant: Tenant,
    operation: str,
    plan: dict[str, Any] | None,
    event: "ReceivedEvent | None",
    actor_user: User | None,
) -> Build | None:
    """Start ``operation`` on ``tenant`` (locked, in a status ``STARTS_FROM`` allows)."""
    if operation == BuildPurpose.UPDATE and plan is not None:
        tenant.pending_plan, tenant.pending_tier = plan, str(plan.get("tier") or tenant.tier)
        tenant.save(update_fields=["pending_plan", "pending_tier"])
    cause = attempt_begin(tenant=tenant, purpose=operation, event=event, actor_user=actor_user)
    return _operation_work_start(tenant=tenant, operation=operation, event=event, actor_user=actor_user, cause=cause)


def _refusal(*, tenant: Tenant, operation: str, plan: dict[str, Any] | None) -> ApplicationError | None:
    """Why ``operation`` cannot start on ``tenant`` now (None when it can): the status (409) or the plan (400)."""
    if tenant.status not in STARTS_FROM[operation]:
        return _status_refusal(tenant=tenant, operation=operation, expected=STARTS_FROM[operation])
    if operation == BuildPurpose.UPDATE:
        if plan is None and not tenant.pending_plan:
            message = "Update refused: no plan given and no pending plan to retry."
            return InvalidPlan(message, fields={"planConfig": [message]})
        if plan is not None and (problem := plan_problem(plan=plan, builder_config=tenant.builder_config)):
            return InvalidPlan(f"Update refused: {problem}", fields={"planConfig.tier": [problem]})
    return None


def _status_refusal(*, tenant: Tenant, operation: str, expected: frozenset[str]) -> OperationRefused:
    labels = " or ".join(TenantStatus(status).label for status in sorted(expected))
    message = (
        f"{operation.capitalize()} refused: tenant {tenant.pk} is {TenantStatus(tenant.status).label}, not {labels}."
    )
    return OperationRefused(message, fields={"status": [message]})


def _already(*, tenant: Tenant, operation: str, plan: dict[str, Any] | None) -> bool:
    """True when the tenant is already doing or done with what is asked (an update: the same plan)."""
    if tenant.status not in ALREADY[operation]:
        return False
    return operation != BuildPurpose.UPDATE or plan is None or plan == tenant.pending_plan


def operation_from_event(*, event: "ReceivedEvent", detail: dict[str, Any], operation: str) -> dict[str, Any]:
    """Handle ``TENANT_UPDATE`` / ``TENANT_SUSPEND`` / ``TENANT_RESUME`` (idempotent per event)."""
    tenant_id = str(detail["tenant"]["id"])
    plan = dict(detail["planConfig"]) if operation == BuildPurpose.UPDATE else None
    refused = ""
    build: Build | None = None
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        if tenant is None:
            raise EventRejected(f"{event.detail_type} for unknown tenant {tenant_id}.")
        if event_already_applied(tenant=tenant, event=event):
            build = Build.objects.filter(event=event, purpose=operation).first()
        elif _already(tenant=tenant, operation=operation, plan=plan):
            history_record_event(
                tenant=tenant,
                event=event,
                summary=f"{event.detail_type}: tenant is already {TenantStatus(tenant.status).label}; no change",
            )
        elif refusal := _refusal(tenant=tenant, operation=operation, plan=plan):
            refused = refusal.message
            history_record_event(
                tenant=tenant, event=event, summary=f"{event.detail_type}: {refused}", details={"refused": True}
            )
        else:
            summary = f"{event.detail_type} received" + (f" (plan {_plan_label(plan)})" if plan else "")
            history_record_event(tenant=tenant, event=event, summary=summary)
            build = _begin(tenant=tenant, operation=operation, plan=plan, event=event, actor_user=None)
    if refused:
        raise EventRejected(refused)
    tenant.refresh_from_db(fields=["status", "status_reason", "version"])
    return {
        "tenant": tenant.pk,
        "status": tenant.status,
        "reason": tenant.status_reason,
        "build": build.idempotency_token if build else None,
    }


def _plan_label(plan: dict[str, Any] | None) -> str:
    plan = plan or {}
    return f"{plan.get('name') or plan.get('id') or '?'}, tier {plan.get('tier', '?')}"


def _staff_operation(
    *, tenant: Tenant, operation: str, actor_user: User | None, plan: dict[str, Any] | None = None
) -> ActionResult:
    """A staff-requested operation: recorded with the user; "already" is a message, a refusal a 409 (an
    unusable plan a 400), both recorded on the timeline."""
    build: Build | None = None
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if _already(tenant=tenant, operation=operation, plan=plan):
            message = f"{tenant.key} is already {TenantStatus(tenant.status).label.lower()}."
            return ActionResult(tenant=tenant, changed=False, message=message)
        refusal = _refusal(tenant=tenant, operation=operation, plan=plan)
        if refusal is None:
            history_record(
                tenant=tenant,
                kind=HistoryKind.STAFF_ACTION,
                summary=f"{operation.capitalize()} requested" + (f" (plan {_plan_label(plan)})" if plan else ""),
                details={"from": tenant.status, "operation": operation, "plan": plan},
                actor_user=actor_user,
            )
            build = _begin(tenant=tenant, operation=operation, plan=plan, event=None, actor_user=actor_user)
    if refusal is not None:
        _refuse(tenant=tenant, operation=operation, error=refusal, actor_user=actor_user)
    tenant.refresh_from_db()
    if build is not None:
        outcome = f"its {operation} build is recorded and starts now ({build.idempotency_token})."
    else:
        outcome = f"now {TenantStatus(tenant.status).label.lower()}" + (
            f": {tenant.status_reason}" if tenant.status_reason else "."
        )
    return ActionResult(tenant=tenant, changed=True, message=f"{tenant.key}: {operation} {outcome}", build=build)


def _refuse(*, tenant: Tenant, operation: str, error: ApplicationError, actor_user: User | None) -> None:
    """Record a refused staff operation on the timeline (after the refused attempt's transaction) and raise it."""
    history_record(
        tenant=tenant,
        kind=HistoryKind.TRANSITION_REFUSED,
        summary=error.message,
        details={"from": tenant.status, "operation": operation, "refused": True},
        actor_user=actor_user,
    )
    raise error


def tenant_update(*, tenant: Tenant, actor_user: User | None, plan: dict[str, Any] | None = None) -> ActionResult:
    """Staff action: update an active tenant to ``plan`` (its ``tier`` may be another), or retry a failed
    update (``plan`` None: the pending one)."""
    return _staff_operation(tenant=tenant, operation=BuildPurpose.UPDATE, actor_user=actor_user, plan=plan)


def tenant_suspend(*, tenant: Tenant, actor_user: User | None) -> ActionResult:
    """Staff action: suspend an active tenant, or retry a failed suspension."""
    return _staff_operation(tenant=tenant, operation=BuildPurpose.SUSPEND, actor_user=actor_user)


def tenant_resume(*, tenant: Tenant, actor_user: User | None) -> ActionResult:
    """Staff action: resume a suspended tenant, or retry a failed resumption."""
    return _staff_operation(tenant=tenant, operation=BuildPurpose.RESUME, actor_user=actor_user)


def tenant_update_roll_back(*, tenant: Tenant, actor_user: User | None) -> ActionResult:
    """Staff action: give up a failed update. The pending plan is dropped and the tenant is ``ACTIVE`` again
    on the plan it kept all along (nothing is built: the update's build never replaced it)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if tenant.status == TenantStatus.ACTIVE and not tenant.pending_plan:
            return ActionResult(tenant=tenant, changed=False, message=f"{tenant.key} has no update to roll back.")
        refused = tenant.status != TenantStatus.UPDATE_FAILED
        if not refused:
            dropped = {"plan": tenant.pending_plan, "tier": tenant.pending_tier}
            history_record(
                tenant=tenant,
                kind=HistoryKind.STAFF_ACTION,
                summary=f"Update rolled back: plan {_plan_label(tenant.pending_plan)} dropped",
                details={"from": tenant.status, "dropped": dropped},
                actor_user=actor_user,
            )
            tenant.pending_plan, tenant.pending_tier = {}, ""
            tenant.save(update_fields=["pending_plan", "pending_tier"])
            tenant_transition(
                tenant=tenant,
                to=TenantStatus.ACTIVE,
                reason=f"update rolled back to plan {_plan_label(tenant.plan)}",
                actor_user=actor_user,
                cause=TransitionCause(source="rollback", details={"rolled_back": True}),
            )
    if refused:
        error = _status_refusal(tenant=tenant, operation="roll back", expected=frozenset({TenantStatus.UPDATE_FAILED}))
        _refuse(tenant=tenant, operation="roll back", error=error, actor_user=actor_user)
    tenant.refresh_from_db()
    return ActionResult(tenant=tenant, changed=True, message=f"{tenant.key}: update rolled back; active again.")
