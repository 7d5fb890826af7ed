"""Event handlers for the tenant lifecycle (registered in events.registry): parse, call one service.

Each runs inside the events app's Celery task, is idempotent per event (a re-run after a crash finds
the event on the tenant's timeline and starts nothing new) and raises ``EventRejected`` for an event the
lifecycle refuses (recorded on the tenant's timeline first).
"""

from typing import Any

from events.catalogue import DetailType
from events.dialects import detail_schema
from events.dialects.sbt import SbtDetailType
from events.models import ReceivedEvent
from events.registry import register
from tenants.models import BuildPurpose
from tenants.services.deprovisioning import tenant_deprovision_from_event
from tenants.services.operations import operation_from_event
from tenants.services.outcomes import (
    codebuild_state_change_record,
    deployment_outcome_record,
    provisioning_outcome_record,
)
from tenants.services.provisioning import tenant_provision
from tenants.services.sbt import sbt_activation_refuse, sbt_offboarding_apply, sbt_onboarding_apply


def handle_tenant_provisioning(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return tenant_provision(event=event, detail=detail)


def handle_tenant_deprovisioning(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return tenant_deprovision_from_event(event=event, detail=detail)


def handle_provisioning_outcome(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return provisioning_outcome_record(event=event, detail=detail)


def handle_deployment_outcome(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return deployment_outcome_record(event=event, detail=detail)


def handle_codebuild_state_change(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return codebuild_state_change_record(event=event, detail=detail)


def handle_tenant_update(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return operation_from_event(event=event, detail=detail, operation=BuildPurpose.UPDATE)


def handle_tenant_suspend(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return operation_from_event(event=event, detail=detail, operation=BuildPurpose.SUSPEND)


def handle_tenant_resume(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return operation_from_event(event=event, detail=detail, operation=BuildPurpose.RESUME)


def handle_sbt_onboarding(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return sbt_onboarding_apply(event=event, detail=detail)


def handle_sbt_offboarding(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return sbt_offboarding_apply(event=event, detail=detail)


def handle_sbt_activation(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
    return sbt_activation_refuse(event=event, detail=detail)


_HANDLERS = {
    DetailType.TENANT_PROVISIONING: (handle_tenant_provisioning, "Create/update the tenant, start its build."),
    DetailType.TENANT_DEPROVISIONING: (handle_tenant_deprovisioning, "Start the tier's deprovisioning build."),
    DetailType.TENANT_PROVISIONING_SUCCESS: (
        handle_provisioning_outcome,
        "Build succeeded: tenant DEPLOYING (or INACTIVE for a deprovision build), TENANT_DEPLOYMENT published.",
    ),
    DetailType.TENANT_PROVISIONING_FAILURE: (
        handle_provisioning_outcome,
        "Build failed: tenant PROVISION_FAILED (or DEPROVISION_FAILED) with the reason.",
    ),
    DetailType.TENANT_DEPLOYMENT_SUCCESS: (handle_deployment_outcome, "Recorded on the tenant's timeline."),
    DetailType.TENANT_DEPLOYMENT_FAILURE: (handle_deployment_outcome, "Tenant DEPLOYING → DEPLOY_FAILED."),
    DetailType.CODEBUILD_BUILD_STATE_CHANGE: (
        handle_codebuild_state_change,
        "CodeBuild's own state change: updates the Build; an unreported failure fails the tenant.",
    ),
    DetailType.TENANT_UPDATE: (
        handle_tenant_update,
        "ACTIVE (or UPDATE_FAILED, a retry) → UPDATING with the new plan pending; the target tier's update build "
        "(none: at once) → ACTIVE on the new plan, or UPDATE_FAILED on the old one.",
    ),
    DetailType.TENANT_SUSPEND: (
        handle_tenant_suspend,
        "ACTIVE (or SUSPEND_FAILED) → SUSPENDING; the tier's suspend build (none: at once) → SUSPENDED.",
    ),
    DetailType.TENANT_RESUME: (
        handle_tenant_resume,
        "SUSPENDED (or RESUME_FAILED) → RESUMING; the tier's resume build (none: at once) → ACTIVE.",
    ),
    SbtDetailType.ONBOARDING_REQUEST: (
        handle_sbt_onboarding,
        "sbt-aws: provision the tenant (as TENANT_PROVISIONING).",
    ),
    SbtDetailType.OFFBOARDING_REQUEST: (handle_sbt_offboarding, "sbt-aws: deprovision the tenant."),
    SbtDetailType.ACTIVATE_REQUEST: (handle_sbt_activation, "sbt-aws: refused (no resume yet); activateFailure."),
    SbtDetailType.DEACTIVATE_REQUEST: (handle_sbt_activation, "sbt-aws: refused (no suspend yet); deactivateFailure."),
}

for _detail_type, (_handler, _description) in _HANDLERS.items():
    register(_detail_type, schema=detail_schema(_detail_type), handler=_handler, description=_description)
