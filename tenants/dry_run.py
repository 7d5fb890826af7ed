"""What the tenant lifecycle's handlers would do with an event, without doing it (``events.dry_run``).

Reads only: the refusals, the tier, the builder check and the environment come from the functions the
handlers themselves call (``provisioning_refusal``, ``deprovisioning_refusal``, ``attempt_plan``...), applied
to the stored tenant or, for a tenant the event would create, to an unsaved one. No row is written, no task
queued, no builder called; SSM and Secrets Manager variables are shown by name (the builder resolves them).
"""

from typing import Any

from events.dialects import sbt
from orchestrator.errors import ApplicationError
from tenants.models import ALLOWED_TRANSITIONS, BuildPurpose, Tenant, TenantStatus, VariableType
from tenants.selectors import tier_get
from tenants.services.build_policy import builder_type_of
from tenants.services.builds import PURPOSE_STATUSES, attempt_plan, idempotency_token
from tenants.services.deprovisioning import deprovisioning_refusal
from tenants.services.provisioning import (
    provisioning_refusal,
    provisioning_status_refusal,
    tenant_fields_from_detail,
)
from tenants.services.sbt import sbt_offboarding_detail

# Variables whose value is a reference the builder resolves (CodeBuild natively, the LOCAL runner via AWS).
REFERENCE_TYPES = frozenset({VariableType.PARAMETER_STORE, VariableType.SECRETS_MANAGER})


def _status_label(status: str | None) -> str | None:
    return TenantStatus(status).label if status else None


def _tenant_section(*, tenant_id: str, existing: Tenant | None, resulting: str | None) -> dict[str, Any]:
    current = existing.status if existing else None
    return {
        "id": tenant_id,
        "exists": existing is not None,
        "current_status": current,
        "current_status_label": _status_label(current),
        "resulting_status": resulting,
        "resulting_status_label": _status_label(resulting),
    }


def _refused(*, tenant_id: str, existing: Tenant | None, reason: str) -> dict[str, Any]:
    return {
        "outcome": "refused",
        "reason": reason,
        "tenant": _tenant_section(
            tenant_id=tenant_id, existing=existing, resulting=existing.status if existing else None
        ),
        "transitions": [],
    }


def _tier_section(*, tier_name: str, builder_type: str) -> dict[str, Any]:
    tier = tier_get(name=tier_name)
    allowed = list(tier.allowed_builders or []) if tier else []
    return {
        "name": tier_name,
        "found": tier is not None,
        "allowed_builders": allowed,
        "builder": builder_type,
        "builder_allowed": builder_type in allowed,
    }


def _environment(plan_environment: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for variable in plan_environment:
        row: dict[str, Any] = variable.masked()
        row["resolved_by_builder"] = variable.type in REFERENCE_TYPES
        rows.append(row)
    return rows


def _attempt(*, tenant: Tenant, existing: Tenant | None, purpose: str) -> dict[str, Any]:
    """The attempt ``tenant_attempt_start`` would make: the running status, then the build or the failure."""
    running, failed, done = PURPOSE_STATUSES[purpose]
    start_from = existing.status if existing else TenantStatus.PENDING_PROVISION
    attempt_field = "provisioning_attempt" if purpose == BuildPurpose.PROVISION else "deprovisioning_attempt"
    attempt = getattr(tenant, attempt_field) + 1
    transitions = [{"from": start_from, "to": running, "allowed": running in ALLOWED_TRANSITIONS[start_from]}]
    builder_type = builder_type_of(tenant.builder_config)
    result: dict[str, Any] = {
        "tier": _tier_section(tier_name=tenant.tier, builder_type=builder_type),
        "build": None,
        "environment": [],
    }
    try:
        plan = attempt_plan(tenant=tenant, purpose=purpose)
    except ApplicationError as error:
        transitions.append({"from": running, "to": failed, "allowed": True, "reason": error.message})
        return {
            **result,
            "outcome": "attempt_fails",
            "reason": error.message,
            "tenant": _tenant_section(tenant_id=tenant.pk, existing=existing, resulting=failed),
            "transitions": transitions,
        }
    result["tier"]["why"] = (
        f"Tier {plan.tier.name} allows {', '.join(plan.tier.allowed_builders or [])}; "
        f"the event names {plan.builder_type} (builderConfig.type)."
    )
    return {
        **result,
        "outcome": "build_starts",
        "reason": f"{purpose} attempt {attempt}: the {plan.builder_type} builder runs {plan.project}; "
        f"the tenant becomes {TenantStatus(done).label} when its outcome event reports success.",
        "tenant": _tenant_section(tenant_id=tenant.pk, existing=existing, resulting=running),
        "transitions": transitions,
        "build": {
            "purpose": purpose,
            "attempt": attempt,
            "builder": plan.builder_type,
            "project": plan.project,
            "idempotency_token": idempotency_token(tenant_id=tenant.pk, purpose=purpose, attempt=attempt),
        },
        "environment": _environment(plan.environment),
    }


def provisioning_dry_run(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """What ``tenant_provision`` would do with ``detail``."""
    tenant_id = str(detail["tenant"]["id"])
    fields = tenant_fields_from_detail(detail)
    existing = Tenant.objects.filter(pk=tenant_id).first()
    refused = provisioning_refusal(tenant_id=tenant_id, fields=fields, tier=tier_get(name=fields["tier"]))
    if not refused and existing is not None:
        refused = provisioning_status_refusal(detail_type=detail_type, tenant=existing)
    if refused:
        return _refused(tenant_id=tenant_id, existing=existing, reason=refused)
    # The tenant as the handler would hold it: stored columns updated with the event's, never saved here.
    tenant = Tenant(pk=tenant_id, **fields)
    if existing is not None:
        tenant.status, tenant.provisioning_attempt = existing.status, existing.provisioning_attempt
    return _attempt(tenant=tenant, existing=existing, purpose=BuildPurpose.PROVISION)


def deprovisioning_dry_run(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """What ``tenant_deprovision_from_event`` would do with ``detail``."""
    tenant_id = str(detail["tenant"]["id"])
    existing = Tenant.objects.filter(pk=tenant_id).first()
    refused = deprovisioning_refusal(detail_type=detail_type, tenant_id=tenant_id, tenant=existing)
    if refused or existing is None:
        return _refused(tenant_id=tenant_id, existing=existing, reason=refused)
    return _attempt(tenant=existing, existing=existing, purpose=BuildPurpose.DEPROVISION)


def sbt_onboarding_dry_run(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """sbt-aws's ``onboardingRequest``: mapped as ``sbt_onboarding_apply`` maps it."""
    return provisioning_dry_run(detail_type, sbt.provisioning_detail(detail))


def sbt_offboarding_dry_run(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return deprovisioning_dry_run(detail_type, sbt_offboarding_detail(detail))
