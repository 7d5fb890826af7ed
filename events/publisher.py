"""Publishing the orchestrator's own events to EventBridge from the outbox.

``events.services.outbox_publish`` stores an ``OutboxEvent`` in the caller's transaction; after commit
``outbox_send`` sends it. ``outbox_send_batch`` sends many rows in ``PutEvents`` calls of at most 10
entries; entries EventBridge reports as failed (``FailedEntryCount``) are retried alone, with backoff,
when their error is transient, and failed for good otherwise. A row becomes ``sent`` with the EventId
EventBridge assigned. When EventBridge cannot be reached the rows stay ``pending`` (with the error) and
the ``events.publish_pending_outbox`` beat task re-sends pending rows older than
OUTBOX_RESEND_AFTER_SECONDS, until OUTBOX_MAX_ATTEMPTS, after which a row is ``failed`` (visible in the
admin). Delivery is at least once: a crash between PutEvents and the status update sends a row again.
"""

import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from events.emulator import emulator_relay_poll
from events.models import OutboxEvent, OutboxStatus
from events.wiring import relay_enabled
from orchestrator.aws import aws_client, is_transient

logger = logging.getLogger(__name__)

BATCH_SIZE = 10  # PutEvents accepts at most 10 entries per call
TRANSIENT_ENTRY_CODES = {"InternalFailure", "InternalException", "ThrottlingException", "ServiceUnavailable"}


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # failed for good
    pending: list[int] = field(default_factory=list)  # still pending: retried later by the beat task


def _entry(row: OutboxEvent) -> dict[str, object]:
    return {
        "Source": row.source,
        "DetailType": row.detail_type,
        "Detail": json.dumps(row.detail, cls=DjangoJSONEncoder, separators=(",", ":")),
        "EventBusName": row.event_bus,
    }


def _backoff(round_number: int) -> float:
    ceiling = float(settings.OUTBOX_RETRY_BACKOFF_SECONDS) * (2**round_number)
    return random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0


def _send_rows(rows: list[OutboxEvent], report: SendReport) -> None:
    """PutEvents for up to 10 locked rows; failed entries retried alone with backoff."""
    client = aws_client("events")
    for row in rows:
        row.attempts += 1  # one per send call, however many rounds it takes
    waiting = list(rows)
    errors: dict[int, str] = {}
    rounds = max(int(settings.OUTBOX_SEND_ATTEMPTS), 1)
    for round_number in range(rounds):
        if not waiting:
            break
        if round_number:
            time.sleep(_backoff(round_number))
        try:
            response = client.put_events(Entries=[_entry(row) for row in waiting])
        except (ClientError, BotoCoreError) as error:
            code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
            message = f"{error.__class__.__name__}: {code or error}"[:1000]
            for row in waiting:
                errors[row.pk] = message
            if is_transient(error):
                continue
            break  # refused as a whole (bus missing, access denied): leave pending for the beat task
        retry: list[OutboxEvent] = []
        now = timezone.now()
        for row, result in zip(waiting, response.get("Entries", []), strict=False):
            if result.get("EventId"):
                row.status = OutboxStatus.SENT
                row.eventbridge_id = result["EventId"]
                row.sent_at = now
                row.last_error = ""
                row.save(update_fields=["status", "eventbridge_id", "sent_at", "last_error", "attempts"])
                report.sent.append(row.pk)
                continue
            code = result.get("ErrorCode", "Unknown")
            errors[row.pk] = f"{code}: {result.get('ErrorMessage', '')}"[:1000]
            if code in TRANSIENT_ENTRY_CODES:
                retry.append(row)
            else:
                row.status = OutboxStatus.FAILED
                row.last_error = errors[row.pk]
                row.save(update_fields=["status", "last_error", "attempts"])
                report.failed.append(row.pk)
        waiting = retry
    for row in waiting:
        row.last_error = errors.get(row.pk, "Not sent.")
        if row.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            row.status = OutboxStatus.FAILED
            report.failed.append(row.pk)
        else:
            report.pending.append(row.pk)
        row.save(update_fields=["status", "last_error", "attempts"])
        logger.warning("outbox entry not sent: %s", row.last_error, extra={"outbox_pk": row.pk})


def outbox_send_batch(*, outbox_pks: Iterable[int]) -> SendReport:
    """Send the pending rows among ``outbox_pks`` in PutEvents batches of at most 10."""
    report = SendReport()
    pks = sorted(set(outbox_pks))
    for start in range(0, len(pks), BATCH_SIZE):
        chunk = pks[start : start + BATCH_SIZE]
        with transaction.atomic():
            # Rows another sender holds are skipped, not waited for: it is sending them right now.
            rows = list(
                OutboxEvent.objects.select_for_update(skip_locked=True)
                .filter(pk__in=chunk, status=OutboxStatus.PENDING)
                .order_by("pk")
            )
            if rows:
                _send_rows(rows, report)
    if report.sent:
        _relay_push()
    return report


def _relay_push() -> None:
    """Against the emulator, carry what was just sent on to the intake now rather than at the relay's next beat
    tick (up to 2 s later; on AWS the bus's API destination pushes at once). The beat task stays the safety net:
    what this pass cannot deliver waits in the relay queue for it."""
    if not relay_enabled():
        return
    try:
        emulator_relay_poll(max_batches=1)
    except (ClientError, BotoCoreError) as error:
        logger.warning("relay push failed; the beat task relays later: %s", error.__class__.__name__)


def outbox_send(*, outbox_pk: int) -> str:
    """Send one outbox row (no-op unless pending). Returns its status afterwards."""
    outbox_send_batch(outbox_pks=[outbox_pk])
    row = OutboxEvent.objects.filter(pk=outbox_pk).only("status").first()
    return row.status if row else "missing"


def outbox_send_pending(*, older_than_seconds: int | None = None, limit: int = 500) -> int:
    """Re-send pending rows older than OUTBOX_RESEND_AFTER_SECONDS; returns how many were sent."""
    age = settings.OUTBOX_RESEND_AFTER_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=age)
    pks = list(
        OutboxEvent.objects.filter(status=OutboxStatus.PENDING, created_at__lte=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not pks:
        return 0
    report = outbox_send_batch(outbox_pks=pks)
    logger.info(
        "outbox resend: %d sent, %d failed, %d pending", len(report.sent), len(report.failed), len(report.pending)
    )
    return len(report.sent)
