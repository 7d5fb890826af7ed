"""``TENANT_DEPROVISIONING`` and the staff action: ``ACTIVE`` (or ``DEPROVISION_FAILED``, a retry) →
``DEPROVISIONING``, the tier's deprovisioning project started with the same environment rules.

The outcome arrives as ``TENANT_PROVISIONING_SUCCESS`` / ``_FAILURE`` (the post-build step only knows
those two detail types); ``tenants.services.outcomes`` recognises a deprovision build by its
``CODEBUILD_BUILD_ID`` (or, without one, by the tenant being ``DEPROVISIONING``): success → ``INACTIVE``
(the DynamoDB item stays, with ``status = "INACTIVE"``), failure → ``DEPROVISION_FAILED`` (retryable).
"""

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from events.registry import EventRejected
from tenants.models import Build, BuildPurpose, Tenant, TenantStatus
from tenants.services.builds import ActionResult, build_start_after_commit, tenant_attempt_start, tenant_staff_attempt
from tenants.services.environment import EnvVar
from tenants.services.history import event_already_applied, history_record_event
from tenants.services.lifecycle import tenant_transition

if TYPE_CHECKING:
    from events.models import ReceivedEvent

# A suspended tenant can be deprovisioned without being resumed first.
DEPROVISIONABLE = frozenset({TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.DEPROVISION_FAILED})


def tenant_deprovision_from_event(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    """Handle ``TENANT_DEPROVISIONING`` (idempotent per event); sbt-aws's ``offboardingRequest`` too."""
    tenant_id = str(detail["tenant"]["id"])
    refused = ""
    build: Build | None = None
    environment: list[EnvVar] | None = None
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        if tenant is None:
            raise EventRejected(f"{event.detail_type} for unknown tenant {tenant_id}.")
        if event_already_applied(tenant=tenant, event=event):
            build = Build.objects.filter(event=event, purpose=BuildPurpose.DEPROVISION).first()
        elif tenant.status not in DEPROVISIONABLE:
            refused = (
                f"{event.detail_type} refused: tenant {tenant.pk} is {TenantStatus(tenant.status).label}, "
                "not active, suspended or deprovision-failed."
            )
            history_record_event(tenant=tenant, event=event, summary=refused, details={"refused": True})
        else:
            history_record_event(tenant=tenant, event=event, summary=f"{event.detail_type} received")
            build, environment = tenant_attempt_start(
                tenant=tenant, purpose=BuildPurpose.DEPROVISION, event=event, actor_user=None
            )
            if build is not None:  # started once this transaction (the handler's) has committed
                build_start_after_commit(build=build, environment=environment)
    if refused:
        raise EventRejected(refused)
    tenant.refresh_from_db(fields=["status", "status_reason", "version", "deprovisioning_attempt"])
    return {
        "tenant": tenant.pk,
        "status": tenant.status,
        "reason": tenant.status_reason,
        "build": build.idempotency_token if build else None,
    }


def tenant_deprovision(*, tenant: Tenant, actor_user: AbstractBaseUser | None) -> ActionResult:
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
