"""Staff actions on runs: approve or reject a waiting approval step, redrive a failed run from its failed
step, cancel a run. The API and the admin call these; each is permission-checked here, idempotent ("already
approved" is a message, not an error) and written to the tenant's timeline with the staff user."""

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from orchestrator.errors import ApplicationError, ConflictError, NotFoundError
from orchestrator.staff import PERM_APPROVE_STEP, PERM_MANAGE_RUN
from tenants.models import (
    RUN_LIVE_STATUSES,
    STEP_OPEN_STATUSES,
    HistoryKind,
    PipelineRun,
    PipelineRunStatus,
    StepDecision,
    StepRun,
    StepRunStatus,
)
from tenants.pipelines.listeners import PipelineRunRedriven, run_redriven_notify
from tenants.pipelines.registry import step_kind
from tenants.services.history import history_record
from tenants.services.pipeline_runs import advance_enqueue, run_finish, run_lock, step_run_complete


class ActionForbidden(ApplicationError):
    status_code = 403
    code = "permission_denied"


@dataclass(frozen=True)
class RunActionResult:
    """What a staff action did: ``changed`` is False for "already done"."""

    run: PipelineRun
    changed: bool
    message: str


def _require(actor_user: User | AnonymousUser | None, permission: str) -> None:
    if actor_user is None or not actor_user.has_perm(permission):
        raise ActionForbidden(f"You need the permission {permission} for this.")


def _record(*, run: PipelineRun, summary: str, actor_user: User, details: dict) -> None:
    history_record(
        tenant=run.tenant,
        kind=HistoryKind.STAFF_ACTION,
        summary=summary,
        details={"run": run.pk, "operation": run.operation, **details},
        actor_user=actor_user,
        ref_type="pipeline_run",
        ref_id=run.pk,
    )


def step_approve(*, step_run_id: int, actor_user: User, comment: str = "") -> RunActionResult:
    return _step_decide(step_run_id=step_run_id, actor_user=actor_user, comment=comment, approve=True)


def step_reject(*, step_run_id: int, actor_user: User, comment: str = "") -> RunActionResult:
    return _step_decide(step_run_id=step_run_id, actor_user=actor_user, comment=comment, approve=False)


def _step_decide(*, step_run_id: int, actor_user: User, comment: str, approve: bool) -> RunActionResult:
    _require(actor_user, PERM_APPROVE_STEP)
    decision = StepDecision.APPROVED if approve else StepDecision.REJECTED
    comment = comment.strip()[:2000]
    with transaction.atomic():
        run_id = StepRun.objects.filter(pk=step_run_id).values_list("run_id", flat=True).first()
        if run_id is None:
            raise NotFoundError(f"No pipeline step run {step_run_id}.")
        run = run_lock(run_id=run_id)
        step = StepRun.objects.select_for_update().get(pk=step_run_id)
        if not step_kind(step.kind).needs_decision:
            raise ConflictError(f"Step {step.name} is a {step.kind} step; only approval steps are decided.")
        if step.status != StepRunStatus.WAITING:
            if step.decision == decision:
                return RunActionResult(run=run, changed=False, message=f"Step {step.name} is already {decision}.")
            raise ConflictError(f"Step {step.name} is {step.get_status_display().lower()}, not waiting for a decision.")
        step.decision, step.decided_by, step.decision_comment = decision, actor_user, comment
        step.decided_at = timezone.now()
        step.save(update_fields=["decision", "decided_by", "decision_comment", "decided_at"])
        _record(
            run=run,
            summary=f"Step {step.name} {decision}" + (f": {comment}" if comment else ""),
            actor_user=actor_user,
            details={"step": step.pk, "decision": decision, "comment": comment},
        )
        step_run_complete(
            step_run_id=step.pk,
            attempt=step.attempts,
            succeeded=approve,
            outputs={"approved_by": actor_user.get_username()} if approve else {},
            error=f"Rejected by {actor_user.get_username()}" + (f": {comment}" if comment else ""),
            retry=False,
        )
    run.refresh_from_db()
    return RunActionResult(run=run, changed=True, message=f"Step {step.name} {decision}.")


def pipeline_run_redrive(*, run_id: int, actor_user: User) -> RunActionResult:
    """Run a failed run again from its failed step; what the steps before it produced is kept."""
    _require(actor_user, PERM_MANAGE_RUN)
    with transaction.atomic():
        run = run_lock(run_id=run_id)
        if run.status in RUN_LIVE_STATUSES:
            return RunActionResult(run=run, changed=False, message=f"Run {run.pk} is already running.")
        if run.status != PipelineRunStatus.FAILED:
            raise ConflictError(f"Run {run.pk} is {run.get_status_display().lower()}; only a failed run is redriven.")
        failed = (
            run.step_runs.select_for_update()
            .filter(status=StepRunStatus.FAILED, continue_on_failure=False)
            .order_by("position")
            .first()
        )
        if failed is None:
            raise ConflictError(f"Run {run.pk} has no failed step to redrive from.")
        live = PipelineRun.objects.filter(tenant=run.tenant, status__in=RUN_LIVE_STATUSES).first()
        if live is not None:
            raise ConflictError(f"Tenant {run.tenant.key} has another run under way ({live.pk}).")
        failed.status, failed.next_attempt_at, failed.finished_at = StepRunStatus.PENDING, None, None
        failed.attempts_before_round = failed.attempts  # a new round of attempts
        failed.save(update_fields=["status", "next_attempt_at", "finished_at", "attempts_before_round"])
        run.status, run.status_reason, run.finished_at = PipelineRunStatus.RUNNING, "", None
        run.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
        _record(
            run=run,
            summary=f"{run.operation.capitalize()} pipeline redriven from step {failed.name}",
            actor_user=actor_user,
            details={"step": failed.pk},
        )
        run_redriven_notify(
            PipelineRunRedriven(tenant_id=run.tenant_id, operation=run.operation, run_id=run.pk, actor_user=actor_user)
        )
        advance_enqueue(run_id=run.pk)
    return RunActionResult(run=run, changed=True, message=f"Run {run.pk} redriven from step {failed.name}.")


def pipeline_run_cancel(*, run_id: int, actor_user: User) -> RunActionResult:
    """Stop a run: its open and pending steps are cancelled (a build already running is left to end on its
    own; its outcome then changes nothing). A live run ends as failed for its operation's listeners."""
    _require(actor_user, PERM_MANAGE_RUN)
    with transaction.atomic():
        run = run_lock(run_id=run_id)
        if run.status == PipelineRunStatus.CANCELLED:
            return RunActionResult(run=run, changed=False, message=f"Run {run.pk} is already cancelled.")
        if run.status == PipelineRunStatus.SUCCEEDED:
            raise ConflictError(f"Run {run.pk} succeeded; there is nothing to cancel.")
        run.step_runs.filter(status__in={*STEP_OPEN_STATUSES, StepRunStatus.PENDING}).update(
            status=StepRunStatus.CANCELLED, finished_at=timezone.now(), deadline_at=None
        )
        _record(run=run, summary=f"{run.operation.capitalize()} pipeline cancelled", actor_user=actor_user, details={})
        reason = f"Cancelled by {actor_user.get_username()}"
        if run.status in RUN_LIVE_STATUSES:
            run_finish(run=run, succeeded=False, error=reason, cancelled=True, actor_user=actor_user)
        else:  # a failed run: its listeners already heard that it ended
            run.status, run.status_reason = PipelineRunStatus.CANCELLED, reason
            run.save(update_fields=["status", "status_reason", "updated_at"])
    return RunActionResult(run=run, changed=True, message=f"Run {run.pk} cancelled.")
