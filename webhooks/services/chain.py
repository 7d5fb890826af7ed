"""The deployment chain: every delivery of a TENANT_DEPLOYMENT written before anything is sent, then
one step after the other.

The shape of a chain: ``deployment_start`` writes every delivery (one per step, one per subscriber)
before anything is sent, then ``deployment_advance`` starts the first step. Deliveries are sent by
delivery tasks (``deliveries_attempt``, several in parallel); when one succeeds the chain advances, when
one fails for good the chain stops (later steps BLOCKED, tenant DEPLOY_FAILED) until staff retry it
(``delivery_retry``). A retry waits in the database until beat's dispatcher queues it.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from events.catalogue import DetailType
from events.models import ReceivedEvent
from events.registry import EventRejected
from events.services import outbox_publish
from orchestrator.errors import ApplicationError
from orchestrator.redaction import redact
from tenants.models import HistoryKind, Tenant, TenantStatus
from tenants.services.history import history_record
from tenants.services.lifecycle import TransitionCause, TransitionRefused, tenant_transition
from webhooks import payloads
from webhooks.delivery import payload_bytes
from webhooks.models import (
    DONE_STATUSES,
    SENDABLE_STATUSES,
    DeliveryStatus,
    DeliveryStep,
    Deployment,
    DeploymentStatus,
    SigningScheme,
    WebhookDelivery,
    WebhookEventType,
)
from webhooks.selectors import endpoints_for
from webhooks.services.dispatch import delivery_enqueue
from webhooks.services.endpoints import url_display
from webhooks.services.notify import subscriber_data, subscriber_delivery_fields

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


def chain_steps() -> list[str]:
    steps = [str(step).strip() for step in settings.WEBHOOK_CHAIN_STEPS if str(step).strip()]
    unknown = [step for step in steps if step not in CHAIN_STEP_NAMES]
    if unknown:
        raise ApplicationError(f"WEBHOOK_CHAIN_STEPS has unknown steps: {', '.join(unknown)}", code="misconfigured")
    return steps


@dataclass(frozen=True)
class PlannedCallback:
    step: str
    url: str
    payload: dict[str, Any] | None
    skip_reason: str = ""
    sign_with_context: bool = False


def tenant_document_of(*, tenant: Tenant, detail: dict[str, Any]) -> dict[str, Any]:
    document = detail.get("tenant")
    return document if isinstance(document, dict) and document else dict(tenant.document or {"id": tenant.pk})


def build_succeeded_of(detail: dict[str, Any]) -> bool:
    return str(detail.get("CODEBUILD_BUILD_SUCCEEDING", "1")) != "0"


# A deployment moves a tenant in these statuses to DEPLOYING; DEPLOYING stays; any other status is refused.
DEPLOYABLE_FROM = frozenset({TenantStatus.PROVISIONING, TenantStatus.DEPLOY_FAILED})


def deployment_refusal(*, tenant_id: str, tenant: Tenant | None, running: Deployment | None) -> str:
    """Why a TENANT_DEPLOYMENT cannot start a chain for the tenant ("" when it can; shared with the dry run)."""
    if tenant is None:
        return f"tenant {tenant_id!r} is unknown; nothing to deploy"
    if running is not None:
        return f"deployment {running.pk} of tenant {tenant.pk} is still running"
    if tenant.status not in DEPLOYABLE_FROM and tenant.status != TenantStatus.DEPLOYING:
        return f"tenant {tenant.pk} is {tenant.status}; a deployment needs it provisioned"
    return ""


def deployment_plan_steps(*, tenant: Tenant, detail: dict[str, Any], build_succeeded: bool) -> list[PlannedCallback]:
    """Each step's URL, payload and skip reason, in chain order (pure: shared with the dry run)."""
    document = tenant_document_of(tenant=tenant, detail=detail)
    return [
        callback_plan(step, tenant=tenant, detail=detail, document=document, build_succeeded=build_succeeded)
        for step in chain_steps()
    ]


def callback_plan(
    step: str, *, tenant: Tenant, detail: dict[str, Any], document: dict[str, Any], build_succeeded: bool
) -> PlannedCallback:
    """Where one of the original's callbacks goes, with what, from the build outputs (``detail``); a pipeline's
    ``callback`` step plans its named callback here too (``webhooks.services.pipeline_steps``)."""
    not_built = "" if build_succeeded else "the build did not succeed (CODEBUILD_BUILD_SUCCEEDING=0)"
    if step == DeliveryStep.APP_PLANE_BOOTSTRAP:
        callback = (detail.get("USER_CALLBACK_ENDPOINT") or "").strip()
        url = callback.replace("user-callback", "bootstrap", 1)
        reason = not_built or ("" if callback else "USER_CALLBACK_ENDPOINT is not set in the build outputs")
        payload = payloads.app_plane_bootstrap_payload(tenant=document, detail=detail)
        return PlannedCallback(step, url, payload, reason)
    if step == DeliveryStep.FEATURE_SERVICE_BOOTSTRAP:
        base = (detail.get("APP_PLANE_ENDPOINT_FEATURE_SERVICE") or "").strip()
        url = f"{base.rstrip('/')}/bootstrap" if base else ""
        reason = not_built or ("" if base else "APP_PLANE_ENDPOINT_FEATURE_SERVICE is not set in the build outputs")
        plan = tenant.plan or detail.get("planConfig") or None
        payload = payloads.feature_service_bootstrap_payload(tenant=document, plan=plan)
        return PlannedCallback(step, url, payload, reason)
    if step == DeliveryStep.CONTROL_PLANE_WEBHOOK:
        url = (detail.get("API_ENDPOINT") or "").strip()
        reason = "" if url else "API_ENDPOINT is not set in the build outputs"
        payload = payloads.control_plane_webhook_payload(
            tenant_id=tenant.pk, detail=detail, status=1 if build_succeeded else 0
        )
        return PlannedCallback(step, url, payload, reason, sign_with_context=True)
    return PlannedCallback(SUBSCRIBERS_STEP, "", None, not_built)


def deployment_start(*, event: ReceivedEvent, detail: dict[str, Any]) -> Deployment:
    """Create the chain for a TENANT_DEPLOYMENT event and start step 1. Safe to call again for the same event."""
    document = detail.get("tenant") or {}
    tenant_id = str(document.get("id", "")) if isinstance(document, dict) else ""
    # The event's handler transaction holds everything: no savepoint of its own (an error undoes it all).
    with transaction.atomic(savepoint=False):
        existing = Deployment.objects.filter(event=event).first()
        if existing is not None:
            for delivery in existing.deliveries.filter(status__in=SENDABLE_STATUSES):
                delivery_enqueue(delivery_id=delivery.pk)  # a crash after commit may have lost the task
            return existing
        tenant = Tenant.objects.select_for_update(of=("self",)).filter(pk=tenant_id).first()
        running = None if tenant is None else deployment_running(tenant=tenant)
        if refused := deployment_refusal(tenant_id=tenant_id, tenant=tenant, running=running):
            raise EventRejected(refused)
        assert tenant is not None  # refused otherwise
        if tenant.status in DEPLOYABLE_FROM:
            tenant_transition(
                tenant=tenant,
                to=TenantStatus.DEPLOYING,
                reason="deployment callbacks started",
                cause=TransitionCause(event_pk=event.pk, source=CHAIN_SOURCE),
            )
        build_succeeded = build_succeeded_of(detail)
        deployment = Deployment.objects.create(event=event, tenant=tenant, build_succeeded=build_succeeded)
        secret = str(detail.get("secret") or "")
        context = str(detail.get("context") or "")
        created = 0
        for position, planned in enumerate(
            deployment_plan_steps(tenant=tenant, detail=detail, build_succeeded=build_succeeded), start=1
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
        deployment_advance(deployment_id=deployment.pk)
    return deployment


def deployment_running(*, tenant: Tenant) -> Deployment | None:
    return Deployment.objects.filter(tenant=tenant, status=DeploymentStatus.RUNNING).first()


def deployed_subscriber_payload(*, tenant: Tenant, app_plane_url: str | None, at: datetime) -> dict[str, Any]:
    """What subscribers to ``tenant.deployed`` receive once the chain's earlier steps succeeded."""
    data = subscriber_data(tenant=tenant, appPlaneUrl=app_plane_url)
    data["status"] = TenantStatus.ACTIVE
    return payloads.subscriber_payload(event_type=WebhookEventType.TENANT_DEPLOYED, at=at, data=data)


def _plan_subscribers(
    *, deployment: Deployment, position: int, event: ReceivedEvent, skip_reason: str, app_plane_url: str | None
) -> int:
    tenant = deployment.tenant
    event_type = WebhookEventType.TENANT_DEPLOYED
    payload = deployed_subscriber_payload(tenant=tenant, app_plane_url=app_plane_url, at=timezone.now())
    body = payload_bytes(payload).decode()
    count = 0
    for endpoint in endpoints_for(event_type):
        WebhookDelivery.objects.create(
            dedupe_key=f"event:{event.pk}:endpoint:{endpoint.pk}",
            deployment=deployment,
            position=position,
            **subscriber_delivery_fields(
                endpoint=endpoint, tenant=tenant, event=event, event_type=event_type, payload=payload, body=body
            ),
            status=DeliveryStatus.SKIPPED if skip_reason else DeliveryStatus.WAITING,
            status_reason=skip_reason,
        )
        count += 1
    return count


def deployment_advance(*, deployment_id: int) -> Deployment:
    """Move the chain on: start the first unfinished step, stop on a failed one, finish when all are done."""
    # No savepoint: nothing in here is caught and carried on from; an error undoes the caller's transaction.
    with transaction.atomic(savepoint=False):
        deployment = Deployment.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=deployment_id)
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
    chain_tenant_move(
        tenant=deployment.tenant,
        to=TenantStatus.DEPLOY_FAILED,
        reason=reason,
        deployment=deployment,
        delivery=failed,
    )


def _deployment_complete(*, deployment: Deployment) -> None:
    deployment.status = DeploymentStatus.SUCCEEDED
    deployment.finished_at = timezone.now()
    tenant = deployment.tenant
    if deployment.build_succeeded:
        deployment.status_reason = "every step succeeded"
        deployment.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
        if chain_tenant_move(
            tenant=tenant, to=TenantStatus.ACTIVE, reason="deployment callbacks delivered", deployment=deployment
        ):
            document = tenant_document_of(tenant=tenant, detail=deployment.event.detail or {})
            outbox_publish(
                detail_type=DetailType.TENANT_DEPLOYMENT_SUCCESS,
                detail={"tenant": redact(document), "deploymentId": deployment.pk},
                tenant_id=tenant.pk,
            )
    else:
        deployment.status_reason = "the build failed; the control plane was told (status 0)"
        deployment.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
        chain_tenant_move(
            tenant=tenant, to=TenantStatus.DEPLOY_FAILED, reason=deployment.status_reason, deployment=deployment
        )


def chain_tenant_move(
    *,
    tenant: Tenant,
    to: str,
    reason: str,
    deployment: Deployment,
    delivery: WebhookDelivery | None = None,
    actor_user: User | None = None,
) -> bool:
    """Transition unless the lifecycle refuses (the refusal is recorded in the tenant's history)."""
    details = {"deployment": deployment.pk} | ({"delivery": delivery.pk} if delivery is not None else {})
    cause = TransitionCause(source=CHAIN_SOURCE, details=details)
    try:
        tenant_transition(tenant=tenant, to=to, reason=reason, cause=cause, actor_user=actor_user)
    except TransitionRefused:
        logger.warning("tenant %s: could not move to %s after deployment %s", tenant.pk, to, deployment.pk)
        return False
    return True
