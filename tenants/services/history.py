"""The tenant's history timeline: append-only entries (status changes, received events, builds, callbacks,
staff actions). At the bottom of the services: every other tenants service records here, this imports none.
"""

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.utils import timezone

from orchestrator.redaction import redact
from tenants.models import HistoryKind, Tenant, TenantHistory

if TYPE_CHECKING:
    from events.models import ReceivedEvent


def history_entry(
    *,
    tenant: Tenant,
    kind: str,
    summary: str,
    details: dict[str, Any] | None = None,
    actor_user: User | None = None,
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
