"""Writes for the event intake, dispatch and the outbox.

Receiving: ``event_receive`` stores the event (unique on EventBridge's ``id``) in the accepting
transaction and enqueues processing after commit. A redelivery with the same body is a duplicate; the
same id with another body is a conflict.

Processing (``event_process``, run by the ``events.process_event`` task) is idempotent and runs a
handler at most once per attempt, even with two workers racing:

1. claim: lock the row, decide whether it is due (accepted; retrying and due; processing but abandoned
   for longer than EVENT_SWEEP_AFTER_SECONDS), count the attempt, mark it ``processing`` and record an
   ``EventAttempt`` - all in one short transaction, for all the events of a task message at once;
2. run the handler inside a transaction that also marks the event ``processed``, so the handler's own
   database writes commit together with the status, and only if the attempt is still the current one;
3. on an exception: ``EventRejected`` fails the event at once; anything else is ``retrying`` with
   exponential backoff and jitter until EVENT_MAX_ATTEMPTS, then ``failed``.

A worker that dies mid-handler leaves the event ``processing``: the sweeper (and acks_late redelivery)
re-runs it once it is older than EVENT_SWEEP_AFTER_SECONDS, as a new attempt.
"""

import copy
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from events import registry
from events.dispatch import event_enqueue, events_dispatch
from events.intake.envelope import Envelope
from events.intake.store import events_store
from events.metrics import handler_run_observe
from events.models import EventAttempt, EventStatus, OutboxEvent, ReceivedEvent
from events.selectors import event_stored
from orchestrator import telemetry
from orchestrator.errors import ConflictError
from orchestrator.redaction import redact, redact_text

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4000
# A retry message may arrive slightly before its ETA (clock skew between hosts).
DUE_TOLERANCE = timedelta(seconds=2)


# --- Receiving ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveResult:
    event_id: str
    pk: int
    created: bool


def event_receive(*, envelope: Envelope) -> ReceiveResult:
    """Store a validated event once; answer duplicates; refuse the same id with another body (409).

    With INTAKE_GROUP_COMMIT the row is written by this process's group-commit writer together with the
    events other requests are accepting at the same moment (one statement, one commit); either way this
    returns only once the row is committed. Processing is dispatched after the commit.
    Safe under concurrency: racing inserts of one id end with one row (the unique index decides) and the
    losers read the winner's row.
    """
    if settings.INTAKE_GROUP_COMMIT:
        from events.intake.group_commit import intake_writer

        pk = intake_writer.store(envelope)
    else:
        pk = events_store([envelope])[0]
        if pk is not None:
            transaction.on_commit(lambda: events_dispatch([pk], from_intake=True))
    if pk is not None:
        return ReceiveResult(event_id=envelope.event_id, pk=pk, created=True)
    existing = event_stored(event_id=envelope.event_id)
    if existing is None:  # a conflicting insert that rolled back: nothing is stored, EventBridge retries
        raise ConflictError("The event is being stored concurrently; retry.", code="event_in_flight")
    if existing["body_sha256"] != envelope.body_sha256:
        raise ConflictError(
            "An event with this id was already received with a different body.",
            code="event_id_conflict",
            fields={"id": ["Already received with a different body."]},
        )
    return ReceiveResult(event_id=envelope.event_id, pk=existing["pk"], created=False)


def event_store_internal(*, envelope: Envelope) -> int | None:
    """Store an event the orchestrator produced itself (e.g. a build outcome read from CodeBuild's own event),
    in the caller's transaction, processed after commit like any received event. None when its id is already
    stored (a re-run produced it again)."""
    pk = events_store([envelope])[0]
    if pk is not None:
        transaction.on_commit(lambda: events_dispatch([pk]))
    return pk


# --- Processing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessOutcome:
    """What one call of ``event_process`` did."""

    outcome: str  # "skipped" | "succeeded" | "failed" | "rejected" | "superseded"
    attempt: int | None = None
    retry_in: float | None = None
    reason: str = ""


class _AttemptSuperseded(Exception):
    """The event was re-claimed (this attempt was presumed dead): roll this attempt's work back."""


def retry_delay(*, attempt: int) -> float:
    """Exponential backoff with full jitter: uniform in [base*2^(n-1)/2, base*2^(n-1)], capped."""
    ceiling = min(
        float(settings.EVENT_RETRY_BACKOFF_MAX_SECONDS),
        float(settings.EVENT_RETRY_BACKOFF_SECONDS) * (2 ** max(attempt - 1, 0)),
    )
    return random.uniform(ceiling / 2, ceiling)


def _stale_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.EVENT_SWEEP_AFTER_SECONDS)


def _error_text(error: BaseException) -> str:
    text = f"{error.__class__.__name__}: {error}"
    return redact_text(text)[:MAX_ERROR_CHARS]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def _claim_refusal(*, event: ReceivedEvent, now: datetime) -> ProcessOutcome | None:
    """Why the locked ``event`` is not run now (None: it is due). An attempt abandoned by a dead worker is
    closed here, and the event fails when that was its last attempt."""
    if event.status in (EventStatus.PROCESSED, EventStatus.FAILED):
        return ProcessOutcome("skipped", reason=f"already {event.status}")
    if event.status == EventStatus.RETRYING and event.next_attempt_at and event.next_attempt_at > now + DUE_TOLERANCE:
        return ProcessOutcome("skipped", reason="retry not due yet")
    if event.status == EventStatus.PROCESSING:
        if event.started_at and event.started_at > _stale_before(now):
            return ProcessOutcome("skipped", reason="another worker is processing it")
        # The previous attempt's worker is gone (killed, lost): close that attempt and run again.
        EventAttempt.objects.filter(event=event, outcome=EventAttempt.Outcome.RUNNING).update(
            outcome=EventAttempt.Outcome.FAILED,
            error="Abandoned: the worker did not finish within EVENT_SWEEP_AFTER_SECONDS.",
            finished_at=now,
        )
        if event.attempts - event.attempts_base >= settings.EVENT_MAX_ATTEMPTS:
            event.status = EventStatus.FAILED
            event.last_error = "Abandoned by its worker and out of attempts."
            event.finished_at = now
            event.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
            return ProcessOutcome("failed", attempt=event.attempts, reason="abandoned, out of attempts")
    return None


Claimed = tuple[ReceivedEvent, EventAttempt]


def _events_claim(*, event_pks: Sequence[int]) -> dict[int, Claimed | ProcessOutcome]:
    """Claim the due ones of these events in one short transaction: lock them (in id order, so racing claims
    of overlapping batches cannot deadlock), count an attempt on each due one with one ``UPDATE`` and record
    their ``EventAttempt`` rows with one ``INSERT``. The others get the reason they are not run."""
    results: dict[int, Claimed | ProcessOutcome] = {}
    with transaction.atomic():
        locked = {
            event.pk: event
            for event in ReceivedEvent.objects.select_for_update().filter(pk__in=event_pks).order_by("pk")
        }
        now = timezone.now()
        due: list[ReceivedEvent] = []
        for pk in dict.fromkeys(event_pks):
            event = locked.get(pk)
            refusal = (
                ProcessOutcome("skipped", reason="no such event")
                if event is None
                else _claim_refusal(event=event, now=now)
            )
            if refusal is not None:
                results[pk] = refusal
            elif event is not None:
                due.append(event)
        if not due:
            return results
        ReceivedEvent.objects.filter(pk__in=[event.pk for event in due]).update(
            attempts=F("attempts") + 1,
            status=EventStatus.PROCESSING,
            started_at=now,
            next_attempt_at=None,
            replay_requested_by=None,
            replay_requested_at=None,
            updated_at=now,
        )
        attempts = []
        for event in due:  # the rows are locked: their new values are known without reading them back
            attempts.append(
                EventAttempt(event=event, number=event.attempts + 1, requested_by_id=event.replay_requested_by_id)
            )
            event.attempts += 1
            event.status, event.started_at, event.next_attempt_at, event.updated_at = (
                EventStatus.PROCESSING,
                now,
                None,
                now,
            )
            event.replay_requested_by, event.replay_requested_at = None, None
        for event, attempt in zip(due, EventAttempt.objects.bulk_create(attempts), strict=True):
            results[event.pk] = (event, attempt)
    return results


def _event_finish_success(*, event_pk: int, attempt: EventAttempt, result: Any) -> None:
    """Inside the handler's transaction: mark processed, or roll the handler back if superseded. One
    conditional ``UPDATE`` both locks the row and checks that this attempt is still the current one."""
    now = timezone.now()
    current = ReceivedEvent.objects.filter(pk=event_pk, status=EventStatus.PROCESSING, attempts=attempt.number).update(
        status=EventStatus.PROCESSED,
        result=redact(_jsonable(result)),  # for staff to read; nothing reads it back in plain
        last_error="",
        finished_at=now,
        updated_at=now,
    )
    if not current:
        raise _AttemptSuperseded
    EventAttempt.objects.filter(pk=attempt.pk).update(outcome=EventAttempt.Outcome.SUCCEEDED, finished_at=now)


def _lock_if_current(*, event_pk: int, attempt: EventAttempt) -> ReceivedEvent | None:
    event = ReceivedEvent.objects.select_for_update().get(pk=event_pk)
    if event.status != EventStatus.PROCESSING or event.attempts != attempt.number:
        return None
    return event


def _event_finish_failure(
    *, event_pk: int, attempt: EventAttempt, error: BaseException, rejected: bool
) -> ProcessOutcome:
    text = _error_text(error)
    with transaction.atomic():
        now = timezone.now()
        attempt.outcome = EventAttempt.Outcome.REJECTED if rejected else EventAttempt.Outcome.FAILED
        attempt.error = text
        attempt.finished_at = now
        attempt.save(update_fields=["outcome", "error", "finished_at"])
        event = _lock_if_current(event_pk=event_pk, attempt=attempt)
        if event is None:
            return ProcessOutcome("superseded", attempt=attempt.number, reason=text)
        event.last_error = text
        used = event.attempts - event.attempts_base
        if rejected or used >= settings.EVENT_MAX_ATTEMPTS:
            event.status = EventStatus.FAILED
            event.finished_at = now
            event.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
            return ProcessOutcome("rejected" if rejected else "failed", attempt=attempt.number, reason=text)
        delay = retry_delay(attempt=used)
        event.status = EventStatus.RETRYING
        event.next_attempt_at = now + timedelta(seconds=delay)
        event.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
    return ProcessOutcome("failed", attempt=attempt.number, retry_in=delay, reason=text)


def event_process(*, event_pk: int) -> ProcessOutcome:
    """Run the event's handler if it is due; safe to call any number of times, from racing workers."""
    return _claimed_run(_events_claim(event_pks=[event_pk])[event_pk])


def _claimed_run(claimed: Claimed | ProcessOutcome) -> ProcessOutcome:
    if isinstance(claimed, ProcessOutcome):
        return claimed
    event, attempt = claimed
    started = time.perf_counter()
    outcome = _event_handle(event=event, attempt=attempt)
    handler_run_observe(detail_type=event.detail_type, outcome=outcome.outcome, seconds=time.perf_counter() - started)
    return outcome


def _event_handle(*, event: ReceivedEvent, attempt: EventAttempt) -> ProcessOutcome:
    """Run the claimed event's handler and record how the attempt ended."""
    event_pk = event.pk
    event_type = registry.get(event.detail_type)
    try:
        if event_type is None:
            raise LookupError(f"No handler registered for detail-type {event.detail_type!r}.")
        with transaction.atomic():
            result = event_type.handler(event, copy.deepcopy(event.detail))
            _event_finish_success(event_pk=event_pk, attempt=attempt, result=result)
    except _AttemptSuperseded:
        logger.warning("event attempt superseded; its work was rolled back", extra={"event_pk": event_pk})
        EventAttempt.objects.filter(pk=attempt.pk).update(
            outcome=EventAttempt.Outcome.FAILED, error="Superseded by a newer attempt.", finished_at=timezone.now()
        )
        return ProcessOutcome("superseded", attempt=attempt.number)
    except registry.EventRejected as error:
        logger.warning("event rejected by its handler: %s", error, extra={"event_pk": event_pk})
        return _event_finish_failure(event_pk=event_pk, attempt=attempt, error=error, rejected=True)
    except Exception as error:
        logger.exception("event handler failed", extra={"event_pk": event_pk, "attempt": attempt.number})
        return _event_finish_failure(event_pk=event_pk, attempt=attempt, error=error, rejected=False)
    logger.info(
        "event %s %s processed (tenant %s)",
        event_pk,
        event.detail_type,
        event.tenant_id or "-",
        extra={"event_pk": event_pk, "attempt": attempt.number},
    )
    return ProcessOutcome("succeeded", attempt=attempt.number)


def event_run(*, event_pk: int, trace_parent: dict[str, str] | None = None) -> ProcessOutcome:
    """``event_process``, then schedule the next attempt when the handler failed and may retry. Traced as a span
    of the request that accepted the event when ``trace_parent`` (its context) is given, else of the task."""
    return events_run(event_pks=[event_pk], trace_parents={event_pk: trace_parent} if trace_parent else None)[0]


def events_run(
    *, event_pks: Sequence[int], trace_parents: dict[int, dict[str, str]] | None = None
) -> list[ProcessOutcome]:
    """``event_run`` for a few events accepted together: claimed together (one transaction), then each one's
    handler in order, in its own transaction, as its own span (continuing ``trace_parents[pk]`` when given)."""
    claims = _events_claim(event_pks=event_pks)
    outcomes = []
    for event_pk in event_pks:
        parent = (trace_parents or {}).get(event_pk)
        with telemetry.span("events.process", parent=parent, attributes={"orchestrator.event.pk": event_pk}) as span:
            # A message naming an event twice runs it once: the repeat finds its claim taken.
            outcome = _claimed_run(claims.pop(event_pk, ProcessOutcome("skipped", reason="already run in this batch")))
            span.set_attribute("orchestrator.event.outcome", outcome.outcome)
            if outcome.retry_in is not None:
                event_enqueue(event_pk=event_pk, countdown=outcome.retry_in)
        outcomes.append(outcome)
    return outcomes


# --- Replay and sweeping --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    event: ReceivedEvent
    queued: bool  # False: a replay (or first run) was already waiting; nothing new was queued
    message: str


def event_replay(*, event_pk: int, user: "User | None") -> ReplayResult:
    """Queue the event to run through its handler again, as a new attempt requested by ``user``.

    Idempotent: an event already waiting to run is left alone ("already queued"). An event a worker is
    running right now is a conflict.
    """
    with transaction.atomic():
        event = ReceivedEvent.objects.select_for_update().get(pk=event_pk)
        now = timezone.now()
        if event.status == EventStatus.PROCESSING and event.started_at and event.started_at > _stale_before(now):
            raise ConflictError("The event is being processed right now; replay it after it finishes.", code="busy")
        if event.status == EventStatus.ACCEPTED:
            return ReplayResult(event=event, queued=False, message="Already queued; it will run shortly.")
        event.status = EventStatus.ACCEPTED
        event.attempts_base = event.attempts
        event.next_attempt_at = None
        event.finished_at = None
        event.replay_requested_by = user if user is not None and user.pk else None
        event.replay_requested_at = now
        event.save(
            update_fields=[
                "status",
                "attempts_base",
                "next_attempt_at",
                "finished_at",
                "replay_requested_by",
                "replay_requested_at",
                "updated_at",
            ]
        )
        event_enqueue(event_pk=event.pk)
    logger.info("event replay requested", extra={"event_pk": event.pk, "user_id": getattr(user, "pk", None)})
    event.refresh_from_db()
    return ReplayResult(event=event, queued=True, message="Replay queued.")


def events_sweep_stale(*, limit: int = 500) -> list[int]:
    """Re-enqueue events that should have finished: accepted or due for retry for longer than
    EVENT_SWEEP_AFTER_SECONDS (lost message, broker outage), or processing that long (dead worker)."""
    now = timezone.now()
    stale = _stale_before(now)
    due = (
        Q(status=EventStatus.ACCEPTED, updated_at__lte=stale)
        | Q(status=EventStatus.RETRYING, next_attempt_at__lte=stale)
        | Q(status=EventStatus.RETRYING, next_attempt_at__isnull=True, updated_at__lte=stale)
        | Q(status=EventStatus.PROCESSING, started_at__lte=stale)
    )
    pks = list(ReceivedEvent.objects.filter(due).order_by("pk").values_list("pk", flat=True)[:limit])
    if not pks:
        return []
    with transaction.atomic():
        # Not again before another EVENT_SWEEP_AFTER_SECONDS, even if the queue is slow to drain.
        ReceivedEvent.objects.filter(pk__in=pks, status=EventStatus.ACCEPTED).update(updated_at=now)
        ReceivedEvent.objects.filter(pk__in=pks, status=EventStatus.RETRYING).update(
            next_attempt_at=now, updated_at=now
        )
        transaction.on_commit(lambda: events_dispatch(pks))
    logger.info("sweeper re-enqueued %d events", len(pks))
    return pks


# --- Publishing -----------------------------------------------------------------------------------


def outbox_publish(
    *,
    detail_type: str,
    detail: dict[str, Any],
    tenant_id: str = "",
    source: str | None = None,
    event_bus: str | None = None,
) -> OutboxEvent:
    """Store an event to emit to EventBridge in the caller's transaction; it is sent after commit.

    ``source`` and ``event_bus`` default to EVENT_SOURCE and EVENT_BUS_NAME (another control plane's
    dialect answers on its own bus, with its own source).

    The row survives EventBridge (or the broker) being down: the ``events.publish_pending_outbox`` beat
    task re-sends pending rows until they are sent.
    """
    entry = OutboxEvent.objects.create(
        detail_type=detail_type,
        source=source or settings.EVENT_SOURCE,
        detail=_jsonable(detail),
        event_bus=event_bus or settings.EVENT_BUS_NAME,
        tenant_id=tenant_id,
    )

    def send() -> None:
        from events.tasks import publish_outbox

        try:
            publish_outbox.delay(outbox_pk=entry.pk)
        except Exception as error:  # broker down (or, eagerly, EventBridge down): the beat task re-sends
            logger.warning(
                "outbox send not started; the beat task will retry: %s",
                error.__class__.__name__,
                extra={"outbox_pk": entry.pk},
            )

    transaction.on_commit(send)
    return entry
