"""Writes for the event intake, dispatch and the outbox."""

from typing import Any

from django.conf import settings
from django.db import transaction

from events.models import OutboxEvent


def outbox_publish(
    *, detail_type: str, detail: dict[str, Any], tenant_id: str = "", source: str | None = None
) -> OutboxEvent:
    """Store an event to emit to EventBridge in the caller's transaction; it is sent after commit.

    The row survives EventBridge being down: the publisher retries pending rows until they are sent.
    """
    from events.tasks import publish_outbox

    entry = OutboxEvent.objects.create(
        detail_type=detail_type,
        source=source or settings.EVENT_SOURCE,
        detail=detail,
        event_bus=settings.EVENT_BUS_NAME,
        tenant_id=tenant_id,
    )
    transaction.on_commit(lambda: publish_outbox.delay(outbox_pk=entry.pk))
    return entry
