"""The SaaS Builder Toolkit's control plane (sbt-aws), spoken by the tenant lifecycle.

Requests (``events.dialects.sbt`` has their shapes and where they come from):

- ``onboardingRequest`` → provisioning (``tenant_provision`` with the request mapped to its detail);
- ``offboardingRequest`` → deprovisioning;
- ``activateRequest`` / ``deactivateRequest`` → refused and recorded on the event (the lifecycle cannot
  suspend or resume a tenant yet), answered with ``activateFailure`` / ``deactivateFailure``.

Answers go through the outbox to sbt's bus with its application-plane source, only for tenants an sbt request
asked for (the tenant's latest onboarding/offboarding request names the registration they answer):

- ``provisionSuccess`` when the tenant becomes ACTIVE, ``provisionFailure`` when it becomes PROVISION_FAILED
  or DEPLOY_FAILED (a failing build that reports nothing included: sbt-aws issue 73);
- ``deprovisionSuccess`` when it becomes INACTIVE, ``deprovisionFailure`` when DEPROVISION_FAILED;
- the failure answer of a request that failed as an event (refused, or out of attempts).

sbt's script jobs report success by finishing: their Step Functions read the build's exported variables. We
do the same from CodeBuild's own state change (``additional-information.exported-environment-variables``):
a succeeded build of an sbt tenant gets the ``TENANT_PROVISIONING_SUCCESS`` event the original's post-build
step would have sent, stored and processed like a received one, and its variables become the answer's
``jobOutput``.
"""

import json
import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils import timezone

from events import dialects
from events.catalogue import DetailType
from events.dialects import sbt
from events.dialects.sbt import SbtDetailType
from events.intake.envelope import envelope_validate
from events.registry import EventRejected
from events.selectors import event_latest_for_tenant
from events.services import event_store_internal, outbox_publish
from tenants.models import Build, Tenant, TenantStatus
from tenants.services.deprovisioning import tenant_deprovision_from_event
from tenants.services.provisioning import tenant_provision

if TYPE_CHECKING:
    from events.models import OutboxEvent, ReceivedEvent

logger = logging.getLogger(__name__)

# A tenant's new status → (the request it answers, whether it succeeded).
STATUS_ANSWERS: dict[str, tuple[str, bool]] = {
    TenantStatus.ACTIVE: (SbtDetailType.ONBOARDING_REQUEST, True),
    TenantStatus.PROVISION_FAILED: (SbtDetailType.ONBOARDING_REQUEST, False),
    TenantStatus.DEPLOY_FAILED: (SbtDetailType.ONBOARDING_REQUEST, False),
    TenantStatus.INACTIVE: (SbtDetailType.OFFBOARDING_REQUEST, True),
    TenantStatus.DEPROVISION_FAILED: (SbtDetailType.OFFBOARDING_REQUEST, False),
}


def sbt_onboarding_apply(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    return tenant_provision(event=event, detail=sbt.provisioning_detail(detail))


def sbt_offboarding_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """An ``offboardingRequest`` as the ``TENANT_DEPROVISIONING`` detail it stands for."""
    return {"tenant": {"id": str(detail["tenantId"])}}


def sbt_offboarding_apply(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    return tenant_deprovision_from_event(event=event, detail=sbt_offboarding_detail(detail))


def sbt_activation_refuse(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    """Refuse ``activateRequest`` / ``deactivateRequest``: the event fails with the reason, nothing moves."""
    tenant_id = str(detail["tenantId"])
    tenant = Tenant.objects.filter(pk=tenant_id).only("status").first()
    state = f"tenant {tenant_id} stays {TenantStatus(tenant.status).label}" if tenant else f"no tenant {tenant_id}"
    raise EventRejected(f"{event.detail_type} refused: Orchestrator cannot suspend or resume a tenant yet ({state}).")


def _registration(*, tenant_id: str, request: "ReceivedEvent | None" = None) -> str:
    """The sbt registration an answer is about: the request's own, else the tenant's latest lifecycle request's."""
    if request is not None and request.detail.get("tenantRegistrationId"):
        return str(request.detail["tenantRegistrationId"])
    latest = event_latest_for_tenant(tenant_id=tenant_id, detail_types=SbtDetailType.LIFECYCLE_REQUESTS)
    return str(latest.detail.get("tenantRegistrationId") or "") if latest else ""


def _build_outputs(*, tenant: Tenant, context: dict[str, Any]) -> dict[str, Any]:
    """The exported variables of the build whose success moved the tenant: its success event's detail."""
    from events.models import ReceivedEvent

    named = context.get("event_pk")
    event = (
        ReceivedEvent.objects.filter(pk=named, detail_type=DetailType.TENANT_PROVISIONING_SUCCESS).first()
        if isinstance(named, int)
        else None
    )
    event = event or event_latest_for_tenant(tenant_id=tenant.pk, detail_types=[DetailType.TENANT_PROVISIONING_SUCCESS])
    return dict(event.detail) if event else {}


def _answer(
    *, request_type: str, succeeded: bool, registration: str, tenant_id: str, status: str, **extra: Any
) -> "OutboxEvent":
    detail_type, detail = sbt.answer_detail(
        request_type=request_type,
        succeeded=succeeded,
        registration_id=registration,
        tenant_id=tenant_id,
        status=status,
        **extra,
    )
    logger.info("sbt answer %s for registration %s", detail_type, registration, extra={"tenant_id": tenant_id})
    return outbox_publish(
        detail_type=detail_type,
        detail=detail,
        tenant_id=tenant_id,
        source=settings.SBT_APPLICATION_PLANE_SOURCE,
        event_bus=sbt.sbt_event_bus(),
    )


def sbt_answers_status(*, to_status: str) -> bool:
    """True when a change to ``to_status`` may answer sbt's control plane (``sbt_answer_status_change``)."""
    return to_status in STATUS_ANSWERS and dialects.dialect_enabled(dialects.SBT)


def sbt_answer_status_change(
    *, tenant: Tenant, to_status: str, reason: str, context: dict[str, Any]
) -> "OutboxEvent | None":
    """Answer sbt's control plane when a tenant it asked for reaches an outcome (in the same transaction)."""
    if not sbt_answers_status(to_status=to_status):
        return None
    registration = _registration(tenant_id=tenant.pk)
    if not registration:
        return None  # not a tenant of sbt's
    request_type, succeeded = STATUS_ANSWERS[to_status]
    return _answer(
        request_type=request_type,
        succeeded=succeeded,
        registration=registration,
        tenant_id=tenant.pk,
        status=to_status,
        reason=reason if not succeeded else "",
        outputs=_build_outputs(tenant=tenant, context=context) if succeeded else None,
    )


def sbt_answer_failed_request(*, event: "ReceivedEvent") -> "OutboxEvent | None":
    """Answer an sbt request that failed as an event (refused, or out of attempts) with its failure type."""
    if event.detail_type not in SbtDetailType.REQUESTS or not dialects.dialect_enabled(dialects.SBT):
        return None
    tenant_id = str(event.detail.get("tenantId") or "")
    registration = _registration(tenant_id=tenant_id, request=event)
    if not registration:
        logger.warning("sbt request %s failed for a tenant with no registration: not answered", event.event_id)
        return None
    tenant = Tenant.objects.filter(pk=tenant_id).only("status").first()
    return _answer(
        request_type=event.detail_type,
        succeeded=False,
        registration=registration,
        tenant_id=tenant_id,
        status=tenant.status if tenant else "",
        reason=event.last_error,
    )


def sbt_build_success_report(*, build: Build, event: "ReceivedEvent", detail: dict[str, Any]) -> int | None:
    """CodeBuild reports a build of an sbt tenant succeeded: store the success event its script job would have
    implied (exported variables, the build's id), once. Returns the new event's pk, None if it exists or the
    tenant is not sbt's."""
    if not dialects.dialect_enabled(dialects.SBT) or not _registration(tenant_id=build.tenant_id):
        return None
    info = detail.get("additional-information") or {}
    exported = {
        str(item["name"]): str(item.get("value") or "")
        for item in info.get("exported-environment-variables") or []
        if isinstance(item, dict) and item.get("name")
    }
    tenant = build.tenant
    outputs = {
        **exported,
        "tenant": json.dumps({"id": tenant.pk, "key": tenant.key}, separators=(",", ":")),
        "CODEBUILD_BUILD_ID": build.build_id,
        "CODEBUILD_BUILD_SUCCEEDING": "1",
    }
    envelope = envelope_validate(
        {
            "version": "0",
            "id": f"{event.event_id}/outcome",
            "detail-type": DetailType.TENANT_PROVISIONING_SUCCESS,
            "source": settings.EVENT_SOURCE,
            "account": event.account,
            "time": (event.time or timezone.now()).isoformat(),
            "region": event.region,
            "resources": [build.arn] if build.arn else [],
            "detail": outputs,
        }
    )
    return event_store_internal(envelope=envelope)
