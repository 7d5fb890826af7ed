"""Event handlers for the tenant lifecycle (registered in events.registry): each calls one service.

Each runs inside the events app's Celery task, is idempotent per event (a re-run after a crash finds
the event on the tenant's timeline and starts nothing new) and raises ``EventRejected`` for an event the
lifecycle refuses (recorded on the tenant's timeline first).
"""

import functools
from typing import Any, Protocol

from events.catalogue import DetailType
from events.dialects import detail_schema
from events.dialects.sbt import SbtDetailType
from events.models import ReceivedEvent
from events.registry import Handler, register
from tenants.dry_run import (
    deprovisioning_dry_run,
    provisioning_dry_run,
    sbt_offboarding_dry_run,
    sbt_onboarding_dry_run,
)
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


class EventService(Protocol):
    """A lifecycle service applying one received event."""

    def __call__(self, *, event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]: ...


def _handler(service: EventService) -> Handler:
    """The registry calls ``handler(event, detail)``; the lifecycle services take both keyword-only. The
    adapter carries the service's name (the dry run and the logs name what runs)."""

    @functools.wraps(service)
    def handle(event: ReceivedEvent, detail: dict[str, Any]) -> dict[str, Any]:
        return service(event=event, detail=detail)

    return handle


_HANDLERS: dict[str, tuple[EventService, str]] = {
    DetailType.TENANT_PROVISIONING: (tenant_provision, "Create/update the tenant, start its build."),
    DetailType.TENANT_DEPROVISIONING: (tenant_deprovision_from_event, "Start the tier's deprovisioning build."),
    DetailType.TENANT_PROVISIONING_SUCCESS: (
        provisioning_outcome_record,
        "Build succeeded: tenant DEPLOYING (or INACTIVE for a deprovision build), TENANT_DEPLOYMENT published.",
    ),
    DetailType.TENANT_PROVISIONING_FAILURE: (
        provisioning_outcome_record,
        "Build failed: tenant PROVISION_FAILED (or DEPROVISION_FAILED) with the reason.",
    ),
    DetailType.TENANT_DEPLOYMENT_SUCCESS: (deployment_outcome_record, "Recorded on the tenant's timeline."),
    DetailType.TENANT_DEPLOYMENT_FAILURE: (deployment_outcome_record, "Tenant DEPLOYING → DEPLOY_FAILED."),
    DetailType.CODEBUILD_BUILD_STATE_CHANGE: (
        codebuild_state_change_record,
        "CodeBuild's own state change: updates the Build; an unreported failure fails the tenant.",
    ),
    DetailType.TENANT_UPDATE: (
        functools.partial(operation_from_event, operation=BuildPurpose.UPDATE),
        "ACTIVE (or UPDATE_FAILED, a retry) → UPDATING with the new plan pending; the target tier's update build "
        "(none: at once) → ACTIVE on the new plan, or UPDATE_FAILED on the old one.",
    ),
    DetailType.TENANT_SUSPEND: (
        functools.partial(operation_from_event, operation=BuildPurpose.SUSPEND),
        "ACTIVE (or SUSPEND_FAILED) → SUSPENDING; the tier's suspend build (none: at once) → SUSPENDED.",
    ),
    DetailType.TENANT_RESUME: (
        functools.partial(operation_from_event, operation=BuildPurpose.RESUME),
        "SUSPENDED (or RESUME_FAILED) → RESUMING; the tier's resume build (none: at once) → ACTIVE.",
    ),
    SbtDetailType.ONBOARDING_REQUEST: (sbt_onboarding_apply, "sbt-aws: provision the tenant (as TENANT_PROVISIONING)."),
    SbtDetailType.OFFBOARDING_REQUEST: (sbt_offboarding_apply, "sbt-aws: deprovision the tenant."),
    SbtDetailType.ACTIVATE_REQUEST: (sbt_activation_refuse, "sbt-aws: refused (no resume yet); activateFailure."),
    SbtDetailType.DEACTIVATE_REQUEST: (sbt_activation_refuse, "sbt-aws: refused (no suspend yet); deactivateFailure."),
}

# What a handler would do, for the dry run (the types without one are shown with their handler only).
_DRY_RUNS = {
    DetailType.TENANT_PROVISIONING: provisioning_dry_run,
    DetailType.TENANT_DEPROVISIONING: deprovisioning_dry_run,
    SbtDetailType.ONBOARDING_REQUEST: sbt_onboarding_dry_run,
    SbtDetailType.OFFBOARDING_REQUEST: sbt_offboarding_dry_run,
}

for _detail_type, (_service, _description) in _HANDLERS.items():
    register(
        _detail_type,
        schema=detail_schema(_detail_type),
        handler=_handler(_service),
        description=_description,
        preview=_DRY_RUNS.get(_detail_type),
    )
