"""``TENANT_PROVISIONING`` and staff retries: store the tenant and plan, resolve tier and builder, start
the build.

Fixes against the original: the tenant's plan is stored on its own (``planConfig`` stays available to
later steps), nested values are JSON-encoded, every failure ends in ``PROVISION_FAILED`` with its reason
instead of a swallowed error, and an event for a tenant already provisioning or active is refused (and
recorded) rather than started twice.
"""

import logging
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.db import transaction

from events.registry import EventRejected
from tenants.models import Build, BuildPurpose, Tenant, TenantStatus, Tier
from tenants.selectors import tier_get
from tenants.services.build_policy import builder_refusal
from tenants.services.builds import (
    ActionResult,
    event_handled_result,
    tenant_event_attempt_start,
    tenant_staff_attempt,
)
from tenants.services.history import event_already_applied, history_record_event
from tenants.services.lifecycle import tenant_transition
from tenants.services.pipeline_provision import (
    provision_pipeline_configured,
    provision_pipeline_retry,
    provision_pipeline_start,
)
from tenants.services.sync import tenant_sync_schedule

if TYPE_CHECKING:
    from events.models import ReceivedEvent

logger = logging.getLogger(__name__)

# Statuses from which a provisioning event (or a staff retry) starts a new attempt.
PROVISIONABLE = frozenset({TenantStatus.PENDING_PROVISION, TenantStatus.PROVISION_FAILED})


def tenant_fields_from_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """The tenant's columns as a provisioning event sets them."""
    document = dict(detail["tenant"])
    plan = dict(detail["planConfig"])
    return {
        "key": str(document.get("key", "")),
        "name": str(document.get("name", ""))[:255],
        "document": document,
        "plan": plan,
        "tier": str(plan.get("tier", "")),
        "builder_config": dict(detail.get("builderConfig") or {}),
        "app_config": dict(detail.get("appConfig") or {}),
    }


def provisioning_refusal(*, tenant_id: str, fields: dict[str, Any], tier: Tier | None) -> str:
    """Why a provisioning event is refused before anything is stored ("" when it is not): its tier (``tier``,
    read by the caller) refuses the builder it names, or another tenant has its key. Reads only (shared with
    the dry run)."""
    refused = builder_refusal(tier=tier, builder_config=fields["builder_config"])
    if refused:  # the tier decides which builders an event may pick
        return f"TENANT_PROVISIONING refused: {refused}"
    clash = Tenant.objects.filter(key=fields["key"]).exclude(pk=tenant_id).values_list("pk", flat=True).first()
    if clash:
        return f"Tenant key {fields['key']!r} is already used by tenant {clash}."
    return ""


def provisioning_status_refusal(*, detail_type: str, tenant: Tenant) -> str:
    """Why an existing tenant cannot start a provisioning attempt now ("" when it can)."""
    if tenant.status in PROVISIONABLE:
        return ""
    return f"{detail_type} refused: tenant {tenant.pk} is {TenantStatus(tenant.status).label}, not pending or failed."


def tenant_provision(*, event: "ReceivedEvent", detail: dict[str, Any]) -> dict[str, Any]:
    """Handle ``TENANT_PROVISIONING`` (idempotent: a re-run of the same event starts nothing new); sbt-aws's
    ``onboardingRequest`` comes here too, mapped to the same detail (``tenants.services.sbt``)."""
    tenant_id = str(detail["tenant"]["id"])
    fields = tenant_fields_from_detail(detail)
    tier = tier_get(name=fields["tier"])  # with its variables: the attempt's environment needs them too
    build: Build | None = None
    # The event's handler transaction holds everything: no savepoint of its own (an error undoes it all).
    with transaction.atomic(savepoint=False):
        refused = provisioning_refusal(tenant_id=tenant_id, fields=fields, tier=tier)
        if refused:  # nothing is stored or started
            raise EventRejected(refused)
        tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
        created = tenant is None
        if tenant is None:  # a racing insert of the same id fails this attempt; the retry finds the row
            tenant = Tenant.objects.create(pk=tenant_id, last_event_at=event.received_at, **fields)
            tenant_sync_schedule(tenant_id=tenant.pk)
        if not created and event_already_applied(tenant=tenant, event=event):
            build = Build.objects.filter(event=event, purpose=BuildPurpose.PROVISION).first()
        elif not created and (refused := provisioning_status_refusal(detail_type=event.detail_type, tenant=tenant)):
            history_record_event(tenant=tenant, event=event, summary=refused, details={"refused": True})
        else:
            if not created:
                for name, value in fields.items():
                    setattr(tenant, name, value)
                tenant.save()
                tenant_sync_schedule(tenant_id=tenant.pk)
            history_record_event(
                tenant=tenant,
                event=event,
                summary=f"{event.detail_type} received (tier {tenant.tier}, builder "
                f"{tenant.builder_config.get('type', '?')})",
            )
            run = provision_pipeline_start(tenant=tenant, event=event, actor_user=None, tier=tier)
            if run is None:  # the tier has no provision pipeline: its single build
                build = tenant_event_attempt_start(
                    tenant=tenant, purpose=BuildPurpose.PROVISION, event=event, tier=tier
                )
    if refused:
        raise EventRejected(refused)
    return event_handled_result(tenant=tenant, build=build)


def tenant_retry_provisioning(*, tenant: Tenant, actor_user: User | None) -> ActionResult:
    """Staff retry: a new attempt and a new build for a tenant whose provisioning failed."""
    tenant = Tenant.objects.get(pk=tenant.pk)
    if tenant.status == TenantStatus.PROVISIONING:
        return ActionResult(tenant=tenant, changed=False, message=f"{tenant.key} is already provisioning.")
    if tenant.status not in PROVISIONABLE:
        # Refused by the state machine, which records the refusal (outside any transaction of ours).
        tenant_transition(tenant=tenant, to=TenantStatus.PROVISIONING, actor_user=actor_user)
    if provision_pipeline_configured(tier_name=tenant.tier):
        return provision_pipeline_retry(tenant=tenant, actor_user=actor_user)
    return tenant_staff_attempt(
        tenant=tenant,
        purpose=BuildPurpose.PROVISION,
        request_summary="Retry provisioning requested",
        actor_user=actor_user,
    )
