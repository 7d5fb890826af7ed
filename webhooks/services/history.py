"""The tenant timeline's entries about deliveries."""

from typing import Any

from tenants.models import HistoryKind, TenantHistory
from tenants.services.history import history_entry
from webhooks.models import DeliveryAttempt, WebhookDelivery
from webhooks.services.endpoints import url_display


def delivery_history_record(
    *, delivery: WebhookDelivery, summary: str, attempt: DeliveryAttempt | None = None, actor_user: Any = None
) -> None:
    entry = delivery_history_entry(delivery=delivery, summary=summary, attempt=attempt, actor_user=actor_user)
    if entry is not None:
        entry.save(force_insert=True)


def delivery_history_entry(
    *, delivery: WebhookDelivery, summary: str, attempt: DeliveryAttempt | None = None, actor_user: Any = None
) -> TenantHistory | None:
    """The tenant timeline's entry about this delivery (unsaved), or None for a delivery without a tenant."""
    tenant = delivery.tenant
    if tenant is None:
        return None
    return history_entry(
        tenant=tenant,
        kind=HistoryKind.CALLBACK,
        summary=f"{delivery.get_step_display()} to {url_display(delivery.url) or '(no URL)'}: {summary}",
        details={
            "delivery": delivery.pk,
            "step": delivery.step,
            "event_type": delivery.event_type,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "status_code": attempt.status_code if attempt else None,
            "error": attempt.error if attempt else "",
        },
        actor_user=actor_user,
        ref_type="delivery",
        ref_id=delivery.pk,
    )
