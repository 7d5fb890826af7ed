"""How an operation on an active tenant (update, suspend, resume) ends: ``operation_finish``, the one place its
result is applied, whatever did the work (the tier's build today, a pipeline run once one does it).

An update's plan becomes the tenant's only here, on success: until then ``plan``/``tier`` stay what
callbacks and retries use, and ``pending_plan``/``pending_tier`` hold the update's. A failure keeps the
pending plan for a retry (or a roll back, ``tenants.services.operations``).
"""

import logging

from django.db import transaction

from tenants.models import OPERATION_PURPOSES, PURPOSE_STATUSES, BuildPurpose, HistoryKind, Tenant, TenantStatus
from tenants.services.history import history_record
from tenants.services.lifecycle import TransitionCause, tenant_transition

logger = logging.getLogger(__name__)


def operation_finish(
    *,
    tenant_id: str,
    operation: str,
    succeeded: bool,
    error: str = "",
    run_id: int | None = None,
    cause: TransitionCause | None = None,
) -> Tenant:
    """Apply the end of ``operation`` (a ``BuildPurpose`` of ``OPERATION_PURPOSES``) to the tenant.

    Success: the operation's done status (an update first makes its pending plan and tier the tenant's and
    keeps the replaced ones as ``previous_*``). Failure: its failed status with ``error`` as the reason.
    Idempotent: a tenant no longer running the operation (a duplicate or late report) is left as it is and
    the report noted on its timeline. ``run_id``: the pipeline run that did the work, recorded with the move.
    """
    if operation not in OPERATION_PURPOSES:
        raise ValueError(f"{operation!r} is not an operation on an active tenant")
    running, failed, done = PURPOSE_STATUSES[operation]
    cause = cause or TransitionCause()
    if run_id is not None:
        cause = TransitionCause(
            event_pk=cause.event_pk,
            build_pk=cause.build_pk,
            build_id=cause.build_id,
            source=cause.source,
            details={**cause.details, "run_id": run_id},
        )
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if tenant.status != running:
            outcome = "succeeded" if succeeded else "failed"
            history_record(
                tenant=tenant,
                kind=HistoryKind.NOTE,
                summary=f"{operation.capitalize()} {outcome} reported while {TenantStatus(tenant.status).label}: "
                "no status change",
                details={"operation": operation, "succeeded": succeeded, "error": error, **cause.timeline_details()},
            )
            logger.info("tenant %s: late %s result ignored (%s)", tenant.pk, operation, tenant.status)
            return tenant
        if succeeded and operation == BuildPurpose.UPDATE:
            _pending_plan_apply(tenant)
        return tenant_transition(
            tenant=tenant, to=done if succeeded else failed, reason="" if succeeded else error, cause=cause
        )


def _pending_plan_apply(tenant: Tenant) -> None:
    """The update's plan and tier become the tenant's (saved without a version bump: the transition bumps it)."""
    if not tenant.pending_plan:
        return
    tenant.previous_plan, tenant.previous_tier = tenant.plan, tenant.tier
    tenant.plan, tenant.tier = tenant.pending_plan, tenant.pending_tier or tenant.tier
    tenant.pending_plan, tenant.pending_tier = {}, ""
    tenant.save(update_fields=["plan", "tier", "previous_plan", "previous_tier", "pending_plan", "pending_tier"])
