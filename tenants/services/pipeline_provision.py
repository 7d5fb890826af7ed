"""Provisioning through a tier's ``provision`` pipeline (a tier without one provisions as before).

``provision_pipeline_start`` is called by the provisioning handler for a new attempt: when the tier has
provision steps, the tenant moves to ``PROVISIONING`` and a run starts instead of the single build. The run's
end moves the tenant (``provision_run_finished``, a listener registered in ``TenantsConfig.ready``): success
``PROVISIONING -> DEPLOYING -> ACTIVE`` (subscribers hear ``tenant.deployed`` as on the original path's
end), failure or cancellation ``PROVISION_FAILED`` (the control plane and subscribers are told as for a
failed build); a redrive moves it back to ``PROVISIONING``.
"""

from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.db import transaction

from tenants.models import HistoryKind, PipelineOperation, PipelineRun, PipelineStep, Tenant, TenantStatus, Tier
from tenants.pipelines.listeners import PipelineRunFinished, PipelineRunRedriven, run_listener_register
from tenants.services.builds import ActionResult
from tenants.services.history import history_record
from tenants.services.lifecycle import TransitionCause, tenant_transition
from tenants.services.pipeline_runs import pipeline_run_start

if TYPE_CHECKING:
    from events.models import ReceivedEvent

PIPELINE_SOURCE = "tenants.pipeline"


def provision_pipeline_configured(*, tier_name: str) -> bool:
    return PipelineStep.objects.filter(tier__name=tier_name, operation=PipelineOperation.PROVISION).exists()


def provision_pipeline_retry(*, tenant: Tenant, actor_user: User | None) -> ActionResult:
    """Staff retry of a pipeline tier's provisioning: a new attempt, a new run from its first step (a redrive,
    ``pipeline_run_redrive``, goes on from the failed step instead)."""
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        history_record(
            tenant=tenant,
            kind=HistoryKind.STAFF_ACTION,
            summary="Retry provisioning requested",
            details={"from": tenant.status},
            actor_user=actor_user,
        )
        run = provision_pipeline_start(tenant=tenant, event=None, actor_user=actor_user)
    if run is None:  # the pipeline was removed meanwhile: nothing started
        return ActionResult(tenant=tenant, changed=False, message=f"{tenant.key}: tier {tenant.tier} has no pipeline.")
    attempt = tenant.provisioning_attempt
    return ActionResult(
        tenant=tenant, changed=True, message=f"{tenant.key}: attempt {attempt} is pipeline run {run.pk}."
    )


def provision_pipeline_start(
    *, tenant: Tenant, event: "ReceivedEvent | None", actor_user: User | None, tier: Tier | None = None
) -> PipelineRun | None:
    """A new provisioning attempt through the tier's pipeline (tenant locked by the caller); None when the
    tier has no provision steps. ``tier``: the tenant's as ``tier_get`` read it, when the caller has it."""
    configured = getattr(tier, "has_provision_pipeline", None) if tier and tier.name == tenant.tier else None
    if configured is None:
        configured = provision_pipeline_configured(tier_name=tenant.tier)
    if not configured:
        return None
    attempt = tenant.provisioning_attempt + 1
    Tenant.objects.filter(pk=tenant.pk).update(provisioning_attempt=attempt)
    tenant.provisioning_attempt = attempt
    tenant_transition(
        tenant=tenant,
        to=TenantStatus.PROVISIONING,
        reason=f"provision attempt {attempt} (pipeline)",
        actor_user=actor_user,
        cause=TransitionCause(event_pk=event.pk if event else None, details={"attempt": attempt}),
    )
    triggered_by = f"event {event.event_id}" if event else (actor_user.get_username() if actor_user else "system")
    return pipeline_run_start(
        tenant_id=tenant.pk,
        operation=PipelineOperation.PROVISION,
        context={"event_pk": event.pk if event else None, "attempt": attempt},
        triggered_by=triggered_by,
        actor_user=actor_user,
    )


def _cause(run_id: int) -> TransitionCause:
    return TransitionCause(source=PIPELINE_SOURCE, details={"pipeline_run": run_id})


def provision_run_finished(finished: PipelineRunFinished) -> None:
    tenant = Tenant.objects.get(pk=finished.tenant_id)
    cause, actor = _cause(finished.run_id), finished.actor_user
    if finished.succeeded:
        tenant_transition(tenant=tenant, to=TenantStatus.DEPLOYING, reason="provision pipeline succeeded", cause=cause)
        tenant_transition(tenant=tenant, to=TenantStatus.ACTIVE, reason="provision pipeline succeeded", cause=cause)
    elif tenant.status == TenantStatus.PROVISIONING:
        tenant_transition(
            tenant=tenant, to=TenantStatus.PROVISION_FAILED, reason=finished.error, cause=cause, actor_user=actor
        )


def provision_run_redriven(redriven: PipelineRunRedriven) -> None:
    tenant = Tenant.objects.get(pk=redriven.tenant_id)
    if tenant.status == TenantStatus.PROVISION_FAILED:
        tenant_transition(
            tenant=tenant,
            to=TenantStatus.PROVISIONING,
            reason="provision pipeline redriven",
            cause=_cause(redriven.run_id),
            actor_user=redriven.actor_user,
        )


def provision_listeners_register() -> None:
    run_listener_register(
        operation=PipelineOperation.PROVISION,
        name="tenants.provision",
        on_finish=provision_run_finished,
        on_redrive=provision_run_redriven,
    )
