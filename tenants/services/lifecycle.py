"""The tenant state machine: the only code that changes ``Tenant.status`` (each change is written to the
tenant's history, ``tenants.services.history``)."""

import logging

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F

from orchestrator.errors import ConflictError
from tenants.models import ALLOWED_TRANSITIONS, HistoryKind, Tenant, TenantStatus
from tenants.services.history import history_record
from tenants.services.sync import tenant_sync_schedule
from tenants.signals import TenantStatusChange, TransitionCause, tenant_status_changed

logger = logging.getLogger(__name__)


class TransitionRefused(ConflictError):
    code = "transition_refused"


def tenant_transition(
    *,
    tenant: Tenant,
    to: str,
    reason: str = "",
    actor_user: User | None = None,
    cause: TransitionCause | None = None,
) -> Tenant:
    """Move ``tenant`` to status ``to`` if the lifecycle allows it, else record the refusal and raise.

    The row is locked for the change, so two workers cannot both move it from the same status; the
    version is bumped so the DynamoDB mirror picks the change up. ``cause`` (the event, build or chain
    behind the change) is recorded with it and handed to the receivers of ``tenant_status_changed``.
    """
    cause = cause or TransitionCause()
    # No savepoint: nothing in here is caught and carried on from; an error undoes the caller's transaction.
    with transaction.atomic(savepoint=False):
        locked = _moved_as_held(tenant=tenant, to=to, reason=reason)
        if locked is not None:
            from_status, allowed = tenant.status, True
        else:
            locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
            from_status = locked.status
            allowed = to in ALLOWED_TRANSITIONS[from_status]
        if allowed:
            if locked is not tenant:
                Tenant.objects.filter(pk=locked.pk).update(status=to, status_reason=reason, version=F("version") + 1)
            # The row is locked: the new values are known without reading them back.
            locked.status, locked.status_reason, locked.version = to, reason, locked.version + 1
            history_record(
                tenant=locked,
                kind=HistoryKind.TRANSITION,
                summary=f"{TenantStatus(from_status).label} → {TenantStatus(to).label}"
                + (f": {reason}" if reason else ""),
                details={"from": from_status, "to": to, "reason": reason, **cause.timeline_details()},
                actor_user=actor_user,
            )
            tenant_sync_schedule(tenant_id=locked.pk)
            change = TenantStatusChange(
                tenant=locked, from_status=from_status, to_status=to, reason=reason, actor_user=actor_user, cause=cause
            )
            tenant_status_changed.send(sender=Tenant, change=change)
    if not allowed:
        # Recorded after the locked block: the refusal is part of the tenant's story, the state is untouched.
        message = f"{TenantStatus(from_status).label} → {TenantStatus(to).label} is not an allowed transition"
        history_record(
            tenant=locked,
            kind=HistoryKind.TRANSITION_REFUSED,
            summary=message,
            details={"from": from_status, "to": to, "reason": reason, **cause.timeline_details()},
            actor_user=actor_user,
        )
        logger.warning("tenant %s: %s", locked.pk, message)
        raise TransitionRefused(message, fields={"status": [message]})
    logger.info("tenant %s: %s → %s%s", locked.key, from_status, to, f" ({reason})" if reason else "")
    tenant.status, tenant.status_reason, tenant.version = locked.status, locked.status_reason, locked.version
    tenant.updated_at = locked.updated_at
    return tenant


def _moved_as_held(*, tenant: Tenant, to: str, reason: str) -> Tenant | None:
    """``tenant`` when one conditional ``UPDATE`` moved it: the row still has the status and version the caller
    holds (usually read locked in this transaction) and the lifecycle allows the move from there. None
    otherwise (nothing written): the caller's copy is stale or the move is refused, so the row is read locked."""
    if to not in ALLOWED_TRANSITIONS.get(tenant.status, ()):
        return None
    moved = Tenant.objects.filter(pk=tenant.pk, status=tenant.status, version=tenant.version).update(
        status=to, status_reason=reason, version=F("version") + 1
    )
    return tenant if moved else None
