"""HTTP edges of the tenants API: tenants (read, history, staff actions), tiers (CRUD), builds (read).

Permissions are the admin's: reading needs the model's view permission (``Read-only staff``), each action
its own permission (``Operators``), tier writes a superuser. Actions call the same services as the admin.
"""

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.errors import ApplicationError, ConflictError
from orchestrator.pagination import filtered_page
from orchestrator.permissions import StaffModelPermissions, SuperuserWrites, action_permission
from orchestrator.redaction import MASK
from orchestrator.staff import PERM_DEPROVISION, PERM_RESYNC, PERM_RETRY_PROVISIONING
from orchestrator.timeline import tenant_history_entries, timeline_complete
from tenants.models import Build, Tenant, TenantHistory, Tier
from tenants.selectors import build_get, build_list, tenant_get, tenant_list, tier_get_by_name, tier_list
from tenants.serializers import (
    BuildDetailSerializer,
    BuildFilterSerializer,
    BuildSerializer,
    HistoryEntrySerializer,
    TenantActionResultSerializer,
    TenantDetailSerializer,
    TenantErrorResponseSerializer,
    TenantFilterSerializer,
    TenantSerializer,
    TierInputSerializer,
    TierSerializer,
)
from tenants.services.builds import ActionResult
from tenants.services.deprovisioning import tenant_deprovision
from tenants.services.provisioning import tenant_retry_provisioning
from tenants.services.sync import tenant_resync
from tenants.services.tiers import tier_delete, tier_upsert

TAG_TENANTS = "tenants"
TAG_TIERS = "tiers"
TAG_BUILDS = "builds"


def _error(description: str, code: str, message: str, fields: dict | None = None) -> OpenApiResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return OpenApiResponse(
        TenantErrorResponseSerializer,
        description=description,
        examples=[OpenApiExample(code, value={"error": body}, response_only=True)],
    )


READ_ERRORS = {
    401: _error("Not signed in (session or `Authorization: Token ...`).", "not_authenticated", "Not signed in."),
    403: _error("Not staff, or missing the view permission.", "permission_denied", "Permission denied."),
}
ACTION_ERRORS = {
    401: READ_ERRORS[401],
    403: _error("Not staff, or missing the action's permission.", "permission_denied", "Permission denied."),
    404: _error("No such tenant.", "not_found", "No such tenant."),
    409: _error(
        "The tenant's status does not allow this (recorded in its history).",
        "transition_refused",
        "Deploying → Deprovisioning is not an allowed transition",
        {"status": ["Deploying → Deprovisioning is not an allowed transition"]},
    ),
}
WRITE_ERRORS = {
    **READ_ERRORS,
    400: _error(
        "Invalid tier.",
        "invalid",
        "The request is invalid.",
        {"variables[0].name": ["Letters, digits and underscores; not starting with a digit."]},
    ),
    403: _error("Tiers are changed by superusers only.", "permission_denied", "Only superusers change this."),
}

TENANT_EXAMPLE = {
    "id": "7d0c9b2e-4c1e-4a57-9d59-2f7c1a7b4d10",
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
    "last_event_at": "2025-01-15T10:31:02Z",
    "created_at": "2025-01-15T10:30:01Z",
    "updated_at": "2025-01-15T10:35:40Z",
}
TENANT_DETAIL_EXAMPLE = {
    **TENANT_EXAMPLE,
    "document": {
        "id": TENANT_EXAMPLE["id"],
        "key": "acme",
        "name": "Acme Inc",
        "contacts": [{"email": "ops@acme.example", "isPrimary": True}],
    },
    "plan": {
        "id": "plan-basic",
        "name": "Basic",
        "tier": "BASIC",
        "sizeConfig": {"MAX_USERS": 50, "DB_PASSWORD": "********"},
    },
    "builder_config": {
        "type": "CODE_BUILD",
        "config": {"environmentOverride": {"secret": "********", "context": "********"}},
    },
    "app_config": {"preferredSubdomain": "acme", "clientSecret": "********"},
}
HISTORY_EXAMPLE = {
    "id": 912,
    "at": "2025-01-15T10:34:12Z",
    "kind": "callback",
    "summary": "Control-plane webhook to https://control-plane.example/webhook: failed for good (HTTP 500)",
    "details": {"delivery": 55, "status": "failed", "attempts": 4, "status_code": 500},
    "actor": "system",
    "ref_type": "delivery",
    "ref_id": "55",
    "event": None,
    "build": None,
    "delivery": {
        "id": 55,
        "step": "control_plane_webhook",
        "event_type": "TENANT_DEPLOYMENT",
        "url": "https://control-plane.example/webhook",
        "status": "succeeded",
        "status_reason": "HTTP 204",
        "attempts": 5,
        "last_status_code": 204,
    },
}
TIER_EXAMPLE = {
    "id": 3,
    "name": "BASIC",
    "provision_project": "orchestrator-basic-provision",
    "deprovision_project": "orchestrator-basic-deprovision",
    "allowed_builders": ["CODE_BUILD"],
    "description": "Shared infrastructure",
    "variables": [
        {"name": "EKS_CLUSTER_NAME", "value": "demo-eks", "type": "PLAINTEXT"},
        {"name": "DB_PASSWORD", "value": "/tenants/db-password", "type": "PARAMETER_STORE"},
    ],
    "version": 4,
    "synced_version": 4,
    "in_sync": True,
    "created_at": "2025-01-10T09:00:00Z",
    "updated_at": "2025-01-12T16:20:00Z",
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
BUILD_EXAMPLE = {
    "id": 41,
    "tenant": TENANT_EXAMPLE["id"],
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


def _page_example(name: str, row: dict[str, Any]) -> OpenApiExample:
    return OpenApiExample(
        name, value={"count": 1, "next": None, "previous": None, "results": [row]}, response_only=True
    )


def _action_example(message: str, status_value: str, *, changed: bool = True, build: str | None = None) -> Any:
    return OpenApiExample(
        "changed" if changed else "already done",
        value={
            "tenant": TENANT_EXAMPLE["id"],
            "status": status_value,
            "changed": changed,
            "message": message,
            "build": build,
        },
        response_only=True,
    )


TENANT_ID = OpenApiParameter("pk", OpenApiTypes.STR, OpenApiParameter.PATH, description="The tenant id.")
TIER_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The tier name.")


# --- Tenants ----------------------------------------------------------------------------------------


class TenantCollectionApi(GenericAPIView):
    permission_classes = [StaffModelPermissions]
    serializer_class = TenantSerializer
    queryset = Tenant.objects.none()

    @extend_schema(
        operation_id="tenants_list",
        tags=[TAG_TENANTS],
        summary="List tenants, newest first",
        description="Filter by `status` and `tier`; `search` matches id, key, name or a contact's email.",
        parameters=[TenantFilterSerializer],
        responses={
            200: OpenApiResponse(
                TenantSerializer(many=True), examples=[_page_example("a page of tenants", TENANT_EXAMPLE)]
            ),
            400: _error("Invalid filter.", "invalid", "The request is invalid.", {"status": ['"X" is not valid.']}),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        return filtered_page(
            self, request, filters=TenantFilterSerializer, select=tenant_list, serializer=TenantSerializer
        )


class TenantDetailApi(GenericAPIView):
    permission_classes = [StaffModelPermissions]
    serializer_class = TenantDetailSerializer
    queryset = Tenant.objects.none()

    @extend_schema(
        operation_id="tenants_retrieve",
        tags=[TAG_TENANTS],
        summary="One tenant with its document, plan and configuration (secrets masked)",
        parameters=[TENANT_ID],
        responses={
            200: OpenApiResponse(
                TenantDetailSerializer,
                examples=[OpenApiExample("tenant", value=TENANT_DETAIL_EXAMPLE, response_only=True)],
            ),
            404: ACTION_ERRORS[404],
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(TenantDetailSerializer(tenant_get(pk=pk)).data)


class TenantHistoryApi(GenericAPIView):
    permission_classes = [StaffModelPermissions]
    serializer_class = HistoryEntrySerializer
    queryset = TenantHistory.objects.none()

    @extend_schema(
        operation_id="tenants_history",
        tags=[TAG_TENANTS],
        summary="The tenant's timeline, oldest first",
        description=(
            "Received events, status changes, builds, callback deliveries and staff actions, each with its "
            "details (secrets masked) and the current state of the event, build or delivery it refers to."
        ),
        parameters=[TENANT_ID],
        responses={
            200: OpenApiResponse(
                HistoryEntrySerializer(many=True), examples=[_page_example("a page of history", HISTORY_EXAMPLE)]
            ),
            404: ACTION_ERRORS[404],
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        tenant = tenant_get(pk=pk)
        page = self.paginate_queryset(tenant_history_entries(tenant_id=tenant.pk))
        return self.get_paginated_response(HistoryEntrySerializer(timeline_complete(page), many=True).data)


def _action_response(result: ActionResult | str, tenant: Tenant) -> Response:
    if isinstance(result, str):  # resync answers with a message only
        tenant.refresh_from_db(fields=["status"])
        body = {"tenant": tenant.pk, "status": tenant.status, "changed": True, "message": result, "build": None}
    else:
        build = None
        if result.build is not None:
            build = result.build.build_id or str(result.build.pk)
        body = {
            "tenant": result.tenant.pk,
            "status": result.tenant.status,
            "changed": result.changed,
            "message": result.message,
            "build": build,
        }
    return Response(body, status=status.HTTP_202_ACCEPTED)


def _tenant_action_api(
    name: str,
    *,
    permission: str,
    action: Callable[..., Any],
    operation_id: str,
    summary: str,
    description: str,
    examples: list[OpenApiExample],
    errors: dict[int, OpenApiResponse] = ACTION_ERRORS,
) -> type[APIView]:
    """A staff action on one tenant: ``POST`` runs ``action(tenant=..., actor_user=...)`` and answers 202."""

    @extend_schema(
        operation_id=operation_id,
        tags=[TAG_TENANTS],
        summary=summary,
        description=description,
        parameters=[TENANT_ID],
        request=None,
        responses={202: OpenApiResponse(TenantActionResultSerializer, examples=examples), **errors},
    )
    def post(self: APIView, request: Request, pk: str) -> Response:
        tenant = tenant_get(pk=pk)
        return _action_response(action(tenant=tenant, actor_user=request.user), tenant)

    attributes = {"__module__": __name__, "__doc__": summary, "post": post}
    return type(name, (APIView,), {**attributes, "permission_classes": [action_permission(permission)]})


TenantRetryProvisioningApi = _tenant_action_api(
    "TenantRetryProvisioningApi",
    permission=PERM_RETRY_PROVISIONING,
    action=tenant_retry_provisioning,
    operation_id="tenants_retry_provisioning",
    summary="Retry provisioning: a new attempt and a new build",
    description=(
        "For a tenant pending or whose provisioning failed. Idempotent: a tenant already provisioning "
        "answers `changed: false`. Recorded in the tenant's history with the caller."
    ),
    examples=[
        _action_example(
            "acme: provisioning attempt 2 started (orchestrator-basic-provision:3f1d0c55).",
            "PROVISIONING",
            build="orchestrator-basic-provision:3f1d0c55",
        ),
        _action_example("acme is already provisioning.", "PROVISIONING", changed=False),
    ],
)

TenantDeprovisionApi = _tenant_action_api(
    "TenantDeprovisionApi",
    permission=PERM_DEPROVISION,
    action=tenant_deprovision,
    operation_id="tenants_deprovision",
    summary="Deprovision an active tenant (or retry a failed deprovisioning)",
    description=(
        "Starts the tier's deprovisioning build. Idempotent: a tenant already deprovisioning or inactive "
        "answers `changed: false`. Recorded in the tenant's history with the caller."
    ),
    examples=[
        _action_example(
            "acme: deprovisioning attempt 1 started (orchestrator-basic-deprovision:9a0e).",
            "DEPROVISIONING",
            build="orchestrator-basic-deprovision:9a0e",
        ),
        _action_example("acme is already inactive.", "INACTIVE", changed=False),
    ],
)

TenantResyncApi = _tenant_action_api(
    "TenantResyncApi",
    permission=PERM_RESYNC,
    action=tenant_resync,
    operation_id="tenants_resync",
    summary="Write the tenant to DynamoDB again",
    description=(
        "Bumps the version and schedules the conditional write, so it wins over whatever DynamoDB holds. "
        "Recorded in the tenant's history with the caller."
    ),
    examples=[_action_example("acme: DynamoDB write of version 8 scheduled.", "ACTIVE")],
    errors={code: response for code, response in ACTION_ERRORS.items() if code != 409},
)


# --- Tiers ------------------------------------------------------------------------------------------


def _variables(data: dict[str, Any]) -> dict[str, tuple[str, str]] | None:
    if "variables" not in data:
        return None
    return {variable["name"]: (variable["value"], variable["type"]) for variable in data["variables"]}


def _keep_masked(variables: dict[str, tuple[str, str]] | None, tier: Tier | None) -> dict | None:
    """A masked value sent back (from a previous answer) keeps the stored value."""
    if variables is None or tier is None:
        return variables
    current = {variable.name: variable.value for variable in tier.variables.all()}
    return {
        name: ((current[name], var_type) if value == MASK and name in current else (value, var_type))
        for name, (value, var_type) in variables.items()
    }


def _save_tier(data: dict[str, Any], *, existing: Tier | None = None, partial: bool = False) -> Tier:
    variables = _keep_masked(_variables(data), existing)
    base = (
        {
            "name": existing.name,
            "provision_project": existing.provision_project,
            "deprovision_project": existing.deprovision_project,
            "description": existing.description,
        }
        if existing is not None and partial
        else {}
    )
    fields = {**base, **{key: value for key, value in data.items() if key != "variables"}}
    try:
        tier, _changed = tier_upsert(
            name=fields["name"],
            provision_project=fields["provision_project"],
            deprovision_project=fields.get("deprovision_project", ""),
            description=fields.get("description", ""),
            allowed_builders=fields.get("allowed_builders"),
            variables=variables,
            replace_variables=variables is not None,
            create_only=False,
        )
    except ValueError as error:
        raise ApplicationError(str(error), fields={"variables": [str(error)]}) from None
    return tier


class TierCollectionApi(GenericAPIView):
    permission_classes = [SuperuserWrites]
    serializer_class = TierSerializer
    queryset = Tier.objects.none()

    @extend_schema(
        operation_id="tiers_list",
        tags=[TAG_TIERS],
        summary="The tier mapping",
        responses={
            200: OpenApiResponse(TierSerializer(many=True), examples=[_page_example("tiers", TIER_EXAMPLE)]),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(tier_list())
        return self.get_paginated_response(TierSerializer(page, many=True).data)

    @extend_schema(
        operation_id="tiers_create",
        tags=[TAG_TIERS],
        summary="Add a tier (superusers); written through to DynamoDB",
        request=TierInputSerializer,
        examples=[OpenApiExample("a tier", value=TIER_INPUT_EXAMPLE, request_only=True)],
        responses={
            201: OpenApiResponse(
                TierSerializer, examples=[OpenApiExample("created", value=TIER_EXAMPLE, response_only=True)]
            ),
            409: _error("A tier with this name exists.", "conflict", "Tier BASIC already exists."),
            **WRITE_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        data = TierInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if Tier.objects.filter(name=data.validated_data["name"]).exists():
            name = data.validated_data["name"]
            raise ConflictError(f"Tier {name} already exists.", fields={"name": [f"Tier {name} already exists."]})
        tier = _save_tier(data.validated_data)
        return Response(TierSerializer(tier_get_by_name(name=tier.name)).data, status=status.HTTP_201_CREATED)


class TierDetailApi(GenericAPIView):
    permission_classes = [SuperuserWrites]
    serializer_class = TierSerializer
    queryset = Tier.objects.none()

    @extend_schema(
        operation_id="tiers_retrieve",
        tags=[TAG_TIERS],
        summary="One tier with its variables",
        parameters=[TIER_NAME],
        responses={
            200: OpenApiResponse(
                TierSerializer, examples=[OpenApiExample("tier", value=TIER_EXAMPLE, response_only=True)]
            ),
            404: _error("No such tier.", "not_found", "No such tier."),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(TierSerializer(tier_get_by_name(name=name)).data)

    @extend_schema(
        operation_id="tiers_update",
        tags=[TAG_TIERS],
        summary="Replace a tier (superusers); written through to DynamoDB",
        description="`variables`, when sent, replaces the tier's variables. The name must stay the same.",
        parameters=[TIER_NAME],
        request=TierInputSerializer,
        examples=[OpenApiExample("a tier", value=TIER_INPUT_EXAMPLE, request_only=True)],
        responses={
            200: OpenApiResponse(
                TierSerializer, examples=[OpenApiExample("updated", value=TIER_EXAMPLE, response_only=True)]
            ),
            404: _error("No such tier.", "not_found", "No such tier."),
            **WRITE_ERRORS,
        },
    )
    def put(self, request: Request, name: str) -> Response:
        return self._update(request, name, partial=False)

    @extend_schema(
        operation_id="tiers_partial_update",
        tags=[TAG_TIERS],
        summary="Change some fields of a tier (superusers); written through to DynamoDB",
        parameters=[TIER_NAME],
        request=TierInputSerializer(partial=True),
        examples=[
            OpenApiExample(
                "new project and variables",
                value={
                    "provision_project": "orchestrator-basic-provision-v2",
                    "variables": [{"name": "EKS_CLUSTER_NAME", "value": "eks-2", "type": "PLAINTEXT"}],
                },
                request_only=True,
            )
        ],
        responses={
            200: OpenApiResponse(
                TierSerializer, examples=[OpenApiExample("updated", value=TIER_EXAMPLE, response_only=True)]
            ),
            404: _error("No such tier.", "not_found", "No such tier."),
            **WRITE_ERRORS,
        },
    )
    def patch(self, request: Request, name: str) -> Response:
        return self._update(request, name, partial=True)

    def _update(self, request: Request, name: str, *, partial: bool) -> Response:
        tier = tier_get_by_name(name=name)
        data = TierInputSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        if data.validated_data.get("name", tier.name) != tier.name:
            message = "A tier cannot be renamed (tenants refer to it by name); create a new tier instead."
            raise ApplicationError(message, code="rename_refused", fields={"name": [message]})
        saved = _save_tier(data.validated_data, existing=tier, partial=partial)
        return Response(TierSerializer(tier_get_by_name(name=saved.name)).data)

    @extend_schema(
        operation_id="tiers_delete",
        tags=[TAG_TIERS],
        summary="Delete a tier (superusers); its DynamoDB item is deleted too",
        description="Refused (409) while tenants that are not inactive use it.",
        parameters=[TIER_NAME],
        responses={
            204: None,
            404: _error("No such tier.", "not_found", "No such tier."),
            409: _error("Tenants use this tier.", "tier_in_use", "3 tenants still use tier BASIC."),
            **READ_ERRORS,
            403: WRITE_ERRORS[403],
        },
    )
    def delete(self, request: Request, name: str) -> Response:
        tier_delete(tier=tier_get_by_name(name=name))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Builds -----------------------------------------------------------------------------------------


class BuildCollectionApi(GenericAPIView):
    permission_classes = [StaffModelPermissions]
    serializer_class = BuildSerializer
    queryset = Build.objects.none()

    @extend_schema(
        operation_id="builds_list",
        tags=[TAG_BUILDS],
        summary="Builds started for tenants, newest first",
        parameters=[BuildFilterSerializer],
        responses={
            200: OpenApiResponse(BuildSerializer(many=True), examples=[_page_example("builds", BUILD_EXAMPLE)]),
            400: _error("Invalid filter.", "invalid", "The request is invalid.", {"status": ['"X" is not valid.']}),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        return filtered_page(
            self, request, filters=BuildFilterSerializer, select=build_list, serializer=BuildSerializer
        )


class BuildDetailApi(GenericAPIView):
    permission_classes = [StaffModelPermissions]
    serializer_class = BuildDetailSerializer
    queryset = Build.objects.none()

    @extend_schema(
        operation_id="builds_retrieve",
        tags=[TAG_BUILDS],
        summary="One build with the environment it was sent (secrets masked)",
        responses={
            200: OpenApiResponse(
                BuildDetailSerializer,
                examples=[
                    OpenApiExample(
                        "build",
                        value={**BUILD_EXAMPLE, "environment": [{"name": "TENANT_KEY", "value": "acme"}]},
                        response_only=True,
                    )
                ],
            ),
            404: _error("No such build.", "not_found", "No such build."),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(BuildDetailSerializer(build_get(pk=pk)).data)
