"""The pipeline engine: start a run, advance it step by step, complete steps, finish the run.

How a run moves: ``pipeline_run_start`` copies the tier's steps into step runs and enqueues the advance
task (``tenants.advance_pipeline_run``, after commit). ``pipeline_run_advance`` locks the tenant, the run
and its steps (in that order, everywhere), starts the first step that is not done through its kind
(``tenants.pipelines.registry``) and goes on while steps finish in the call; a step that waits (a build, a
delivery, an approval, a timer) is finished later by ``step_run_complete``, which enqueues the advance
again. A redelivered advance task finds the step already started (under the lock) and starts nothing: a
step's start is written in the transaction that records it, with the idempotency key of its attempt.

Failures: a failed attempt is retried after ``backoff_seconds x 2^(n-1)`` while the round has attempts
left; then the step fails, and the run with it unless ``continue_on_failure``. The sweep
(``pipeline_runs_sweep``) fails steps past their deadline and re-enqueues advances a lost task left behind.
When a run ends, the listeners of its operation hear it (``tenants.pipelines.listeners``).
"""

import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from orchestrator.errors import ApplicationError, NotFoundError
from tenants.models import (
    RUN_LIVE_STATUSES,
    STEP_OPEN_STATUSES,
    HistoryKind,
    PipelineRun,
    PipelineRunStatus,
    PipelineStep,
    StepRun,
    StepRunStatus,
    Tenant,
    TenantHistory,
)
from tenants.pipelines.listeners import PipelineRunFinished, run_finished_notify
from tenants.pipelines.registry import StepContext, StepDone, StepFailed, step_kind
from tenants.services.history import history_record

logger = logging.getLogger(__name__)

# Steps after which the run goes on.
_PASSED = frozenset({StepRunStatus.SUCCEEDED})
# A stalled run (its advance task lost) is advanced again by the sweep after this long without change.
STALLED_AFTER = timedelta(seconds=60)


def history_record_run(
    *, run: PipelineRun, summary: str, details: dict[str, Any] | None = None, actor_user: User | None = None
) -> TenantHistory:
    return history_record(
        tenant=run.tenant,
        kind=HistoryKind.PIPELINE,
        summary=summary,
        details={"run": run.pk, "operation": run.operation, **(details or {})},
        actor_user=actor_user,
        ref_type="pipeline_run",
        ref_id=run.pk,
    )


def advance_enqueue(*, run_id: int, countdown: float = 0) -> None:
    """Advance the run in a task once the current transaction commits."""
    from tenants.tasks import advance_pipeline_run

    transaction.on_commit(
        partial(advance_pipeline_run.apply_async, kwargs={"run_id": run_id}, countdown=countdown), robust=True
    )


def run_lock(*, run_id: int) -> PipelineRun:
    """The run, its tenant locked first, then the run (the lock order of every tenant writer)."""
    tenant_id = PipelineRun.objects.filter(pk=run_id).values_list("tenant_id", flat=True).first()
    if tenant_id is None:
        raise NotFoundError(f"No pipeline run {run_id}.")
    tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
    run = PipelineRun.objects.select_for_update().get(pk=run_id)
    run.tenant = tenant
    return run


def pipeline_run_start(
    *,
    tenant_id: str,
    operation: str,
    context: dict[str, Any],
    triggered_by: str,
    actor_user: User | None = None,
) -> PipelineRun | None:
    """Start a run of the tenant's tier's pipeline for ``operation``; None when the tier has no steps for it
    (the caller keeps its own path). A live run of the tenant refuses a second one (``ConflictError``)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        steps = list(PipelineStep.objects.filter(tier__name=tenant.tier, operation=operation).order_by("position"))
        if not steps:
            return None
        live = PipelineRun.objects.filter(tenant=tenant, status__in=RUN_LIVE_STATUSES).first()
        if live is not None:
            raise ApplicationError(
                f"Tenant {tenant.key} already has a {live.operation} run under way ({live.pk}).",
                code="run_under_way",
                status_code=409,
            )
        run = PipelineRun.objects.create(
            tenant=tenant,
            operation=operation,
            tier_name=tenant.tier,
            status=PipelineRunStatus.RUNNING,
            context=context,
            triggered_by=triggered_by[:150],
            started_at=timezone.now(),
        )
        StepRun.objects.bulk_create(
            StepRun(
                run=run,
                position=step.position,
                name=step.name,
                kind=step.kind,
                config=step.config,
                timeout_seconds=step.timeout_seconds,
                max_attempts=step.max_attempts,
                backoff_seconds=step.backoff_seconds,
                continue_on_failure=step.continue_on_failure,
                key=f"{run.pk}:{step.position}",
            )
            for step in steps
        )
        history_record_run(
            run=run,
            summary=f"{operation.capitalize()} pipeline started ({len(steps)} steps: "
            f"{', '.join(step.name for step in steps)})",
            details={"triggered_by": run.triggered_by},
            actor_user=actor_user,
        )
        advance_enqueue(run_id=run.pk)
    return run


def pipeline_run_advance(*, run_id: int) -> PipelineRun:
    """Start the run's next step (and the ones after it while they finish at once); finish the run when
    every step is done. Safe to call any number of times."""
    with transaction.atomic():
        run = run_lock(run_id=run_id)
        if run.status not in RUN_LIVE_STATUSES:
            return run
        now = timezone.now()
        steps = list(run.step_runs.select_for_update().order_by("position"))
        for step in steps:
            if step.status in _PASSED or (step.status == StepRunStatus.FAILED and step.continue_on_failure):
                continue
            if step.status in STEP_OPEN_STATUSES:
                return _run_status_follow(run=run, step=step)
            if step.status != StepRunStatus.PENDING:  # a failed step stops the run (it already ended)
                return run
            if step.next_attempt_at is not None and step.next_attempt_at > now:
                return run  # a retry's countdown task (or the sweep) comes back for it
            if not _step_start(run=run, step=step, steps=steps, now=now):
                return run
        run_finish(run=run, succeeded=True)
    return run


def _run_status_follow(*, run: PipelineRun, step: StepRun) -> PipelineRun:
    """The run shows WAITING while its current step waits for a person, RUNNING otherwise."""
    status = PipelineRunStatus.WAITING if step.status == StepRunStatus.WAITING else PipelineRunStatus.RUNNING
    if run.status != status:
        run.status = status
        run.save(update_fields=["status", "updated_at"])
    return run


def run_outputs(steps: list[StepRun], *, before: int) -> dict[str, Any]:
    """What the succeeded steps before position ``before`` produced (later steps win on a name clash)."""
    outputs: dict[str, Any] = {}
    for step in steps:
        if step.position < before and step.status == StepRunStatus.SUCCEEDED:
            outputs.update(step.outputs or {})
    return outputs


def _step_start(*, run: PipelineRun, step: StepRun, steps: list[StepRun], now: datetime) -> bool:
    """Start one attempt of ``step``; True when it finished at once and the run goes on."""
    step.attempts += 1
    step.status = StepRunStatus.RUNNING
    step.started_at = step.started_at or now
    step.finished_at = None
    step.deadline_at = now + timedelta(seconds=step.timeout_seconds)
    step.next_attempt_at = None
    step.error = ""
    context = StepContext(step_run=step, run=run, tenant=run.tenant, outputs=run_outputs(steps, before=step.position))
    try:
        started = step_kind(step.kind).start(context=context)
    except ApplicationError as error:
        started = StepFailed(error=error.message)
    step.save()
    history_record_run(
        run=run,
        summary=f"Step {step.name} ({step.kind}) attempt {step.attempts} started",
        details={"step": step.pk, "position": step.position},
    )
    if isinstance(started, StepDone):
        _step_succeed(run=run, step=step, outputs=started.outputs)
        return True
    if isinstance(started, StepFailed):
        return _step_fail(run=run, step=step, error=started.error, now=now)
    if started.approval:
        step.status = StepRunStatus.WAITING
        step.save(update_fields=["status"])
    _run_status_follow(run=run, step=step)
    return False


def _step_succeed(*, run: PipelineRun, step: StepRun, outputs: dict[str, Any]) -> None:
    step.status = StepRunStatus.SUCCEEDED
    step.outputs = outputs
    step.finished_at = timezone.now()
    step.deadline_at = None
    step.save(update_fields=["status", "outputs", "finished_at", "deadline_at"])
    history_record_run(run=run, summary=f"Step {step.name} succeeded", details={"step": step.pk})


def _step_fail(*, run: PipelineRun, step: StepRun, error: str, now: datetime, retry: bool = True) -> bool:
    """Record a failed attempt: retry it later, go on without it, or fail the run. True: the run goes on now."""
    step.error = error[:4000]
    step.deadline_at = None
    if retry and step.attempts - step.attempts_before_round < step.max_attempts:
        delay = step.backoff_seconds * 2 ** (step.attempts - step.attempts_before_round - 1)
        step.status = StepRunStatus.PENDING
        step.next_attempt_at = now + timedelta(seconds=delay)
        step.save(update_fields=["status", "error", "deadline_at", "next_attempt_at"])
        history_record_run(
            run=run, summary=f"Step {step.name} attempt {step.attempts} failed: {error}; retrying in {delay}s"
        )
        advance_enqueue(run_id=run.pk, countdown=delay)
        return False
    step.status = StepRunStatus.FAILED
    step.finished_at = now
    step.save(update_fields=["status", "error", "deadline_at", "finished_at"])
    if step.continue_on_failure:
        history_record_run(run=run, summary=f"Step {step.name} failed (the run goes on): {error}")
        return True
    history_record_run(run=run, summary=f"Step {step.name} failed: {error}", details={"step": step.pk})
    run_finish(run=run, succeeded=False, error=f"Step {step.name} failed: {error}")
    return False


def run_finish(
    *,
    run: PipelineRun,
    succeeded: bool,
    error: str = "",
    cancelled: bool = False,
    actor_user: User | None = None,
) -> None:
    if succeeded:
        run.status = PipelineRunStatus.SUCCEEDED
    else:
        run.status = PipelineRunStatus.CANCELLED if cancelled else PipelineRunStatus.FAILED
    run.status_reason = error[:4000]
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
    history_record_run(
        run=run,
        summary=f"{run.operation.capitalize()} pipeline {run.get_status_display().lower()}"
        + (f": {error}" if error else ""),
        actor_user=actor_user,
    )
    run_finished_notify(
        PipelineRunFinished(
            tenant_id=run.tenant_id,
            operation=run.operation,
            run_id=run.pk,
            succeeded=succeeded,
            error=error,
            cancelled=cancelled,
            actor_user=actor_user,
        )
    )


def step_run_complete(
    *,
    step_run_id: int,
    attempt: int | None,
    succeeded: bool,
    outputs: dict[str, Any] | None = None,
    error: str = "",
    retry: bool = True,
) -> bool:
    """Finish a started step (its build ended, its delivery ended, a decision, a timer, its deadline).
    ``attempt``: the attempt this news is about (None: the current one); news about a step that is no
    longer open or about an earlier attempt changes nothing (returns False). ``retry=False``: a failure
    that another attempt would not change (a rejection)."""
    with transaction.atomic():
        run_id = StepRun.objects.filter(pk=step_run_id).values_list("run_id", flat=True).get()
        run = run_lock(run_id=run_id)
        step = StepRun.objects.select_for_update().get(pk=step_run_id)
        if step.status not in STEP_OPEN_STATUSES or (attempt is not None and step.attempts != attempt):
            return False
        if run.status not in RUN_LIVE_STATUSES:
            return False
        if succeeded:
            _step_succeed(run=run, step=step, outputs=outputs or {})
            goes_on = True
        else:
            goes_on = _step_fail(run=run, step=step, error=error or "failed", now=timezone.now(), retry=retry)
        if goes_on:
            run.status = PipelineRunStatus.RUNNING
            run.save(update_fields=["status", "updated_at"])
            advance_enqueue(run_id=run.pk)
    return True


def pipeline_runs_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: fail (or, for a delay, finish) steps past their deadline; advance runs whose task was lost."""
    now = now or timezone.now()
    overdue = list(StepRun.objects.filter(status__in=STEP_OPEN_STATUSES, deadline_at__lt=now)[:500])
    completed = 0
    for step in overdue:
        done = step_kind(step.kind).deadline_means_success(step_run=step)
        completed += step_run_complete(
            step_run_id=step.pk,
            attempt=step.attempts,
            succeeded=done,
            error="" if done else f"Timed out after {step.timeout_seconds} s.",
        )
    stalled = list(
        PipelineRun.objects.filter(status=PipelineRunStatus.RUNNING, updated_at__lt=now - STALLED_AFTER)
        .exclude(step_runs__status__in=STEP_OPEN_STATUSES)
        .values_list("pk", flat=True)[:500]
    )
    with transaction.atomic():
        for run_id in stalled:
            advance_enqueue(run_id=run_id)
    if overdue or stalled:
        logger.warning("pipeline sweep: %d steps past their deadline, %d stalled runs", len(overdue), len(stalled))
    return {"overdue": completed, "stalled": len(stalled)}


def _step_of_build(token: str) -> tuple[StepRun | None, int]:
    """The step run and attempt a step build's token (``step:{run}:{position}:{attempt}``) names."""
    key, _, attempt = token.removeprefix("step:").rpartition(":")
    return StepRun.objects.filter(key=key).first(), int(attempt or 0)


def step_build_finished(*, token: str, succeeded: bool, outputs: dict[str, Any], error: str = "") -> bool:
    """A step's build ended (its outcome event, or a failure its builder reported): finish the step."""
    step, attempt = _step_of_build(token)
    if step is None:
        return False
    return step_run_complete(step_run_id=step.pk, attempt=attempt, succeeded=succeeded, outputs=outputs, error=error)


def step_build_failed(*, build: Any, reason: str) -> None:
    """Called by ``build_record_state`` for a step build its builder reports failed (no outcome event comes)."""
    step_build_finished(token=build.idempotency_token, succeeded=False, outputs={}, error=reason)
