"""OpenAPI examples and documented errors of the tenants API: tenants, tiers, builds (the tenant's history is
``portal.openapi``'s)."""

from typing import Any

from drf_spectacular.utils import OpenApiExample

from orchestrator.openapi import EXAMPLE_TENANT_ID, error_response, example_request, example_response, page

READ_ERRORS = {
    401: error_response(
        "Not signed in (session or `Authorization: Token ...`).", "not_authenticated", "Not signed in."
    ),
    403: error_response("Not staff, or missing the view permission.", "permission_denied", "Permission denied."),
}
ACTION_ERRORS = {
    401: READ_ERRORS[401],
    403: error_response("Not staff, or missing the action's permission.", "permission_denied", "Permission denied."),
    404: error_response("No such tenant.", "not_found", "No such tenant."),
    409: error_response(
        "The tenant's status does not allow this (recorded in its history).",
        "transition_refused",
        "Deploying → Deprovisioning is not an allowed transition",
        {"status": ["Deploying → Deprovisioning is not an allowed transition"]},
    ),
}
INVALID_FILTER = error_response(
    "Invalid filter.", "invalid", "The request is invalid.", {"status": ['"X" is not valid.']}
)
WRITE_ERRORS = {
    **READ_ERRORS,
    400: error_response(
        "Invalid tier.",
        "invalid",
        "The request is invalid.",
        {"variables[0].name": ["Letters, digits and underscores; not starting with a digit."]},
    ),
    403: error_response("Tiers are changed by superusers only.", "permission_denied", "Only superusers change this."),
}

TENANT_EXAMPLE = {
    "id": EXAMPLE_TENANT_ID,
    "key": "acme",
    "name": "Acme Inc",
    "tier": "BASIC",
    "plan_name": "Basic",
    "status": "ACTIVE",
    "status_reason": "",
    "contact_email": "ops@acme.example",
    "version": 7,
    "synced_version": 7,
    "in_sync": True,
    "provisioning_attempt": 1,
    "deprovisioning_attempt": 0,
    "operation_attempt": 1,
    "pending_tier": "",
    "last_event_at": "2025-01-15T10:31:02Z",
    "created_at": "2025-01-15T10:30:01Z",
    "updated_at": "2025-01-15T10:35:40Z",
}
TENANT_DETAIL_EXAMPLE = {
    **TENANT_EXAMPLE,
    "document": {
        "id": EXAMPLE_TENANT_ID,
        "key": "acme",
        "name": "Acme Inc",
        "contacts": [{"email": "ops@acme.example", "isPrimary": True}],
    },
    "plan": {"id": "plan-basic", "name": "Basic", "tier": "BASIC", "sizeConfig": {"MAX_USERS": 50}},
    "builder_config": {"type": "CODE_BUILD", "config": {"environmentOverride": {"secret": "********"}}},
    "app_config": {"preferredSubdomain": "acme"},
    "pending_plan": {},
    "previous_plan": {"id": "plan-starter", "name": "Starter", "tier": "BASIC", "sizeConfig": {"MAX_USERS": 10}},
    "previous_tier": "BASIC",
}
TIER_INPUT_EXAMPLE = {
    "name": "BASIC",
    "provision_project": "orchestrator-basic-provision",
    "deprovision_project": "orchestrator-basic-deprovision",
    "allowed_builders": ["CODE_BUILD"],
    "description": "Shared infrastructure",
    "variables": [
        {"name": "EKS_CLUSTER_NAME", "value": "demo-eks", "type": "PLAINTEXT"},
        {"name": "DB_PASSWORD", "value": "/tenants/db-password", "type": "PARAMETER_STORE"},
    ],
}
TIER_EXAMPLE = {
    "id": 3,
    **TIER_INPUT_EXAMPLE,
    "version": 4,
    "synced_version": 4,
    "in_sync": True,
    "created_at": "2025-01-10T09:00:00Z",
    "updated_at": "2025-01-12T16:20:00Z",
}
BUILD_EXAMPLE = {
    "id": 41,
    "tenant": EXAMPLE_TENANT_ID,
    "tenant_key": "acme",
    "purpose": "provision",
    "attempt": 1,
    "builder_type": "CODE_BUILD",
    "project": "orchestrator-basic-provision",
    "build_id": "orchestrator-basic-provision:3f1d0c55-6a8e-4b8e-9a51-0c1b1f6f2a77",
    "arn": "arn:aws:codebuild:us-east-1:123456789012:build/orchestrator-basic-provision:3f1d0c55",
    "status": "SUCCEEDED",
    "status_reason": "",
    "logs_url": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups",
    "awaiting_outcome_event": False,
    "started_at": "2025-01-15T10:30:03Z",
    "ended_at": "2025-01-15T10:33:50Z",
}


def _action_example(
    message: str, status_value: str, *, changed: bool = True, build: str | None = None
) -> OpenApiExample:
    value: dict[str, Any] = {
        "tenant": EXAMPLE_TENANT_ID,
        "status": status_value,
        "changed": changed,
        "message": message,
        "build": build,
    }
    return example_response("changed" if changed else "already done", value, status=None)


# --- Tenants ----------------------------------------------------------------------------------------

TENANTS_LIST = [example_response("a page of tenants", page(TENANT_EXAMPLE), status=None)]
TENANT_DETAIL = [example_response("tenant", TENANT_DETAIL_EXAMPLE, status=None)]
TENANT_RETRY_PROVISIONING = [
    _action_example(
        "acme: provisioning attempt 2 started (orchestrator-basic-provision:3f1d0c55).",
        "PROVISIONING",
        build="orchestrator-basic-provision:3f1d0c55",
    ),
    _action_example("acme is already provisioning.", "PROVISIONING", changed=False),
]
TENANT_DEPROVISION = [
    _action_example(
        "acme: deprovisioning attempt 1 started (orchestrator-basic-deprovision:9a0e).",
        "DEPROVISIONING",
        build="orchestrator-basic-deprovision:9a0e",
    ),
    _action_example("acme is already inactive.", "INACTIVE", changed=False),
]
TENANT_UPDATE_INPUT = [
    example_request(
        "a new plan on another tier",
        {"planConfig": {"id": "plan-premium", "name": "Premium", "tier": "PREMIUM", "sizeConfig": {"MAX_USERS": 500}}},
    ),
    example_request("retry a failed update (its pending plan)", {}),
]
TENANT_UPDATE = [
    _action_example(
        "acme: update its update build is recorded and starts now (7d0c:update:2).", "UPDATING", build="7d0c:update:2"
    ),
    _action_example("acme: update now active.", "ACTIVE"),
    _action_example("acme is already updating.", "UPDATING", changed=False),
]
TENANT_SUSPEND = [
    _action_example("acme: suspend now suspended.", "SUSPENDED"),
    _action_example("acme is already suspended.", "SUSPENDED", changed=False),
]
TENANT_RESUME = [
    _action_example("acme: resume now active.", "ACTIVE"),
    _action_example("acme is already active.", "ACTIVE", changed=False),
]
TENANT_ROLL_BACK = [
    _action_example("acme: update rolled back; active again.", "ACTIVE"),
    _action_example("acme has no update to roll back.", "ACTIVE", changed=False),
]
OPERATION_ERRORS = {
    **ACTION_ERRORS,
    409: error_response(
        "The tenant's status does not allow this operation (recorded in its history).",
        "operation_refused",
        "Update refused: tenant 7d0c is Provisioning, not Active or Update failed.",
        {"status": ["Update refused: tenant 7d0c is Provisioning, not Active or Update failed."]},
    ),
}
UPDATE_ERRORS = {
    **OPERATION_ERRORS,
    400: error_response(
        "The plan cannot be the tenant's (unknown tier, a builder the tier refuses, bad sizeConfig names).",
        "invalid_plan",
        "Update refused: Unknown tier 'GOLD': it is not in the tier mapping.",
        {"planConfig.tier": ["Unknown tier 'GOLD': it is not in the tier mapping."]},
    ),
}
TENANT_RESYNC = [_action_example("acme: DynamoDB write of version 8 scheduled.", "ACTIVE")]

# --- Tiers ------------------------------------------------------------------------------------------

TIERS_LIST = [example_response("tiers", page(TIER_EXAMPLE), status=None)]
TIER_INPUT = [example_request("a tier", TIER_INPUT_EXAMPLE)]
TIER_PARTIAL_INPUT = [
    example_request(
        "new project and variables",
        {
            "provision_project": "orchestrator-basic-provision-v2",
            "variables": [{"name": "EKS_CLUSTER_NAME", "value": "eks-2", "type": "PLAINTEXT"}],
        },
    )
]
TIER_CREATED = [example_response("created", TIER_EXAMPLE, status=None)]
TIER_DETAIL = [example_response("tier", TIER_EXAMPLE, status=None)]
TIER_UPDATED = [example_response("updated", TIER_EXAMPLE, status=None)]

# --- Builds -----------------------------------------------------------------------------------------

BUILDS_LIST = [example_response("builds", page(BUILD_EXAMPLE), status=None)]
BUILD_DETAIL = [
    example_response("build", {**BUILD_EXAMPLE, "environment": [{"name": "TENANT_KEY", "value": "acme"}]}, status=None)
]
