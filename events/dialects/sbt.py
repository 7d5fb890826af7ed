"""The SaaS Builder Toolkit dialect (``awslabs/sbt-aws``): its detail-types, sources and detail shapes.

Taken from sbt-aws's source (commit cea7b7765cf5b8d5b8dcc8a470b15aeebcd7daa0, release 0.9.x):

- ``src/utils/event-manager.ts``: every standard event is ``sbt_aws_<name>``; the control plane's
  (``onboardingRequest``, ``offboardingRequest``, ``activateRequest``, ``deactivateRequest``, ...) come from
  ``controlPlaneEventSource`` (default ``sbt.control.plane``), the application plane's (``provisionSuccess``,
  ``provisionFailure``, ``deprovisionSuccess``, ..., ``activateFailure``, ``deactivateFailure``) from
  ``applicationPlaneEventSource`` (default ``sbt.application.plane``); rules match source and detail-type.
- ``resources/functions/tenant-registrations/index.py``: the onboarding request's detail is the
  registration's data, the tenant's data (with ``tenantRegistrationId``) and ``tenantId``, merged; the
  offboarding request's is the deleted tenant merged with its registration (``tenantRegistrationId``,
  ``tenantId``, ...).
- ``src/core-app-plane/script-job.ts`` and ``tenant-lifecycle-script-jobs.ts``: a provisioning (or
  deprovisioning) job answers ``{"tenantRegistrationId": ..., "jobOutput": {"tenantData": {...},
  "tenantRegistrationData": {...}}}`` with the build's exported variables sorted into the two objects as the
  job's ``environmentVariablesToOutgoingEvent`` says, or, on failure, ``{"tenantRegistrationId": ...,
  "jobOutput": {"tenantStatus": "Failed to provision tenant."}}`` (``"Failed to deprovision tenant."``).
- ``src/control-plane/tenant-registration/tenant-registration.service.ts``: the control plane reads
  ``$.detail.tenantRegistrationId`` (the registration to update) and ``$.detail.jobOutput`` (the update).

sbt-aws ships no producer for ``activateRequest`` / ``deactivateRequest``; their detail is taken to name
``tenantId`` (and ``tenantRegistrationId`` when known) like the other requests, and their failure answers
follow the script jobs' failure shape. Everything we add beside sbt's fields is under ``orchestrator``.
"""

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import serializers

from events.catalogue import AllowExtraFields

PREFIX = "sbt_aws_"
# Our tenant ids and keys share one pattern; sbt-aws's tenant ids (UUIDs) fit it.
TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SbtDetailType:
    # Requests of sbt's control plane, which we accept.
    ONBOARDING_REQUEST = f"{PREFIX}onboardingRequest"
    OFFBOARDING_REQUEST = f"{PREFIX}offboardingRequest"
    ACTIVATE_REQUEST = f"{PREFIX}activateRequest"
    DEACTIVATE_REQUEST = f"{PREFIX}deactivateRequest"
    # Answers of the application plane (us), which its control plane reads.
    PROVISION_SUCCESS = f"{PREFIX}provisionSuccess"
    PROVISION_FAILURE = f"{PREFIX}provisionFailure"
    DEPROVISION_SUCCESS = f"{PREFIX}deprovisionSuccess"
    DEPROVISION_FAILURE = f"{PREFIX}deprovisionFailure"
    ACTIVATE_SUCCESS = f"{PREFIX}activateSuccess"
    ACTIVATE_FAILURE = f"{PREFIX}activateFailure"
    DEACTIVATE_SUCCESS = f"{PREFIX}deactivateSuccess"
    DEACTIVATE_FAILURE = f"{PREFIX}deactivateFailure"

    REQUESTS = (ONBOARDING_REQUEST, OFFBOARDING_REQUEST, ACTIVATE_REQUEST, DEACTIVATE_REQUEST)
    # The requests that start a tenant's lifecycle work, whose registration id its answers carry.
    LIFECYCLE_REQUESTS = (ONBOARDING_REQUEST, OFFBOARDING_REQUEST)


# Request -> (success answer, failure answer, the failure's jobOutput.tenantStatus).
ANSWERS: dict[str, tuple[str, str, str]] = {
    SbtDetailType.ONBOARDING_REQUEST: (
        SbtDetailType.PROVISION_SUCCESS,
        SbtDetailType.PROVISION_FAILURE,
        "Failed to provision tenant.",
    ),
    SbtDetailType.OFFBOARDING_REQUEST: (
        SbtDetailType.DEPROVISION_SUCCESS,
        SbtDetailType.DEPROVISION_FAILURE,
        "Failed to deprovision tenant.",
    ),
    SbtDetailType.ACTIVATE_REQUEST: (
        SbtDetailType.ACTIVATE_SUCCESS,
        SbtDetailType.ACTIVATE_FAILURE,
        "Failed to activate tenant.",
    ),
    SbtDetailType.DEACTIVATE_REQUEST: (
        SbtDetailType.DEACTIVATE_SUCCESS,
        SbtDetailType.DEACTIVATE_FAILURE,
        "Failed to deactivate tenant.",
    ),
}


class SbtOnboardingRequestDetail(AllowExtraFields):
    """``onboardingRequest``: the registration's and the tenant's data. ``tier`` picks our tier mapping's
    entry; without one the provisioning fails (and sbt hears ``provisionFailure``) rather than the event."""

    tenantRegistrationId = serializers.CharField(max_length=256)
    tenantId = serializers.RegexField(TENANT_ID_PATTERN, max_length=63)
    tier = serializers.CharField(max_length=128, required=False, allow_blank=True)
    tenantName = serializers.CharField(max_length=255, required=False, allow_blank=True)
    email = serializers.CharField(max_length=320, required=False, allow_blank=True)


class SbtOffboardingRequestDetail(AllowExtraFields):
    """``offboardingRequest``: the deleted tenant merged with its registration."""

    tenantRegistrationId = serializers.CharField(max_length=256)
    tenantId = serializers.RegexField(TENANT_ID_PATTERN, max_length=63)


class SbtTenantRequestDetail(AllowExtraFields):
    """``activateRequest`` / ``deactivateRequest``."""

    tenantId = serializers.RegexField(TENANT_ID_PATTERN, max_length=63)
    tenantRegistrationId = serializers.CharField(max_length=256, required=False)


SBT_DETAIL_SCHEMAS: dict[str, type[serializers.Serializer]] = {
    SbtDetailType.ONBOARDING_REQUEST: SbtOnboardingRequestDetail,
    SbtDetailType.OFFBOARDING_REQUEST: SbtOffboardingRequestDetail,
    SbtDetailType.ACTIVATE_REQUEST: SbtTenantRequestDetail,
    SbtDetailType.DEACTIVATE_REQUEST: SbtTenantRequestDetail,
}


def sbt_event_bus() -> str:
    return settings.SBT_EVENT_BUS_NAME or settings.EVENT_BUS_NAME


def bus_rule_pattern() -> dict[str, Any]:
    """The EventBridge rule that brings sbt's requests to the intake (as its EventManager's rules match)."""
    return {"source": [settings.SBT_CONTROL_PLANE_SOURCE], "detail-type": list(SbtDetailType.REQUESTS)}


def build_variables(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The request's fields a build receives as variables, as sbt's script jobs import them from the event
    (objects JSON-encoded later, as ``environmentJSONVariablesFromIncomingEvent`` does). Names a build cannot
    have (or that CodeBuild reserves) are left out."""
    return {
        name: value
        for name, value in detail.items()
        if _ENV_NAME.match(name) and not name.startswith("CODEBUILD_") and value is not None
    }


def provisioning_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """An ``onboardingRequest`` as the ``TENANT_PROVISIONING`` detail our provisioning takes.

    The tenant's id is sbt's ``tenantId`` (also its key: sbt has no other unique name), the tier is its
    ``tier``, the builder is ``SBT_BUILDER_TYPE``, and every field of the request reaches the build as a
    variable (``tenantId``, ``tier``, ``tenantName``, ``email``, ``tenantRegistrationId``, ...).
    """
    tenant_id = str(detail["tenantId"])
    document = {**detail, "id": tenant_id, "key": tenant_id, "name": str(detail.get("tenantName") or "")}
    if detail.get("email"):
        document["contacts"] = [{"email": detail["email"], "isPrimary": True}]
    return {
        "tenant": document,
        "planConfig": {"tier": str(detail.get("tier") or "")},
        "builderConfig": {
            "type": settings.SBT_BUILDER_TYPE,
            "config": {"environmentOverride": build_variables(detail)},
        },
    }


def job_output(outputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A successful job's ``jobOutput``: the build's exported variables named in SBT_TENANT_DATA_VARIABLES
    and SBT_TENANT_REGISTRATION_DATA_VARIABLES (a variable the build did not export is left out)."""
    return {
        "tenantData": {name: outputs[name] for name in settings.SBT_TENANT_DATA_VARIABLES if name in outputs},
        "tenantRegistrationData": {
            name: outputs[name] for name in settings.SBT_TENANT_REGISTRATION_DATA_VARIABLES if name in outputs
        },
    }


def answer_detail(
    *,
    request_type: str,
    succeeded: bool,
    registration_id: str,
    tenant_id: str,
    status: str,
    reason: str = "",
    outputs: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The detail-type and detail of our answer to an sbt request: sbt's two fields, then ours."""
    success_type, failure_type, failure_status = ANSWERS[request_type]
    output = job_output(outputs or {}) if succeeded else {"tenantStatus": failure_status}
    detail: dict[str, Any] = {"tenantRegistrationId": registration_id, "jobOutput": output}
    detail["orchestrator"] = {"tenantId": tenant_id, "status": status, **({"reason": reason} if reason else {})}
    return (success_type if succeeded else failure_type), detail
