"""The attempt engine: one attempt of each due delivery, sent in parallel, its answer recorded, the
delivery retried, finished or its chain moved on."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from orchestrator.http import OutboundRefused
from orchestrator.model_columns import column_name, concrete_field
from orchestrator.redaction import redact_text
from tenants.models import TenantHistory
from webhooks import circuit
from webhooks.concurrency import busy_delay, slot_acquire
from webhooks.delivery import (
    Verdict,
    request_build,
    response_text,
    retry_delay,
    verdict_for_error,
    verdict_for_response,
)
from webhooks.metrics import delivery_attempts_observe
from webhooks.models import (
    SENDABLE_STATUSES,
    AttemptOutcome,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryStep,
    WebhookDelivery,
)
from webhooks.sending import InFlight, Sent, sent_in_groups
from webhooks.services.chain import deployment_advance
from webhooks.services.dispatch import EARLY_TOLERANCE, deliveries_publish, delivery_enqueue_if_due
from webhooks.services.endpoints import endpoint_disable, url_display
from webhooks.services.history import delivery_history_entry, delivery_history_record
from webhooks.services.operations import (
    delivery_exhausted_notify,
    endpoint_circuit_opened_notify,
    endpoint_disabled_notify,
)
from webhooks.services.pipeline_steps import is_step_callback, step_delivery_finished

logger = logging.getLogger(__name__)


def _locked(queryset: QuerySet) -> QuerySet:
    """Row lock on the model's own table only (PostgreSQL refuses FOR UPDATE on nullable outer joins)."""
    return queryset.select_for_update(of=("self",))


def _lease() -> timedelta:
    """How long a RUNNING attempt may be in flight before another worker may take the delivery over."""
    return timedelta(seconds=settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_READ_TIMEOUT + 30)


# What another worker or staff may change while an attempt's request is in flight (retry, settle, cancel).
_CHANGED_MEANWHILE = ("status", "status_reason", "attempts", "round_attempts", "next_attempt_at", "finished_at")


def _relock(delivery: WebhookDelivery) -> WebhookDelivery:
    """Lock the row again and refresh what may have changed since it was loaded, keeping its endpoint and
    tenant: much cheaper than loading the row, its relations and its encrypted fields once more."""
    current = _locked(WebhookDelivery.objects.filter(pk=delivery.pk)).values(*_CHANGED_MEANWHILE).get()
    for name, value in current.items():
        setattr(delivery, name, value)
    return delivery


def _known_secrets(delivery: WebhookDelivery) -> list[str]:
    secrets = [delivery.signing_secret.reveal(), delivery.signing_context.reveal()]
    if delivery.endpoint is not None:
        secrets += [delivery.endpoint.secret.reveal(), delivery.endpoint.previous_secret.reveal()]
        for value in (delivery.endpoint.custom_headers or {}).values():  # credentials, e.g. "Bearer <token>"
            secrets += [str(value), str(value).rsplit(" ", 1)[-1]]
    return [secret for secret in secrets if secret]


def delivery_attempt(*, delivery_id: int) -> DeliveryAttempt | None:
    """One attempt of one delivery (``deliveries_attempt`` for one id): the attempt, or None if not sent."""
    attempts = deliveries_attempt(delivery_ids=[delivery_id])
    return attempts[0] if attempts else None


def deliveries_attempt(*, delivery_ids: list[int]) -> list[DeliveryAttempt]:
    """Send one attempt of each delivery that is due; record them; schedule retries or move chains on.

    Idempotent: a delivery that is done, not yet due, or being sent by another worker is left alone, so a
    duplicate or early task is harmless. An attempt left RUNNING by a killed worker is marked interrupted
    and the delivery is re-sent with the same ``webhook-id``. The requests go out in parallel and their
    answers are recorded in groups as they arrive (``webhooks.sending``).
    """
    flights = _attempts_start(delivery_ids=delivery_ids, now=timezone.now())
    for group in sent_in_groups(flights):
        _attempts_conclude(group)
    return [flight.attempt for flight in flights]


def _in_flight_elsewhere(deliveries: list[WebhookDelivery], now: datetime) -> set[int]:
    """Deliveries whose attempt another worker is sending (within its lease); older RUNNING attempts were
    lost with their worker and are marked interrupted. Only a delivery attempted before can have one."""
    tried = [delivery.pk for delivery in deliveries if delivery.attempts]
    if not tried:
        return set()
    running = DeliveryAttempt.objects.filter(delivery_id__in=tried, outcome=AttemptOutcome.RUNNING)
    busy = set(running.filter(started_at__gt=now - _lease()).values_list("delivery_id", flat=True))
    running.exclude(delivery_id__in=busy).update(
        outcome=AttemptOutcome.INTERRUPTED, error="the worker was lost mid-request; sent again"
    )
    return busy


def _attempts_start(*, delivery_ids: list[int], now: datetime) -> list[InFlight]:
    """In one transaction: lock the deliveries, pick those to send now, record their attempts as started."""
    flights: list[InFlight] = []
    try:
        with transaction.atomic():
            deliveries = list(
                _locked(WebhookDelivery.objects.select_related("endpoint", "tenant"))
                .filter(pk__in=delivery_ids)
                .order_by("pk")  # one lock order for every worker: no deadlocks between overlapping batches
            )
            due = [
                delivery
                for delivery in deliveries
                if delivery.status in SENDABLE_STATUSES
                and (delivery.next_attempt_at is None or delivery.next_attempt_at <= now + EARLY_TOLERANCE)
            ]
            in_flight = _in_flight_elsewhere(due, now)
            endpoint_busy: list[int] = []
            held: list[WebhookDelivery] = []
            probes: set[int] = set()
            for delivery in due:
                if delivery.pk in in_flight:
                    continue
                if delivery.step == DeliveryStep.SUBSCRIBER and (
                    delivery.endpoint is None or not delivery.endpoint.is_active
                ):
                    reason = "the endpoint was disabled or deleted; not sent"
                    _delivery_finish(delivery=delivery, status=DeliveryStatus.CANCELLED, reason=reason)
                elif not _circuit_allows(delivery, now=now, probes=probes):
                    held.append(delivery)
                elif delivery.endpoint_id is not None and not slot_acquire(
                    endpoint_id=delivery.endpoint_id, delivery_id=delivery.pk, lease_seconds=_lease().total_seconds()
                ):
                    endpoint_busy.append(delivery.pk)
                else:
                    flights.append(_attempt_prepare(delivery=delivery, now=now))
            if held:
                _deliveries_hold(held, now=now)
            if endpoint_busy:
                # Their endpoints already have their share of requests in flight: these come back together in a
                # moment (a short delayed message, which spreads them out; the dispatcher's passes would meet
                # the busy endpoints again), keeping no thread waiting.
                delay = busy_delay()
                transaction.on_commit(lambda: deliveries_publish(endpoint_busy, countdown=delay))
            if flights:
                DeliveryAttempt.objects.bulk_create([flight.attempt for flight in flights])
                WebhookDelivery.objects.filter(pk__in=[flight.delivery.pk for flight in flights]).update(
                    attempts=F("attempts") + 1,
                    round_attempts=F("round_attempts") + 1,
                    last_attempt_at=now,
                    updated_at=now,
                )
    except BaseException:
        for flight in flights:  # nothing was recorded: free the endpoints' slots at once
            flight.slot_free()
        raise
    return flights


def _circuit_allows(delivery: WebhookDelivery, *, now: datetime, probes: set[int]) -> bool:
    """Whether the endpoint's circuit lets this delivery go: always while closed; while half-open only as the
    endpoint's one probe (claimed here, one per endpoint); never while open."""
    endpoint = delivery.endpoint
    if endpoint is None or not circuit.is_tripped(endpoint):
        return True
    if endpoint.pk in probes or circuit.is_open(endpoint, now):
        return False
    if circuit.probe_claim(endpoint=endpoint, now=now, lease=_lease()):
        probes.add(endpoint.pk)
        return True
    return False


def _deliveries_hold(deliveries: list[WebhookDelivery], *, now: datetime) -> None:
    """Deliveries whose endpoint's circuit is open wait, unsent and with no attempt spent, until it closes
    (the dispatcher sends one as the probe meanwhile); one older than WEBHOOK_RETRY_WINDOW fails instead."""
    oldest = now - timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW)
    waiting: dict[circuit.Held, list[int]] = {}
    for delivery in deliveries:
        endpoint = delivery.endpoint
        assert endpoint is not None  # held by its endpoint's circuit (``_circuit_allows``)
        held = circuit.held_back(endpoint)
        if delivery.created_at < oldest:
            reason = f"gave up: {held.reason.split(':', 1)[0]} for longer than the retry window"
            _delivery_finish(delivery=delivery, status=DeliveryStatus.FAILED, reason=reason)
        else:
            waiting.setdefault(held, []).append(delivery.pk)
    for held, delivery_ids in waiting.items():
        WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
            status=DeliveryStatus.RETRYING, status_reason=held.reason, next_attempt_at=held.until, updated_at=now
        )


def _attempt_prepare(*, delivery: WebhookDelivery, now: datetime) -> InFlight:
    """The attempt to record for a due delivery about to be sent (its endpoint's slot, if any, is held)."""
    refusal: OutboundRefused | None = None
    request = None
    try:
        request = request_build(delivery=delivery, now=now)
    except OutboundRefused as error:
        refusal = error
    delivery.attempts += 1
    delivery.round_attempts += 1
    delivery.last_attempt_at = now
    attempt = DeliveryAttempt(
        delivery=delivery,
        number=delivery.attempts,
        url=delivery.url,
        request_headers=request.headers_for_display() if request else {},
        started_at=now,
    )
    return InFlight(delivery, attempt, request, refusal, _known_secrets(delivery))


def _attempts_conclude(group: list[Sent]) -> None:
    """Record a group of answers in one transaction: each attempt's result and its delivery's next state."""
    group = sorted(group, key=lambda sent: sent.flight.delivery.pk)  # the lock order of _attempts_start
    with transaction.atomic():
        changed = {
            row.pop("pk"): row
            for row in _locked(WebhookDelivery.objects.filter(pk__in=[sent.flight.delivery.pk for sent in group]))
            .order_by("pk")
            .values("pk", *_CHANGED_MEANWHILE)
        }
        stale = False  # a chain moved on or an endpoint was disabled: other rows may have changed too
        verdicts = []
        delivered: list[_Delivered] = []
        for sent in group:
            delivery = sent.flight.delivery
            if stale:
                _relock(delivery)
            else:
                for name, value in changed.get(delivery.pk, {}).items():
                    setattr(delivery, name, value)
            verdict = _attempt_result(sent)
            verdicts.append(verdict)
            _delivery_conclude(delivery=delivery, attempt=sent.flight.attempt, verdict=verdict, delivered=delivered)
            stale = stale or delivery.deployment_id is not None or verdict.kind == "gone"
        _deliveries_finish_delivered(delivered)
        _attempt_results_save([sent.flight.attempt for sent in group])
    opened = circuit.circuits_record(
        [
            (sent.flight.delivery.endpoint, _reached(sent, verdict))
            for sent, verdict in zip(group, verdicts, strict=True)
            if sent.flight.delivery.endpoint is not None
        ],
        now=timezone.now(),
    )
    for endpoint_id in opened:
        with transaction.atomic():
            endpoint_circuit_opened_notify(endpoint_id=endpoint_id)
    delivery_attempts_observe((sent.flight.delivery, sent.flight.attempt) for sent in group)
    for sent, verdict in zip(group, verdicts, strict=True):
        delivery, attempt = sent.flight.delivery, sent.flight.attempt
        logger.info(
            "delivery %s (%s to %s) attempt %s: %s -> %s",
            delivery.pk,
            delivery.step,
            url_display(delivery.url),
            attempt.number,
            verdict.reason,
            delivery.status,
        )


def _reached(sent: Sent, verdict: Verdict) -> bool | None:
    """For the circuit breaker: True if the receiver took it, False if nothing answered or it failed with a
    5xx, None for any other answer (the receiver is up, it refused this one)."""
    if verdict.kind == "succeeded":
        return True
    if sent.flight.refusal is not None:  # refused before sending (SSRF guard): says nothing about the receiver
        return None
    if sent.response is None:
        return False
    return False if sent.response.status >= 500 else None


def _attempt_result(sent: Sent) -> Verdict:
    """Fill the attempt's result fields from the answer (or the error); the verdict on it."""
    attempt, response, error = sent.flight.attempt, sent.response, sent.error
    if response is not None:
        attempt.duration_ms = response.duration_ms
        attempt.status_code = response.status
        attempt.response_body = response_text(response, secrets=sent.flight.secrets)
        attempt.response_truncated = response.truncated
        sent.flight.delivery.last_status_code = response.status
    else:
        attempt.duration_ms = int((timezone.now() - attempt.started_at).total_seconds() * 1000)
    if error is not None:
        attempt.error = redact_text(str(error), sent.flight.secrets)[:2000]
    if response is not None:
        return verdict_for_response(response)
    assert error is not None  # send() records an answer or an error (a refused request's refusal)
    return verdict_for_error(error)


# What an attempt learns once the answer (or the error) is in; the request side was stored at its start.
ATTEMPT_RESULT_FIELDS = [
    "duration_ms",
    "status_code",
    "response_body",
    "response_truncated",
    "error",
    "outcome",
    "retry_at",
]


def _attempt_results_save(attempts: list[DeliveryAttempt]) -> None:
    """Write the results of a group of attempts. On PostgreSQL with one ``UPDATE ... FROM (VALUES ...)``:
    Django's ``bulk_update`` builds a CASE expression per field and row, which took a quarter of a delivery
    worker's CPU."""
    if len(attempts) == 1:
        attempts[0].save(update_fields=ATTEMPT_RESULT_FIELDS)
        return
    if connection.vendor != "postgresql":
        DeliveryAttempt.objects.bulk_update(attempts, ATTEMPT_RESULT_FIELDS)
        return
    meta = DeliveryAttempt._meta
    fields = [meta.pk, *(concrete_field(DeliveryAttempt, name) for name in ATTEMPT_RESULT_FIELDS)]
    columns = [connection.ops.quote_name(column_name(field)) for field in fields]
    row = "(" + ", ".join(f"%s::{field.cast_db_type(connection)}" for field in fields) + ")"
    assignments = ", ".join(f"{column} = v.{column}" for column in columns[1:])
    # Identifiers and types come from the model's metadata, values are parameters: nothing user-supplied is spliced.
    sql = (
        f"UPDATE {connection.ops.quote_name(meta.db_table)} AS attempt SET {assignments} "  # noqa: S608
        f"FROM (VALUES {', '.join([row] * len(attempts))}) AS v({', '.join(columns)}) "
        f"WHERE attempt.{columns[0]} = v.{columns[0]}"
    )
    params = [
        field.get_db_prep_save(getattr(attempt, field.attname), connection) for attempt in attempts for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@dataclass(frozen=True)
class _Delivered:
    delivery: WebhookDelivery
    reason: str
    attempt: DeliveryAttempt


def _delivery_conclude(
    *, delivery: WebhookDelivery, attempt: DeliveryAttempt, verdict: Verdict, delivered: list[_Delivered] | None = None
) -> None:
    """Set the attempt's outcome (saved by the caller) and move the delivery on, if it is still current.
    A subscriber delivery that succeeded goes to ``delivered``, when given, to be recorded with its group."""
    current = delivery.status in SENDABLE_STATUSES  # else another worker or staff already settled it
    if verdict.kind == "succeeded":
        attempt.outcome = AttemptOutcome.SUCCEEDED
        if current and delivered is not None and delivery.deployment_id is None and not is_step_callback(delivery):
            delivered.append(_Delivered(delivery, verdict.reason, attempt))
        elif current:
            _delivery_finish(delivery=delivery, status=DeliveryStatus.SUCCEEDED, reason=verdict.reason, attempt=attempt)
        return
    if verdict.kind == "retry":
        delay = retry_delay(failures=delivery.round_attempts, retry_after=verdict.retry_after)
        if delay is not None:
            retry_at = timezone.now() + timedelta(seconds=delay)
            attempt.outcome = AttemptOutcome.RETRY
            attempt.retry_at = retry_at
            if current:
                first_failure = delivery.status != DeliveryStatus.RETRYING
                delivery.status = DeliveryStatus.RETRYING
                delivery.status_reason = (
                    f"{verdict.reason}; attempt {delivery.round_attempts + 1} at {retry_at:%H:%M:%S}"
                )
                delivery.next_attempt_at = retry_at
                delivery.save(update_fields=["status", "status_reason", "next_attempt_at", "updated_at"])
                delivery_enqueue_if_due(delivery)
                if first_failure:
                    delivery_history_record(
                        delivery=delivery, summary=f"failed ({verdict.reason}); retrying", attempt=attempt
                    )
            return
        verdict = Verdict("failed", f"gave up after {delivery.round_attempts} attempts; last: {verdict.reason}")
    attempt.outcome = AttemptOutcome.REFUSED if verdict.reason.startswith("refused") else AttemptOutcome.FAILED
    if not current:
        return
    if verdict.kind == "gone" and delivery.endpoint is not None:
        endpoint_disable(endpoint=delivery.endpoint, reason="the receiver answered 410 Gone")
        endpoint_disabled_notify(endpoint=delivery.endpoint)
        _delivery_finish(
            delivery=delivery,
            status=DeliveryStatus.CANCELLED,
            reason=f"{verdict.reason}; endpoint disabled",
            attempt=attempt,
        )
        return
    _delivery_finish(delivery=delivery, status=DeliveryStatus.FAILED, reason=verdict.reason, attempt=attempt)


def _deliveries_finish_delivered(delivered: list[_Delivered]) -> None:
    """Record subscriber deliveries that succeeded in one group together: one UPDATE per answer (HTTP 200,
    204, ...) and one INSERT of their timeline entries, instead of two statements per delivery (which were
    the largest part of a delivery worker's database work). Chain deliveries go one by one: each moves its
    deployment on."""
    if not delivered:
        return
    now = timezone.now()
    by_reason: dict[str, list[int]] = {}
    for item in delivered:
        delivery = item.delivery
        delivery.status, delivery.status_reason = DeliveryStatus.SUCCEEDED, item.reason
        delivery.next_attempt_at, delivery.finished_at = None, now
        by_reason.setdefault(item.reason, []).append(delivery.pk)
    for reason, delivery_ids in by_reason.items():
        WebhookDelivery.objects.filter(pk__in=delivery_ids).update(
            status=DeliveryStatus.SUCCEEDED, status_reason=reason, next_attempt_at=None, finished_at=now, updated_at=now
        )
    entries = [
        delivery_history_entry(delivery=item.delivery, summary=f"delivered ({item.reason})", attempt=item.attempt)
        for item in delivered
    ]
    TenantHistory.objects.bulk_create([entry for entry in entries if entry is not None])


def _delivery_finish(
    *, delivery: WebhookDelivery, status: str, reason: str, attempt: DeliveryAttempt | None = None
) -> None:
    delivery.status = status
    delivery.status_reason = reason
    delivery.next_attempt_at = None
    delivery.finished_at = timezone.now()
    delivery.save(update_fields=["status", "status_reason", "next_attempt_at", "finished_at", "updated_at"])
    labels: dict[str, str] = {DeliveryStatus.SUCCEEDED: "delivered", DeliveryStatus.FAILED: "failed for good"}
    label = labels.get(status, status)
    delivery_history_record(delivery=delivery, summary=f"{label} ({reason})", attempt=attempt)
    if status == DeliveryStatus.FAILED:
        delivery_exhausted_notify(delivery=delivery)
    if delivery.deployment_id is not None:
        deployment_advance(deployment_id=delivery.deployment_id)  # locked and read there, not here
    elif is_step_callback(delivery):
        step_delivery_finished(delivery=delivery)
