"""Writes for the webhook engine: deployment chains, deliveries, staff retries, endpoints.

The shape of a chain: ``deployment_start`` writes every delivery (one per step, one per subscriber)
before anything is sent, then ``deployment_advance`` starts the first step. Deliveries are sent by
delivery tasks (``deliveries_attempt``, several in parallel); when one succeeds the chain advances, when
one fails for good the chain stops (later steps BLOCKED, tenant DEPLOY_FAILED) until staff retry it
(``delivery_retry``). A retry waits in the database until beat's dispatcher queues it.
"""

import base64
import binascii
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from events.catalogue import DetailType
from events.models import ReceivedEvent
from events.registry import EventRejected
from events.services import outbox_publish
from orchestrator.errors import ApplicationError, ConflictError
from orchestrator.http import OutboundError, OutboundRefused, url_check
from orchestrator.redaction import MASK, redact, redact_text
from tenants.models import HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.lifecycle import TransitionRefused, history_entry, history_record, tenant_transition
from webhooks import circuit, payloads
from webhooks.concurrency import busy_delay, slot_acquire, slot_release
from webhooks.delivery import (
    Verdict,
    payload_bytes,
    request_build,
    response_text,
    retry_delay,
    verdict_for_error,
    verdict_for_response,
)
from webhooks.headers import custom_headers_problems
from webhooks.metrics import delivery_attempts_observe
from webhooks.models import (
    DONE_STATUSES,
    SENDABLE_STATUSES,
    AttemptOutcome,
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryStep,
    Deployment,
    DeploymentStatus,
    SigningScheme,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from webhooks.secrets import STANDARD_SECRET_PREFIX, secret_generate
from webhooks.sending import InFlight, Sent, sent_in_groups

logger = logging.getLogger(__name__)

# Marks transitions made by the chain, so the status-change receiver does not notify subscribers twice.
CHAIN_SOURCE = "webhooks.deployment"
SUBSCRIBERS_STEP = "subscribers"
CHAIN_STEP_NAMES = (
    DeliveryStep.APP_PLANE_BOOTSTRAP,
    DeliveryStep.FEATURE_SERVICE_BOOTSTRAP,
    DeliveryStep.CONTROL_PLANE_WEBHOOK,
    SUBSCRIBERS_STEP,
)
# A scheduled attempt may start this early (clock skew between the broker's ETA and the database).
EARLY_TOLERANCE = timedelta(seconds=1)


def url_display(url: str) -> str:
    """A URL for logs and the timeline: no query string or credentials (they may carry tokens)."""
    try:
        parts = urlsplit(url or "")
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid URL)"
    if not parts.scheme:
        return url or ""
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?…" if parts.query else "")


def chain_steps() -> list[str]:
    steps = [str(step).strip() for step in settings.WEBHOOK_CHAIN_STEPS if str(step).strip()]
    unknown = [step for step in steps if step not in CHAIN_STEP_NAMES]
    if unknown:
        raise ApplicationError(f"WEBHOOK_CHAIN_STEPS has unknown steps: {', '.join(unknown)}", code="misconfigured")
    return steps


# --- Enqueueing --------------------------------------------------------------------------------


def delivery_enqueue(*, delivery_id: int) -> None:
    """Queue the delivery's attempt once the current transaction commits.

    Deliveries one transaction enqueues (a fan-out to every subscriber) go out as tasks of up to
    WEBHOOK_DELIVERY_BATCH deliveries, sent in parallel by one worker. A delivery due later (a retry) is
    not enqueued: its ``next_attempt_at`` is enough, the dispatcher queues it once due.
    """
    _due_now.add(delivery_id)


def _enqueue_if_due(delivery: WebhookDelivery) -> None:
    """Queue at once what is already due (a retry without delay); later ones are the dispatcher's."""
    if delivery.next_attempt_at is None or delivery.next_attempt_at <= timezone.now() + EARLY_TOLERANCE:
        delivery_enqueue(delivery_id=delivery.pk)


class _DueNow:
    """The ids a thread's open transaction enqueued, published together when it commits."""

    def __init__(self) -> None:
        self._local = threading.local()

    def add(self, delivery_id: int) -> None:
        batch: list[int] | None = getattr(self._local, "batch", None)
        if batch is not None and self._registered(batch):
            batch.append(delivery_id)
            return
        batch = self._local.batch = [delivery_id]

        def publish() -> None:  # outside a transaction Django runs it at once: the batch is this one id
            self._publish(batch)

        publish.delivery_batch = batch  # type: ignore[attr-defined]
        transaction.on_commit(publish)

    def _registered(self, batch: list[int]) -> bool:
        """Whether ``batch``'s commit hook is still waiting (a rollback discards hooks with their ids)."""
        hooks = transaction.get_connection().run_on_commit
        return any(getattr(hook, "delivery_batch", None) is batch for _, hook, _ in hooks)

    def _publish(self, batch: list[int]) -> None:
        if getattr(self._local, "batch", None) is batch:
            self._local.batch = None
        deliveries_publish(batch)


_due_now = _DueNow()


def deliveries_publish(delivery_ids: list[int], *, countdown: float = 0.0) -> list[int]:
    """Send tasks for these deliveries (after ``countdown`` seconds), WEBHOOK_DELIVERY_BATCH per task; the
    ids sent. A broker outage is logged only: the deliveries are stored, and the dispatcher (retries) or the
    sweeper (everything due for a while) queues them once it is back."""
    from webhooks.tasks import deliver_many

    size = max(1, settings.WEBHOOK_DELIVERY_BATCH)
    published: list[int] = []
    for start in range(0, len(delivery_ids), size):
        chunk = delivery_ids[start : start + size]
        try:
            deliver_many.apply_async(
                kwargs={"delivery_pks": chunk}, countdown=countdown or None, queue=settings.WEBHOOK_QUEUE
            )
        except (KombuOperationalError, OSError) as error:
            logger.warning("deliveries %s not enqueued (%r); they are queued again later", chunk, error)
            continue
        published += chunk
    return published


def deliveries_dispatch_due(*, limit: int = 2000) -> int:
    """Queue the retries that are due and were not queued since they became due; run by beat every
    WEBHOOK_DISPATCH_INTERVAL_SECONDS. (Every other delivery is queued when it becomes due: when it is
    created, its chain step starts or staff retry it.) An endpoint whose circuit is open gets nothing; one
    whose circuit is half-open gets one delivery, its probe (``webhooks.circuit``)."""
    now = timezone.now()
    due = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.RETRYING, next_attempt_at__lte=now)
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=F("next_attempt_at")))
        .order_by("next_attempt_at")
    )
    delivery_ids = list(due.filter(_circuit_closed()).values_list("pk", flat=True)[:limit])
    if circuit.circuit_threshold():
        probing = WebhookEndpoint.objects.filter(
            circuit.not_open(now, prefix=""), consecutive_failures__gte=circuit.circuit_threshold()
        )
        for endpoint_id in probing.values_list("pk", flat=True):
            delivery_ids += due.filter(endpoint_id=endpoint_id).values_list("pk", flat=True)[:1]
    published = deliveries_publish(delivery_ids)
    WebhookDelivery.objects.filter(pk__in=published).update(queued_at=now)
    return len(published)


def _circuit_closed() -> Q:
    """Deliveries without an endpoint, or whose endpoint's circuit is closed."""
    threshold = circuit.circuit_threshold()
    if not threshold:
        return Q()
    return Q(endpoint__isnull=True) | Q(endpoint__consecutive_failures__lt=threshold)


# --- Deployment chain --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Planned:
    step: str
    url: str
    payload: dict[str, Any] | None
    skip_reason: str = ""
    sign_with_context: bool = False


def _tenant_document(*, tenant: Tenant, detail: dict[str, Any]) -> dict[str, Any]:
    document = detail.get("tenant")
    return document if isinstance(document, dict) and document else dict(tenant.document or {"id": tenant.pk})


def _plan_steps(*, tenant: Tenant, detail: dict[str, Any], build_succeeded: bool) -> list[_Planned]:
    document = _tenant_document(tenant=tenant, detail=detail)
    not_built = "" if build_succeeded else "the build did not succeed (CODEBUILD_BUILD_SUCCEEDING=0)"
    planned: list[_Planned] = []
    for step in chain_steps():
        if step == DeliveryStep.APP_PLANE_BOOTSTRAP:
            callback = (detail.get("USER_CALLBACK_ENDPOINT") or "").strip()
            url = callback.replace("user-callback", "bootstrap", 1)
            reason = not_built or ("" if callback else "USER_CALLBACK_ENDPOINT is not set in the build outputs")
            payload = payloads.app_plane_bootstrap_payload(tenant=document, detail=detail)
            planned.append(_Planned(step, url, payload, reason))
        elif step == DeliveryStep.FEATURE_SERVICE_BOOTSTRAP:
            base = (detail.get("APP_PLANE_ENDPOINT_FEATURE_SERVICE") or "").strip()
            url = f"{base.rstrip('/')}/bootstrap" if base else ""
            reason = not_built or ("" if base else "APP_PLANE_ENDPOINT_FEATURE_SERVICE is not set in the build outputs")
            plan = tenant.plan or detail.get("planConfig") or None
            payload = payloads.feature_service_bootstrap_payload(tenant=document, plan=plan)
            planned.append(_Planned(step, url, payload, reason))
        elif step == DeliveryStep.CONTROL_PLANE_WEBHOOK:
            url = (detail.get("API_ENDPOINT") or "").strip()
            reason = "" if url else "API_ENDPOINT is not set in the build outputs"
            payload = payloads.control_plane_webhook_payload(
                tenant_id=tenant.pk, detail=detail, status=1 if build_succeeded else 0
            )
            planned.append(_Planned(step, url, payload, reason, sign_with_context=True))
        else:
            planned.append(_Planned(SUBSCRIBERS_STEP, "", None, not_built))
    return planned


def subscriber_data(*, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    data = {
        "tenant": {"id": tenant.pk, "key": tenant.key, "name": tenant.name, "tier": tenant.tier},
        "status": tenant.status,
    }
    data.update({key: value for key, value in extra.items() if value not in (None, "")})
    return redact(data)


def endpoints_for(event_type: str) -> list[WebhookEndpoint]:
    """Active endpoints subscribed to ``event_type`` (JSON list membership is checked in Python: portable)."""
    return [ep for ep in WebhookEndpoint.objects.filter(is_active=True) if event_type in (ep.events or [])]


def deployment_start(*, event: ReceivedEvent, detail: dict[str, Any]) -> Deployment:
    """Create the chain for a TENANT_DEPLOYMENT event and start step 1. Safe to call again for the same event."""
    document = detail.get("tenant") or {}
    tenant_id = str(document.get("id", "")) if isinstance(document, dict) else ""
    with transaction.atomic():
        existing = Deployment.objects.filter(event=event).first()
        if existing is not None:
            for delivery in existing.deliveries.filter(status__in=SENDABLE_STATUSES):
                delivery_enqueue(delivery_id=delivery.pk)  # a crash after commit may have lost the task
            return existing
        tenant = Tenant.objects.select_for_update(of=("self",)).filter(pk=tenant_id).first()
        if tenant is None:
            raise EventRejected(f"tenant {tenant_id!r} is unknown; nothing to deploy")
        running = Deployment.objects.filter(tenant=tenant, status=DeploymentStatus.RUNNING).first()
        if running is not None:
            raise EventRejected(f"deployment {running.pk} of tenant {tenant.pk} is still running")
        if tenant.status in (TenantStatus.PROVISIONING, TenantStatus.DEPLOY_FAILED):
            tenant_transition(
                tenant=tenant,
                to=TenantStatus.DEPLOYING,
                reason="deployment callbacks started",
                context={"event": event.pk, "source": CHAIN_SOURCE},
            )
        elif tenant.status != TenantStatus.DEPLOYING:
            raise EventRejected(f"tenant {tenant.pk} is {tenant.status}; a deployment needs it provisioned")

        build_succeeded = str(detail.get("CODEBUILD_BUILD_SUCCEEDING", "1")) != "0"
        deployment = Deployment.objects.create(event=event, tenant=tenant, build_succeeded=build_succeeded)
        secret = str(detail.get("secret") or "")
        context = str(detail.get("context") or "")
        created = 0
        for position, planned in enumerate(
            _plan_steps(tenant=tenant, detail=detail, build_succeeded=build_succeeded), start=1
        ):
            if planned.step == SUBSCRIBERS_STEP:
                created += _plan_subscribers(
                    deployment=deployment,
                    position=position,
                    event=event,
                    skip_reason=planned.skip_reason,
                    app_plane_url=detail.get("APP_PLANE_REDIRECT_URL"),
                )
                continue
            body = payload_bytes(planned.payload)
            WebhookDelivery.objects.create(
                dedupe_key=f"event:{event.pk}:step:{planned.step}",
                deployment=deployment,
                position=position,
                tenant=tenant,
                event=event,
                step=planned.step,
                event_type=DetailType.TENANT_DEPLOYMENT,
                url=planned.url,
                signing_scheme=SigningScheme.ORIGINAL,
                signing_secret=secret,
                signing_context=context,
                sign_with_context=planned.sign_with_context,
                body=body.decode(),
                payload=redact(planned.payload),
                status=DeliveryStatus.SKIPPED if planned.skip_reason else DeliveryStatus.WAITING,
                status_reason=planned.skip_reason,
                finished_at=timezone.now() if planned.skip_reason else None,
            )
            created += 1
        history_record(
            tenant=tenant,
            kind=HistoryKind.CALLBACK,
            summary=f"Deployment callbacks planned: {created} deliveries",
            details={
                "deployment": deployment.pk,
                "steps": [
                    {**step, "url": url_display(step["url"])}
                    for step in deployment.deliveries.order_by("position", "id").values(
                        "step", "url", "status", "status_reason"
                    )
                ],
            },
            ref_type="event",
            ref_id=event.pk,
        )
        deployment_advance(deployment=deployment)
    return deployment


def _plan_subscribers(
    *, deployment: Deployment, position: int, event: ReceivedEvent, skip_reason: str, app_plane_url: str | None
) -> int:
    tenant = deployment.tenant
    event_type = WebhookEventType.TENANT_DEPLOYED
    data = subscriber_data(tenant=tenant, appPlaneUrl=app_plane_url)
    data["status"] = TenantStatus.ACTIVE
    payload = payloads.subscriber_payload(event_type=event_type, at=timezone.now(), data=data)
    count = 0
    for endpoint in endpoints_for(event_type):
        WebhookDelivery.objects.create(
            dedupe_key=f"event:{event.pk}:endpoint:{endpoint.pk}",
            deployment=deployment,
            position=position,
            tenant=tenant,
            event=event,
            step=DeliveryStep.SUBSCRIBER,
            event_type=event_type,
            endpoint=endpoint,
            url=endpoint.url,
            signing_scheme=endpoint.signing_scheme,
            body=payload_bytes(payload).decode(),
            payload=payload,
            status=DeliveryStatus.SKIPPED if skip_reason else DeliveryStatus.WAITING,
            status_reason=skip_reason,
        )
        count += 1
    return count


def deployment_advance(*, deployment: Deployment) -> Deployment:
    """Move the chain on: start the first unfinished step, stop on a failed one, finish when all are done."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=deployment.pk)
        if deployment.status != DeploymentStatus.RUNNING:
            return deployment
        deliveries = list(deployment.deliveries.select_related("endpoint").order_by("position", "id"))
        for _position, group_iter in groupby(deliveries, key=lambda d: d.position):
            group = list(group_iter)
            for delivery in group:
                if delivery.status in (DeliveryStatus.WAITING, DeliveryStatus.BLOCKED):
                    _delivery_start(delivery=delivery)
            if all(delivery.status in DONE_STATUSES for delivery in group):
                continue
            failed = next((d for d in group if d.status == DeliveryStatus.FAILED), None)
            if failed is not None and not any(d.status in SENDABLE_STATUSES for d in group):
                _deployment_fail(deployment=deployment, failed=failed, deliveries=deliveries)
            return deployment
        _deployment_complete(deployment=deployment)
    return deployment


def _delivery_start(*, delivery: WebhookDelivery) -> None:
    if delivery.step == DeliveryStep.SUBSCRIBER and (delivery.endpoint is None or not delivery.endpoint.is_active):
        delivery.status = DeliveryStatus.CANCELLED
        delivery.status_reason = "the endpoint was disabled or deleted before this delivery started"
        delivery.finished_at = timezone.now()
        delivery.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
        return
    delivery.status = DeliveryStatus.PENDING
    delivery.status_reason = ""
    delivery.next_attempt_at = timezone.now()
    delivery.round_attempts = 0
    delivery.save(update_fields=["status", "status_reason", "next_attempt_at", "round_attempts", "updated_at"])
    delivery_enqueue(delivery_id=delivery.pk)


def _deployment_fail(*, deployment: Deployment, failed: WebhookDelivery, deliveries: list[WebhookDelivery]) -> None:
    reason = f"{failed.get_step_display()} failed: {failed.status_reason}"
    deployment.status = DeploymentStatus.FAILED
    deployment.status_reason = reason
    deployment.save(update_fields=["status", "status_reason", "updated_at"])
    WebhookDelivery.objects.filter(
        deployment=deployment, position__gt=failed.position, status=DeliveryStatus.WAITING
    ).update(status=DeliveryStatus.BLOCKED, status_reason=f"waiting for: {failed.get_step_display()}")
    _tenant_move(
        tenant=deployment.tenant,
        to=TenantStatus.DEPLOY_FAILED,
        reason=reason,
        context={"deployment": deployment.pk, "delivery": failed.pk, "source": CHAIN_SOURCE},
    )


def _deployment_complete(*, deployment: Deployment) -> None:
    deployment.status = DeploymentStatus.SUCCEEDED
    deployment.finished_at = timezone.now()
    tenant = deployment.tenant
    context = {"deployment": deployment.pk, "source": CHAIN_SOURCE}
    if deployment.build_succeeded:
        deployment.status_reason = "every step succeeded"
        deployment.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
        if _tenant_move(
            tenant=tenant, to=TenantStatus.ACTIVE, reason="deployment callbacks delivered", context=context
        ):
            document = _tenant_document(tenant=tenant, detail=deployment.event.detail or {})
            outbox_publish(
                detail_type=DetailType.TENANT_DEPLOYMENT_SUCCESS,
                detail={"tenant": redact(document), "deploymentId": deployment.pk},
                tenant_id=tenant.pk,
            )
    else:
        deployment.status_reason = "the build failed; the control plane was told (status 0)"
        deployment.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
        _tenant_move(tenant=tenant, to=TenantStatus.DEPLOY_FAILED, reason=deployment.status_reason, context=context)


def _tenant_move(
    *, tenant: Tenant, to: str, reason: str, context: dict[str, Any], actor_user: AbstractBaseUser | None = None
) -> bool:
    """Transition unless the lifecycle refuses (the refusal is recorded in the tenant's history)."""
    try:
        tenant_transition(tenant=tenant, to=to, reason=reason, context=context, actor_user=actor_user)
    except TransitionRefused:
        logger.warning("tenant %s: could not move to %s after deployment %s", tenant.pk, to, context.get("deployment"))
        return False
    return True


# --- Sending -----------------------------------------------------------------------------------


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
            if flight.holds_slot:
                slot_release(endpoint_id=flight.delivery.endpoint_id, delivery_id=flight.delivery.pk)
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
        held = circuit.held_back(delivery.endpoint)
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
    circuit.circuits_record(
        [
            (sent.flight.delivery.endpoint, _reached(sent, verdict))
            for sent, verdict in zip(group, verdicts, strict=True)
            if sent.flight.delivery.endpoint is not None
        ],
        now=timezone.now(),
    )
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
    return verdict_for_response(response) if response is not None else verdict_for_error(error)


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
    fields = [meta.pk, *(meta.get_field(name) for name in ATTEMPT_RESULT_FIELDS)]
    columns = [connection.ops.quote_name(field.column) for field in fields]
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
        if current and delivered is not None and delivery.deployment_id is None:
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
                _enqueue_if_due(delivery)
                if first_failure:
                    _delivery_history(
                        delivery=delivery, summary=f"failed ({verdict.reason}); retrying", attempt=attempt
                    )
            return
        verdict = Verdict("failed", f"gave up after {delivery.round_attempts} attempts; last: {verdict.reason}")
    attempt.outcome = AttemptOutcome.REFUSED if verdict.reason.startswith("refused") else AttemptOutcome.FAILED
    if not current:
        return
    if verdict.kind == "gone" and delivery.endpoint is not None:
        endpoint_disable(endpoint=delivery.endpoint, reason="the receiver answered 410 Gone")
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
        _delivery_history_entry(delivery=item.delivery, summary=f"delivered ({item.reason})", attempt=item.attempt)
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
    label = {DeliveryStatus.SUCCEEDED: "delivered", DeliveryStatus.FAILED: "failed for good"}.get(status, status)
    _delivery_history(delivery=delivery, summary=f"{label} ({reason})", attempt=attempt)
    if delivery.deployment_id is not None:
        deployment_advance(deployment=delivery.deployment)


def _delivery_history(
    *, delivery: WebhookDelivery, summary: str, attempt: DeliveryAttempt | None = None, actor_user: Any = None
) -> None:
    entry = _delivery_history_entry(delivery=delivery, summary=summary, attempt=attempt, actor_user=actor_user)
    if entry is not None:
        entry.save(force_insert=True)


def _delivery_history_entry(
    *, delivery: WebhookDelivery, summary: str, attempt: DeliveryAttempt | None = None, actor_user: Any = None
) -> TenantHistory | None:
    """The tenant timeline's entry about this delivery (unsaved), or None for a delivery without a tenant."""
    if delivery.tenant_id is None:
        return None
    return history_entry(
        tenant=delivery.tenant,
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


def deliveries_sweep() -> int:
    """Re-enqueue due deliveries whose task was lost (broker down at enqueue time, worker gone)."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    # Deliveries held by an open circuit are not lost: the dispatcher sends their probe and releases them.
    due = WebhookDelivery.objects.filter(status__in=SENDABLE_STATUSES, next_attempt_at__lte=cutoff)
    delivery_ids = list(due.filter(_circuit_closed()).values_list("pk", flat=True)[:500])
    deliveries_publish(delivery_ids)
    return len(delivery_ids)


# --- Staff retry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryResult:
    delivery: WebhookDelivery
    queued: bool
    message: str


def delivery_retry(*, delivery: WebhookDelivery, actor_user: AbstractBaseUser) -> RetryResult:
    """Send a delivery again now (staff). A failed chain step resumes the chain from that step.

    Idempotent: a delivery already queued is left as is ("already queued"); one that cannot be sent
    (delivered, skipped, waiting for an earlier step, endpoint disabled) raises ``ConflictError``.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("endpoint", "tenant", "deployment")
            .get(pk=delivery.pk)
        )
        if delivery.status == DeliveryStatus.SUCCEEDED:
            raise ConflictError("This delivery already succeeded.", code="already_delivered")
        if delivery.status == DeliveryStatus.SKIPPED:
            raise ConflictError(
                f"This delivery was skipped ({delivery.status_reason}); nothing to send.", code="skipped"
            )
        if delivery.status in (DeliveryStatus.WAITING, DeliveryStatus.BLOCKED):
            raise ConflictError("This delivery waits for an earlier step; retry that step.", code="waiting")
        if delivery.step == DeliveryStep.SUBSCRIBER and (delivery.endpoint is None or not delivery.endpoint.is_active):
            raise ConflictError("The endpoint is disabled or deleted; enable it first.", code="endpoint_disabled")
        if delivery.status == DeliveryStatus.PENDING:
            return RetryResult(delivery, False, "already queued")
        deployment = delivery.deployment
        if deployment is not None:
            newer = Deployment.objects.filter(tenant_id=deployment.tenant_id, pk__gt=deployment.pk).first()
            if newer is not None:
                raise ConflictError(
                    f"Deployment {deployment.pk} was superseded by deployment {newer.pk}; retry that one.",
                    code="superseded",
                )
        was = delivery.status
        delivery.status = DeliveryStatus.PENDING
        delivery.status_reason = f"retry requested by {actor_user.get_username()}"
        delivery.round_attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.finished_at = None
        delivery.save(
            update_fields=["status", "status_reason", "round_attempts", "next_attempt_at", "finished_at", "updated_at"]
        )
        resumed = False
        if deployment is not None and deployment.status == DeploymentStatus.FAILED:
            deployment.status = DeploymentStatus.RUNNING
            deployment.status_reason = f"resumed from {delivery.get_step_display()} by {actor_user.get_username()}"
            deployment.save(update_fields=["status", "status_reason", "updated_at"])
            WebhookDelivery.objects.filter(deployment=deployment, status=DeliveryStatus.BLOCKED).update(
                status=DeliveryStatus.WAITING, status_reason=""
            )
            resumed = True
            if deployment.tenant.status == TenantStatus.DEPLOY_FAILED:
                _tenant_move(
                    tenant=deployment.tenant,
                    to=TenantStatus.DEPLOYING,
                    reason=f"staff retried {delivery.get_step_display()}",
                    context={"deployment": deployment.pk, "delivery": delivery.pk, "source": CHAIN_SOURCE},
                    actor_user=actor_user,
                )
        if delivery.tenant_id is not None:
            history_record(
                tenant=delivery.tenant,
                kind=HistoryKind.STAFF_ACTION,
                summary=f"Retry of {delivery.get_step_display()} to {url_display(delivery.url)} requested"
                + ("; deployment chain resumed" if resumed else ""),
                details={"delivery": delivery.pk, "previous_status": was, "attempts": delivery.attempts},
                actor_user=actor_user,
                ref_type="delivery",
                ref_id=delivery.pk,
            )
        if delivery.endpoint is not None:
            circuit.probe_now(endpoint=delivery.endpoint)  # a staff retry goes out, as the endpoint's probe
        delivery_enqueue(delivery_id=delivery.pk)
    return RetryResult(delivery, True, "queued" + (" (chain resumed)" if resumed else ""))


# --- Notifications on tenant status changes ----------------------------------------------------


def subscribers_notify(
    *, tenant: Tenant, event_type: str, dedupe_prefix: str, data: dict[str, Any], event: ReceivedEvent | None = None
) -> list[WebhookDelivery]:
    """One delivery per active endpoint subscribed to ``event_type``; sent together, in parallel, once the
    transaction commits."""
    payload = payloads.subscriber_payload(event_type=event_type, at=timezone.now(), data=data)
    body = payload_bytes(payload).decode()
    created = []
    for endpoint in endpoints_for(event_type):
        delivery, was_created = WebhookDelivery.objects.get_or_create(
            dedupe_key=f"{dedupe_prefix}:endpoint:{endpoint.pk}",
            defaults={
                "tenant": tenant,
                "event": event,
                "step": DeliveryStep.SUBSCRIBER,
                "event_type": event_type,
                "endpoint": endpoint,
                "url": endpoint.url,
                "signing_scheme": endpoint.signing_scheme,
                "body": body,
                "payload": payload,
                "status": DeliveryStatus.PENDING,
                "next_attempt_at": timezone.now(),
            },
        )
        if was_created:
            delivery_enqueue(delivery_id=delivery.pk)
            created.append(delivery)
    return created


def control_plane_failure_notify(
    *, tenant: Tenant, detail: dict[str, Any], dedupe_prefix: str, event: ReceivedEvent | None = None
) -> WebhookDelivery:
    """Tell the control plane a provisioning failed (webhook with status 0), signed like the original."""
    url = str(detail.get("API_ENDPOINT") or "").strip()
    payload = payloads.control_plane_webhook_payload(tenant_id=tenant.pk, detail=detail, status=0)
    skip = "" if url else "API_ENDPOINT is not known for this tenant's failed build"
    delivery, created = WebhookDelivery.objects.get_or_create(
        dedupe_key=f"{dedupe_prefix}:step:{DeliveryStep.CONTROL_PLANE_WEBHOOK}",
        defaults={
            "tenant": tenant,
            "event": event,
            "step": DeliveryStep.CONTROL_PLANE_WEBHOOK,
            "event_type": DetailType.TENANT_PROVISIONING_FAILURE,
            "url": url,
            "signing_scheme": SigningScheme.ORIGINAL,
            "signing_secret": str(detail.get("secret") or ""),
            "signing_context": str(detail.get("context") or ""),
            "sign_with_context": True,
            "body": payload_bytes(payload).decode(),
            "payload": redact(payload),
            "status": DeliveryStatus.SKIPPED if skip else DeliveryStatus.PENDING,
            "status_reason": skip,
            "next_attempt_at": None if skip else timezone.now(),
            "finished_at": timezone.now() if skip else None,
        },
    )
    if created and skip:
        _delivery_history(delivery=delivery, summary=f"skipped ({skip})")
    elif created:
        delivery_enqueue(delivery_id=delivery.pk)
    return delivery


# --- Endpoints ---------------------------------------------------------------------------------


def endpoint_validate(
    *, url: str | None = None, events: list[str] | None = None, custom_headers: dict | None = None
) -> None:
    fields: dict[str, list[str]] = {}
    if url is not None:
        try:
            url_check(url)
        except OutboundRefused as error:
            fields["url"] = [str(error)]
        except OutboundError:
            pass  # not resolvable now; checked again at every send
    if events is not None:
        known = set(WebhookEventType.values)
        unknown = [name for name in events if name not in known]
        if unknown or not events:
            fields["events"] = [
                f"Unknown event types: {', '.join(unknown)}" if unknown else "Choose at least one event."
            ]
    if custom_headers is not None and (problems := custom_headers_problems(custom_headers)):
        fields["custom_headers"] = problems
    if fields:
        raise ApplicationError("The endpoint is invalid.", code="invalid", fields=fields)


def secret_validate(*, secret: str, scheme: str) -> None:
    """Standard Webhooks: ``whsec_`` + strict base64 of 24 to 64 bytes; the original scheme: 16+ characters."""
    if scheme == SigningScheme.STANDARD:
        raw = secret.removeprefix(STANDARD_SECRET_PREFIX)
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not secret.startswith(STANDARD_SECRET_PREFIX) or not 24 <= len(key) <= 64:
            raise ApplicationError(
                "Standard Webhooks secrets look like whsec_<base64 of 24 to 64 bytes>.",
                fields={"secret": ["Must be whsec_ followed by standard base64 of 24 to 64 bytes."]},
            )
    elif len(secret) < 16:
        raise ApplicationError("The secret is too short.", fields={"secret": ["At least 16 characters."]})


def endpoint_create(
    *,
    url: str,
    events: list[str],
    signing_scheme: str = SigningScheme.STANDARD,
    description: str = "",
    custom_headers: dict[str, str] | None = None,
    is_active: bool = True,
    secret: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret (generated unless given), to be shown once."""
    custom_headers = custom_headers_keep_masked(headers=custom_headers or {}, stored={})
    endpoint_validate(url=url, events=events, custom_headers=custom_headers)
    secret = secret or secret_generate()
    secret_validate(secret=secret, scheme=signing_scheme)
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        events=list(dict.fromkeys(events)),
        signing_scheme=signing_scheme,
        description=description,
        custom_headers=custom_headers or {},
        is_active=is_active,
        secret=secret,
    )
    logger.info("webhook endpoint %s created for %s", endpoint.pk, url_display(endpoint.url))
    return endpoint, secret


def custom_headers_keep_masked(*, headers: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """Custom headers as staff sent them, where a value sent masked (``********``, as every view shows it)
    keeps the stored value of that header (names compared case-insensitively). A masked value with
    nothing stored under its name is refused: it would send the mask."""
    stored_by_name = {str(name).lower(): value for name, value in stored.items()}
    kept, missing = {}, []
    for name, value in headers.items():
        if value == MASK:
            if str(name).lower() not in stored_by_name:
                missing.append(str(name))
                continue
            value = stored_by_name[str(name).lower()]
        kept[name] = value
    if missing:
        raise ApplicationError(
            "The endpoint is invalid.",
            code="invalid",
            fields={"custom_headers": [f"{MASK} keeps a stored value, and none is stored for: {', '.join(missing)}"]},
        )
    return kept


ENDPOINT_EDITABLE = ("url", "events", "signing_scheme", "description", "custom_headers", "is_active")


def endpoint_update(*, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change an endpoint's settings (not its secret: see ``endpoint_rotate_secret``)."""
    unknown = set(changes) - set(ENDPOINT_EDITABLE)
    if unknown:
        raise ApplicationError(f"Cannot change: {', '.join(sorted(unknown))}")
    if changes.get("custom_headers") is not None:
        # What is stored, not the instance: a form may already have put the masked values on it.
        stored = WebhookEndpoint.objects.filter(pk=endpoint.pk).values_list("custom_headers", flat=True).first()
        changes["custom_headers"] = custom_headers_keep_masked(headers=changes["custom_headers"], stored=stored or {})
    endpoint_validate(
        url=changes.get("url"), events=changes.get("events"), custom_headers=changes.get("custom_headers")
    )
    scheme = changes.get("signing_scheme")
    if scheme and scheme != endpoint.signing_scheme:
        try:
            secret_validate(secret=endpoint.secret.reveal(), scheme=scheme)
        except ApplicationError:
            raise ApplicationError(
                "The current secret does not fit the new signing scheme; rotate the secret with the change.",
                fields={"signing_scheme": ["Rotate the secret to switch to this scheme."]},
            ) from None
    # A new address, or turned back on: whatever its circuit learnt about the old state no longer holds.
    try_at_once = changes.get("url", endpoint.url) != endpoint.url or (
        changes.get("is_active") and not endpoint.is_active
    )
    for name, value in changes.items():
        setattr(endpoint, name, value)
    if changes.get("is_active"):
        endpoint.disabled_reason = ""
        endpoint.disabled_at = None
    # Only these columns: a stale in-memory secret must never overwrite a rotation.
    endpoint.save(update_fields=[*changes, "disabled_reason", "disabled_at", "updated_at"])
    if try_at_once:
        circuit.circuit_close(endpoint=endpoint)
    return endpoint


def endpoints_circuit_close(*, endpoints: Iterable[WebhookEndpoint]) -> int:
    """Close the circuits of these endpoints (staff know the receivers are back): what waited for them is sent
    within seconds. The number of deliveries released."""
    released = 0
    for endpoint in endpoints:
        if circuit.is_tripped(endpoint):
            count = circuit.circuit_close(endpoint=endpoint)
            logger.info("endpoint %s: circuit closed by staff, %s deliveries released", endpoint.pk, count)
            released += count
    return released


def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, secret: str | None = None, signing_scheme: str | None = None
) -> str:
    """Give the endpoint a new secret; the old one keeps signing for WEBHOOK_SECRET_GRACE_SECONDS."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update(of=("self",)).get(pk=endpoint.pk)
        scheme = signing_scheme or endpoint.signing_scheme
        secret = secret or (secret_generate() if scheme == SigningScheme.STANDARD else secret_generate()[6:])
        secret_validate(secret=secret, scheme=scheme)
        now = timezone.now()
        same_scheme = scheme == endpoint.signing_scheme
        endpoint.previous_secret = endpoint.secret if same_scheme else ""
        endpoint.previous_secret_expires_at = (
            now + timedelta(seconds=settings.WEBHOOK_SECRET_GRACE_SECONDS) if same_scheme else None
        )
        endpoint.secret = secret
        endpoint.signing_scheme = scheme
        endpoint.secret_rotated_at = now
        endpoint.save()
    logger.info("webhook endpoint %s: secret rotated", endpoint.pk)
    return secret


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> WebhookEndpoint:
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_reason=reason[:255], disabled_at=timezone.now(), updated_at=timezone.now()
    )
    endpoint.is_active, endpoint.disabled_reason = False, reason[:255]
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint; its deliveries stay (audit) with the endpoint unset; queued ones are cancelled."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(
            endpoint=endpoint, status__in=SENDABLE_STATUSES | {DeliveryStatus.WAITING}
        ).update(status=DeliveryStatus.CANCELLED, status_reason="the endpoint was deleted", finished_at=timezone.now())
        endpoint.delete()
