"""The tenant state machine and the history timeline: the only code that changes ``Tenant.status``."""

import logging
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orchestrator.errors import ConflictError
from orchestrator.redaction import redact
from tenants.models import ALLOWED_TRANSITIONS, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.sync import tenant_sync_schedule
from tenants.signals import tenant_status_changed

if TYPE_CHECKING:
    from events.models import ReceivedEvent

logger = logging.getLogger(__name__)


class TransitionRefused(ConflictError):
    code = "transition_refused"


def history_entry(
    *,
    tenant: Tenant,
    kind: str,
    summary: str,
    details: dict[str, Any] | None = None,
    actor_user: AbstractBaseUser | None = None,
    ref_type: str = "",
    ref_id: str | int = "",
) -> TenantHistory:
    """One entry of the tenant's timeline, not saved yet (details are redacted: the timeline is shown to
    staff). ``history_record`` saves one; code recording many at once bulk-creates them."""
    return TenantHistory(
        tenant=tenant,
        kind=kind,
        summary=summary[:500],
        details=redact(details or {}),
        actor=actor_user.get_username() if actor_user is not None else TenantHistory.SYSTEM,
        actor_user=actor_user,
        ref_type=ref_type,
        ref_id=str(ref_id),
    )


def history_record(**entry: Any) -> TenantHistory:
    """Append one entry to the tenant's timeline (``history_entry`` says what it holds)."""
    history = history_entry(**entry)
    history.save(force_insert=True)
    return history


def tenant_transition(
    *,
    tenant: Tenant,
    to: str,
    reason: str = "",
    actor_user: AbstractBaseUser | None = None,
    context: dict[str, Any] | None = None,
) -> Tenant:
    """Move ``tenant`` to status ``to`` if the lifecycle allows it, else record the refusal and raise.

    The row is locked for the change, so two workers cannot both move it from the same status; the
    version is bumped so the DynamoDB mirror picks the change up.
    """
    with transaction.atomic():
        locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
        from_status = locked.status
        allowed = to in ALLOWED_TRANSITIONS[from_status]
        if allowed:
            Tenant.objects.filter(pk=locked.pk).update(status=to, status_reason=reason, version=F("version") + 1)
            # The row is locked: the new values are known without reading them back.
            locked.status, locked.status_reason, locked.version = to, reason, locked.version + 1
            history_record(
                tenant=locked,
                kind=HistoryKind.TRANSITION,
                summary=f"{TenantStatus(from_status).label} → {TenantStatus(to).label}"
                + (f": {reason}" if reason else ""),
                details={"from": from_status, "to": to, "reason": reason, **(context or {})},
                actor_user=actor_user,
            )
            tenant_sync_schedule(tenant_id=locked.pk)
            tenant_status_changed.send(
                sender=Tenant,
                tenant=locked,
                from_status=from_status,
                to_status=to,
                reason=reason,
                context=context or {},
            )
    if not allowed:
        # Recorded after the locked block: the refusal is part of the tenant's story, the state is untouched.
        message = f"{TenantStatus(from_status).label} → {TenantStatus(to).label} is not an allowed transition"
        history_record(
            tenant=locked,
            kind=HistoryKind.TRANSITION_REFUSED,
            summary=message,
            details={"from": from_status, "to": to, "reason": reason, **(context or {})},
            actor_user=actor_user,
        )
        logger.warning("tenant %s: %s", locked.pk, message)
        raise TransitionRefused(message, fields={"status": [message]})
    tenant.status, tenant.status_reason, tenant.version = locked.status, locked.status_reason, locked.version
    tenant.updated_at = locked.updated_at
    return tenant


def history_record_event(
    *, tenant: Tenant, event: "ReceivedEvent", summary: str = "", details: dict[str, Any] | None = None
) -> TenantHistory:
    """Record a received event on the tenant's timeline (the marker that the event was applied)."""
    received = event.received_at or timezone.now()
    if tenant.last_event_at != received:
        Tenant.objects.filter(pk=tenant.pk).update(last_event_at=received)
        tenant.last_event_at = received
    return history_record(
        tenant=tenant,
        kind=HistoryKind.EVENT,
        summary=summary or f"{event.detail_type} received",
        details={
            "event_id": event.event_id,
            "detail_type": event.detail_type,
            "source": event.source,
            **(details or {}),
        },
        ref_type="event",
        ref_id=event.pk,
    )


def event_already_applied(*, tenant: Tenant, event: "ReceivedEvent") -> bool:
    """True when this event was already applied to this tenant: a re-run (crash, replay) is a no-op.

    Refusals and failures do not count, so a replayed event is judged again against the current status.
    """
    recorded = TenantHistory.objects.filter(
        tenant=tenant, kind=HistoryKind.EVENT, ref_type="event", ref_id=str(event.pk)
    ).values_list("details", flat=True)
    return any(not (details or {}).get("refused") for details in recorded)


def history_record_event_failure(*, event: "ReceivedEvent") -> TenantHistory | None:
    """Put a failed event (refused by its handler, or out of attempts) on its tenant's timeline.

    The events app rolls a failing handler's writes back, so the refusal the handler recorded is gone by
    the time the event is marked failed; this runs when it is (``tenants.receivers``).
    """
    tenant = Tenant.objects.filter(pk=event.tenant_id).first() if event.tenant_id else None
    if tenant is None:
        return None
    recorded = TenantHistory.objects.filter(
        tenant=tenant, kind=HistoryKind.EVENT, ref_type="event", ref_id=str(event.pk)
    ).values_list("details", flat=True)
    if any((details or {}).get("refused") and details.get("attempts") == event.attempts for details in recorded):
        return None
    return history_record(
        tenant=tenant,
        kind=HistoryKind.EVENT,
        summary=f"{event.detail_type} not applied: {event.last_error}",
        details={
            "event_id": event.event_id,
            "detail_type": event.detail_type,
            "refused": True,
            "error": event.last_error,
            "attempts": event.attempts,
        },
        ref_type="event",
        ref_id=event.pk,
    )
