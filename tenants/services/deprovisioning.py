"""``TENANT_DEPROVISIONING`` and the staff action: ``ACTIVE`` (or ``DEPROVISION_FAILED``, a retry) →
``DEPROVISIONING``, the tier's deprovisioning project started with the same environment rules.

The outcome arrives as ``TENANT_PROVISIONING_SUCCESS`` / ``_FAILURE`` (the post-build step only knows
those two detail types); ``tenants.services.outcomes`` recognises a deprovision build by its
``CODEBUILD_BUILD_ID`` (or, without one, by the tenant being ``DEPROVISIONING``): success → ``INACTIVE``
(the DynamoDB item stays, with ``status = "INACTIVE"``), failure → ``DEPROVISION_FAILED`` (retryable).
"""

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import transaction

from events.registry import EventRejected
from tenants.models import Build, BuildPurpose, Tenant, TenantStatus
from tenants.services.builds import (
    ActionResult,
    event_handled_result,
    tenant_event_attempt_start,
    tenant_staff_attempt,
)
from tenants.services.history import event_already_applied, history_record_event
from tenants.services.lifecycle import tenant_transition

if TYPE_CHECKING:
    from events.models import ReceivedEvent

# A suspended tenant can be deprovisioned without being resumed first.
DEPROVISIONABLE = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.DEPROVISION_FAILED})


def deprovisioning_refusal(*, detail_type: str, tenant_id: str, tenant: Tenant | None) -> str:
    """Why the tenant (None: unknown) cannot start a deprovisioning attempt now ("" when it can; shared with
    the dry run)."""
    if tenant is None:
        return f"{detail_type} for unknown tenant {tenant_id}."
    if tenant.status in DEPROVISIONABLE:
        return ""
    return (
        f"{detail_type} refused: tenant {tenant.pk} is {TenantStatus(tenant.status).label}, "
        "not active, suspended or deprovision-failed."
    )


def tenant_deprovision_from_event(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    """Handle ``TENANT_DEPROVISIONING`` (idempotent per event); sbt-aws's ``offboardingRequest`` too."""
    tenant_id = str(detail["tenant"]["id"])
    refused = ""
    build: Build | None = None
    # The event's handler transaction holds everything: no savepoint of its own (an error undoes it all).
    with transaction.atomic(savepoint=False):
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        if tenant is None:
            raise EventRejected(deprovisioning_refusal(detail_type=event.detail_type, tenant_id=tenant_id, tenant=None))
        if event_already_applied(tenant=tenant, event=event):
            build = Build.objects.filter(event=event, purpose=BuildPurpose.DEPROVISION).first()
        elif refused := deprovisioning_refusal(detail_type=event.detail_type, tenant_id=tenant_id, tenant=tenant):
            history_record_event(tenant=tenant, event=event, summary=refused, details={"refused": True})
        else:
            history_record_event(tenant=tenant, event=event, summary=f"{event.detail_type} received")
            build = tenant_event_attempt_start(tenant=tenant, purpose=BuildPurpose.DEPROVISION, event=event)
    if refused:
        raise EventRejected(refused)
    # The row stays locked by the handler's transaction and the attempt's start updated this copy.
    return event_handled_result(tenant=tenant, build=build)


def tenant_deprovision(*, tenant: Tenant, actor_user: User | None) -> ActionResult:
    """Staff action: deprovision an active tenant, or retry a failed deprovisioning (a new build)."""
    tenant = Tenant.objects.get(pk=tenant.pk)
    if tenant.status == TenantStatus.DEPROVISIONING:
        return ActionResult(tenant=tenant, changed=False, message=f"{tenant.key} is already deprovisioning.")
    if tenant.status == TenantStatus.INACTIVE:
        return ActionResult(tenant=tenant, changed=False, message=f"{tenant.key} is already inactive.")
    if tenant.status not in DEPROVISIONABLE:
        tenant_transition(tenant=tenant, to=TenantStatus.DEPROVISIONING, actor_user=actor_user)  # refused, recorded
    return tenant_staff_attempt(
        tenant=tenant,
        purpose=BuildPurpose.DEPROVISION,
        request_summary="Deprovisioning requested",
        actor_user=actor_user,
    )
