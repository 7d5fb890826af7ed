"""Build outcomes: the post-build step's success/failure events, deployment results, CodeBuild's own
state-change events.

``TENANT_PROVISIONING_SUCCESS`` for a provisioning build → build ``SUCCEEDED``, tenant ``DEPLOYING``, and a
``TENANT_DEPLOYMENT`` event published through the outbox: the success detail as received (what the
deployment step reads: endpoints, ``secret``, ``context``, ``tenant``...) plus ``planConfig`` from the
stored plan (the original lost it). ``TENANT_PROVISIONING_FAILURE``, or a success whose
``CODEBUILD_BUILD_SUCCEEDING`` is ``"0"`` → ``PROVISION_FAILED`` with the reason; the webhooks app tells the
control plane through ``tenant_status_changed`` (its cause names the event and the build).

Which build an outcome belongs to: the build whose id is ``CODEBUILD_BUILD_ID``; without one, the
tenant's running build (``PROVISIONING`` → its provisioning build, ``DEPROVISIONING`` → its deprovisioning
build; ``UPDATING``, ``SUSPENDING``, ``RESUMING`` → that operation's build). So deprovisioning reports with the
same two detail types: success → ``INACTIVE``, failure → ``DEPROVISION_FAILED``; so do the operations' builds,
whose result goes to ``operation_finish`` (an update's success makes its pending plan the tenant's).

Duplicates (an outcome for a build already finished that way) are recorded and change nothing. An
outcome the lifecycle cannot take (e.g. success for a tenant that already failed) is refused and
recorded (``EventRejected``).
"""

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from events.catalogue import DetailType, tenant_id_of
from events.registry import EventRejected
from events.services import outbox_publish
from tenants.models import (
    OPERATION_PURPOSES,
    PURPOSE_STATUSES,
    Build,
    BuildPurpose,
    BuildStatus,
    Tenant,
    TenantStatus,
    attempt_field,
)
from tenants.services.builds import build_record_state, history_record_build, is_step_build
from tenants.services.history import event_already_applied, history_record_event
from tenants.services.lifecycle import TransitionCause, tenant_transition
from tenants.services.operation_outcomes import operation_finish
from tenants.services.pipeline_runs import step_build_finished
from tenants.services.sbt import sbt_build_success_report

if TYPE_CHECKING:
    from events.models import ReceivedEvent

_CODEBUILD_STATUS = {
    "IN_PROGRESS": BuildStatus.IN_PROGRESS,
    "SUCCEEDED": BuildStatus.SUCCEEDED,
    "FAILED": BuildStatus.FAILED,
    "FAULT": BuildStatus.FAULT,
    "TIMED_OUT": BuildStatus.TIMED_OUT,
    "STOPPED": BuildStatus.STOPPED,
}


def _lock_tenant(detail: dict[str, Any], detail_type: str) -> Tenant:
    """The event's tenant (``tenant`` may be an object or a JSON string, as CodeBuild exports it), locked."""
    tenant_id = tenant_id_of(detail_type, detail)
    if not tenant_id:
        raise EventRejected(f"{detail_type} names no tenant (detail.tenant.id).")
    tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
    if tenant is None:
        raise EventRejected(f"{detail_type} for unknown tenant {tenant_id}.")
    return tenant


def _match_build(tenant: Tenant, detail: dict[str, Any]) -> Build | None:
    build_id = str(detail.get("CODEBUILD_BUILD_ID") or "")
    if build_id:
        build = Build.objects.filter(tenant=tenant).filter(Q(build_id=build_id) | Q(arn=build_id)).first()
        if build is not None:
            return build
    # Without a build id: the current attempt of whatever the tenant is running (provisioning by default).
    purpose = next(
        (name for name, (running, _f, _d) in PURPOSE_STATUSES.items() if running == tenant.status),
        BuildPurpose.PROVISION,
    )
    attempt = getattr(tenant, attempt_field(purpose))
    return Build.objects.filter(tenant=tenant, purpose=purpose, attempt=attempt).first()


def _raw_detail(event: "ReceivedEvent") -> dict[str, Any]:
    raw = (event.envelope or {}).get("detail")
    return dict(raw) if isinstance(raw, dict) else dict(event.detail)


def _failure_reason(detail: dict[str, Any], build: Build | None) -> str:
    for key in ("FAILURE_REASON", "reason", "CODEBUILD_BUILD_FAILURE_REASON"):
        if detail.get(key):
            return str(detail[key])[:2000]
    name = build.build_id if build and build.build_id else "the build"
    return f"{name} reported failure (CODEBUILD_BUILD_SUCCEEDING=0)"


def provisioning_outcome_record(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    """Handle ``TENANT_PROVISIONING_SUCCESS`` / ``TENANT_PROVISIONING_FAILURE`` (idempotent per event)."""
    succeeded = (
        event.detail_type == DetailType.TENANT_PROVISIONING_SUCCESS
        and str(detail.get("CODEBUILD_BUILD_SUCCEEDING", "1")) != "0"
    )
    # The event's handler transaction holds everything: no savepoint of its own (an error undoes it all).
    with transaction.atomic(savepoint=False):
        tenant = _lock_tenant(detail, event.detail_type)
        if event_already_applied(tenant=tenant, event=event):
            return {"tenant": tenant.pk, "status": tenant.status, "outcome": "already applied"}
        build = _match_build(tenant, detail)
        if build is not None and is_step_build(build):
            return _step_build_outcome_record(event=event, tenant=tenant, build=build, succeeded=succeeded)
        purpose = build.purpose if build else BuildPurpose.PROVISION
        running, failed, done = PURPOSE_STATUSES[purpose]
        attempt = getattr(tenant, attempt_field(purpose))
        current = build is not None and build.attempt == attempt
        if tenant.status == running and (build is None or current):
            outcome = "applied"
        elif build is not None and not current:
            outcome = "stale"  # news about an earlier attempt: recorded on its build, the tenant does not move
        elif (
            succeeded and build is not None and build.status == BuildStatus.SUCCEEDED and tenant.status != running
        ) or (not succeeded and tenant.status == failed):
            outcome = "duplicate"
        else:
            outcome = "refused"
        build_name = build.build_id if build and build.build_id else "(unknown build)"
        summary = f"{event.detail_type}: {purpose} build {build_name} {'succeeded' if succeeded else 'failed'}"
        if outcome == "refused":
            summary = (
                f"{event.detail_type} refused: tenant {tenant.pk} is {TenantStatus(tenant.status).label}, "
                f"not {TenantStatus(running).label}."
            )
        elif outcome != "applied":
            summary += f" ({outcome}; no status change)"
        history_record_event(
            tenant=tenant,
            event=event,
            summary=summary,
            details={"build_pk": build.pk if build else None, "purpose": purpose, "outcome": outcome},
        )
        if build is not None and (
            outcome == "applied" or (outcome == "stale" and build.status == BuildStatus.IN_PROGRESS)
        ):
            _finish(build=build, succeeded=succeeded, detail=detail)
        cause = TransitionCause(
            event_pk=event.pk, build_pk=build.pk if build else None, details={"detail_type": event.detail_type}
        )
        reason = "" if succeeded else _failure_reason(detail, build)
        if outcome == "applied" and purpose in OPERATION_PURPOSES:
            operation_finish(tenant_id=tenant.pk, operation=purpose, succeeded=succeeded, error=reason, cause=cause)
        elif outcome == "applied":
            tenant_transition(tenant=tenant, to=done if succeeded else failed, reason=reason, cause=cause)
            if succeeded and purpose == BuildPurpose.PROVISION:
                outbox_publish(
                    detail_type=DetailType.TENANT_DEPLOYMENT,
                    # The detail exactly as the build sent it (``tenant`` stays a JSON string, as the
                    # original re-emitted it), plus the plan the original lost.
                    detail={**_raw_detail(event), "planConfig": tenant.plan},
                    tenant_id=tenant.pk,
                )
    if outcome == "refused":
        raise EventRejected(summary)
    # The row stays locked by the handler's transaction and ``tenant_transition`` updated this copy.
    return {"tenant": tenant.pk, "status": tenant.status, "outcome": outcome}


def _step_build_outcome_record(
    *, event: "ReceivedEvent", tenant: Tenant, build: Build, succeeded: bool
) -> dict[str, Any]:
    """The outcome of a pipeline step's build: the build and its step finish, the tenant stays where its
    pipeline keeps it (the run's end moves it); the detail as sent becomes the step's outputs."""
    detail = _raw_detail(event)
    history_record_event(
        tenant=tenant,
        event=event,
        summary=f"{event.detail_type}: pipeline build {build.build_id or build.pk} "
        f"{'succeeded' if succeeded else 'failed'}",
        details={"build_pk": build.pk, "purpose": build.purpose, "outcome": "pipeline step"},
    )
    _finish(build=build, succeeded=succeeded, detail=detail)
    step_build_finished(
        token=build.idempotency_token,
        succeeded=succeeded,
        outputs=detail if succeeded else {},
        error="" if succeeded else _failure_reason(detail, build),
    )
    return {"tenant": tenant.pk, "status": tenant.status, "outcome": "pipeline step"}


def _finish(*, build: Build, succeeded: bool, detail: dict[str, Any]) -> None:
    status = BuildStatus.SUCCEEDED if succeeded else BuildStatus.FAILED
    reason = "" if succeeded else _failure_reason(detail, build)
    Build.objects.filter(pk=build.pk).update(
        status=status, status_reason=reason, ended_at=build.ended_at or timezone.now(), awaiting_outcome_event=False
    )
    build.status = status
    history_record_build(
        build=build, summary=f"Build {build.build_id or build.pk} {status.label.lower()} (outcome event)"
    )


def deployment_outcome_record(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    """Handle ``TENANT_DEPLOYMENT_SUCCESS`` / ``_FAILURE``: recorded on the timeline; a failure moves a
    ``DEPLOYING`` tenant to ``DEPLOY_FAILED`` (the deployment step itself owns ``DEPLOYING → ACTIVE``)."""
    failed = event.detail_type == DetailType.TENANT_DEPLOYMENT_FAILURE
    # The event's handler transaction holds everything: no savepoint of its own (an error undoes it all).
    with transaction.atomic(savepoint=False):
        tenant = _lock_tenant(detail, event.detail_type)
        if event_already_applied(tenant=tenant, event=event):
            return {"tenant": tenant.pk, "status": tenant.status, "outcome": "already applied"}
        reason = str(detail.get("reason") or "")
        moves = failed and tenant.status == TenantStatus.DEPLOYING
        history_record_event(
            tenant=tenant,
            event=event,
            summary=f"{event.detail_type}"
            + (f": {reason}" if reason else "")
            + ("" if moves or not failed else f" (tenant is {TenantStatus(tenant.status).label}; no status change)"),
            details={"reason": reason},
        )
        if moves:
            tenant_transition(
                tenant=tenant,
                to=TenantStatus.DEPLOY_FAILED,
                reason=reason or "The deployment step reported a failure.",
                cause=TransitionCause(event_pk=event.pk, details={"detail_type": event.detail_type}),
            )
    return {"tenant": tenant.pk, "status": tenant.status, "outcome": "applied" if moves else "recorded"}


def codebuild_state_change_record(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    """Handle AWS's ``CodeBuild Build State Change``: update the ``Build``; a terminal failure with no
    failure event fails the tenant, a success waits for the success event (``awaiting_outcome_event``)."""
    build_ref = str(detail.get("build-id", ""))
    build = Build.objects.filter(Q(arn=build_ref) | Q(build_id=build_ref)).select_related("tenant").first()
    if build is None and "/" in build_ref:
        build = Build.objects.filter(build_id=build_ref.split("/", 1)[1]).select_related("tenant").first()
    if build is None:
        return {"outcome": "ignored", "reason": f"no build {build_ref} started by the orchestrator"}
    status = _CODEBUILD_STATUS.get(str(detail.get("build-status", "")).upper(), BuildStatus.FAULT)
    info = detail.get("additional-information") or {}
    logs = info.get("logs") or {}
    # The event's handler transaction holds everything: no savepoint of its own (an error undoes it all).
    with transaction.atomic(savepoint=False):
        tenant = Tenant.objects.select_for_update().get(pk=build.tenant_id)
        if event_already_applied(tenant=tenant, event=event):
            return {"tenant": tenant.pk, "build": build.build_id, "outcome": "already applied"}
        history_record_event(
            tenant=tenant,
            event=event,
            summary=f"CodeBuild: build {build.build_id} {status}",
            details={"build_pk": build.pk, "build_status": detail.get("build-status")},
        )
        build = build_record_state(
            build=build,
            status=status,
            reason=_phase_reason(info) if status != BuildStatus.SUCCEEDED else "",
            logs_url=str(logs.get("deep-link", "")),
            source="codebuild-event",
        )
        if build.awaiting_outcome_event:  # an sbt script job reports by succeeding: its outcome event is ours
            sbt_build_success_report(build=build, event=event, detail=detail)
    tenant.refresh_from_db(fields=["status", "status_reason", "version"])
    return {"tenant": tenant.pk, "build": build.build_id, "build_status": build.status, "status": tenant.status}


def _phase_reason(info: dict[str, Any]) -> str:
    for phase in info.get("phases") or []:
        if phase.get("phase-status") in {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"}:
            messages = [str(m) for m in phase.get("phase-context") or [] if m and str(m) != ": "]
            return f"{phase.get('phase-type', 'phase')} {phase['phase-status']}" + (
                f": {'; '.join(messages)}" if messages else ""
            )
    return ""
