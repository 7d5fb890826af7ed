"""Staff retry of a delivery: it goes out again now, and a failed deployment chain resumes from that step."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from orchestrator.errors import ConflictError
from tenants.models import HistoryKind, TenantStatus
from tenants.services.history import history_record
from webhooks import circuit
from webhooks.models import DeliveryStatus, DeliveryStep, Deployment, DeploymentStatus, WebhookDelivery
from webhooks.services.chain import chain_tenant_move
from webhooks.services.dispatch import delivery_enqueue
from webhooks.services.endpoints import url_display


@dataclass(frozen=True)
class RetryResult:
    delivery: WebhookDelivery
    queued: bool
    message: str


def delivery_retry(*, delivery: WebhookDelivery, actor_user: User) -> RetryResult:
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
                chain_tenant_move(
                    tenant=deployment.tenant,
                    to=TenantStatus.DEPLOYING,
                    reason=f"staff retried {delivery.get_step_display()}",
                    deployment=deployment,
                    delivery=delivery,
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
