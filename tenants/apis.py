"""HTTP edges of the tenants API: tenants (read, staff actions), tiers (CRUD), builds (read); the tenant's
history (a timeline across apps) is served by ``portal.apis``.

Permissions are the admin's: reading needs the model's view permission (``Read-only staff``), each action
its own permission (``Operators``), tier writes a superuser. Actions call the same services as the admin.
"""

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.apis import StaffModelApi, validated_body
from orchestrator.openapi import error_response
from orchestrator.pagination import filtered_page
from orchestrator.permissions import SuperuserWrites, acting_user, action_permission
from orchestrator.staff import PERM_DEPROVISION, PERM_RESYNC, PERM_RETRY_PROVISIONING, PERM_SUSPEND, PERM_UPDATE
from tenants import openapi
from tenants.models import Build, Tenant, Tier
from tenants.openapi import ACTION_ERRORS, INVALID_FILTER, OPERATION_ERRORS, READ_ERRORS, UPDATE_ERRORS, WRITE_ERRORS
from tenants.selectors import build_get, build_list, tenant_get, tenant_list, tier_get_by_name, tier_list
from tenants.serializers import (
    BuildDetailSerializer,
    BuildFilterSerializer,
    BuildSerializer,
    TenantActionResultSerializer,
    TenantDetailSerializer,
    TenantFilterSerializer,
    TenantSerializer,
    TenantUpdateInputSerializer,
    TierInputSerializer,
    TierSerializer,
)
from tenants.services.builds import ActionResult
from tenants.services.deprovisioning import tenant_deprovision
from tenants.services.operations import tenant_resume, tenant_suspend, tenant_update, tenant_update_roll_back
from tenants.services.provisioning import tenant_retry_provisioning
from tenants.services.sync import tenant_resync
from tenants.services.tiers import tier_create, tier_delete, tier_update

TAG_TENANTS = "tenants"
TAG_TIERS = "tiers"
TAG_BUILDS = "builds"


TENANT_ID = OpenApiParameter("pk", OpenApiTypes.STR, OpenApiParameter.PATH, description="The tenant id.")
TIER_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The tier name.")


# --- Tenants ----------------------------------------------------------------------------------------


class TenantCollectionApi(StaffModelApi):
    serializer_class = TenantSerializer
    queryset = Tenant.objects.none()

    @extend_schema(
        operation_id="tenants_list",
        tags=[TAG_TENANTS],
        summary="List tenants, newest first",
        description="Filter by `status` and `tier`; `search` matches id, key, name or a contact's email.",
        parameters=[TenantFilterSerializer],
        responses={
            200: OpenApiResponse(TenantSerializer(many=True), examples=openapi.TENANTS_LIST),
            400: INVALID_FILTER,
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        return filtered_page(
            self, request, filters=TenantFilterSerializer, select=tenant_list, serializer=TenantSerializer
        )


class TenantDetailApi(StaffModelApi):
    serializer_class = TenantDetailSerializer
    queryset = Tenant.objects.none()

    @extend_schema(
        operation_id="tenants_retrieve",
        tags=[TAG_TENANTS],
        summary="One tenant with its document, plan and configuration (secrets masked)",
        parameters=[TENANT_ID],
        responses={
            200: OpenApiResponse(TenantDetailSerializer, examples=openapi.TENANT_DETAIL),
            404: ACTION_ERRORS[404],
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        return Response(TenantDetailSerializer(tenant_get(pk=pk)).data)


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
    body: type[serializers.Serializer] | None = None,
    body_examples: list[OpenApiExample] | None = None,
) -> type[APIView]:
    """A staff action on one tenant: ``POST`` runs ``action(tenant=..., actor_user=..., **body)`` (``body``: the
    validated request, when the action takes one) and answers 202."""

    @extend_schema(
        operation_id=operation_id,
        tags=[TAG_TENANTS],
        summary=summary,
        description=description,
        parameters=[TENANT_ID],
        request=body,
        examples=body_examples or [],
        responses={202: OpenApiResponse(TenantActionResultSerializer, examples=examples), **errors},
    )
    def post(self: APIView, request: Request, pk: str) -> Response:
        tenant = tenant_get(pk=pk)
        arguments: dict[str, Any] = {}
        if body is not None:
            data = body(data=request.data)
            data.is_valid(raise_exception=True)
            arguments = dict(data.validated_data)
        return _action_response(action(tenant=tenant, actor_user=acting_user(request.user), **arguments), tenant)

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
    examples=openapi.TENANT_RETRY_PROVISIONING,
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
    examples=openapi.TENANT_DEPROVISION,
)

TenantUpdateApi = _tenant_action_api(
    "TenantUpdateApi",
    permission=PERM_UPDATE,
    action=tenant_update,
    operation_id="tenants_update_plan",
    summary="Update an active tenant to a new plan (maybe another tier), or retry a failed update",
    description=(
        "The tenant moves to `UPDATING` with the plan pending; the target tier's update build runs (none: at "
        "once) and the plan becomes current only when it succeeds (`UPDATE_FAILED` keeps the current one). "
        "Without `planConfig`, retries a failed update with its pending plan. Idempotent: a tenant already "
        "updating to that plan answers `changed: false`. Recorded in the tenant's history with the caller."
    ),
    examples=openapi.TENANT_UPDATE,
    errors=UPDATE_ERRORS,
    body=TenantUpdateInputSerializer,
    body_examples=openapi.TENANT_UPDATE_INPUT,
)

TenantUpdateRollBackApi = _tenant_action_api(
    "TenantUpdateRollBackApi",
    permission=PERM_UPDATE,
    action=tenant_update_roll_back,
    operation_id="tenants_update_roll_back",
    summary="Roll a failed update back: drop the pending plan, active again on the current one",
    description=(
        "For a tenant in `UPDATE_FAILED`; nothing is built. Idempotent: an active tenant with nothing pending "
        "answers `changed: false`. Recorded in the tenant's history with the caller."
    ),
    examples=openapi.TENANT_ROLL_BACK,
    errors=OPERATION_ERRORS,
)

TenantSuspendApi = _tenant_action_api(
    "TenantSuspendApi",
    permission=PERM_SUSPEND,
    action=tenant_suspend,
    operation_id="tenants_suspend",
    summary="Suspend an active tenant (or retry a failed suspension)",
    description=(
        "`SUSPENDING`, the tier's suspend build (none: at once), then `SUSPENDED`. Idempotent: a tenant "
        "suspending or suspended answers `changed: false`. Recorded in the tenant's history with the caller."
    ),
    examples=openapi.TENANT_SUSPEND,
    errors=OPERATION_ERRORS,
)

TenantResumeApi = _tenant_action_api(
    "TenantResumeApi",
    permission=PERM_SUSPEND,
    action=tenant_resume,
    operation_id="tenants_resume",
    summary="Resume a suspended tenant (or retry a failed resumption)",
    description=(
        "`RESUMING`, the tier's resume build (none: at once), then `ACTIVE`. Idempotent: a tenant resuming or "
        "active answers `changed: false`. Recorded in the tenant's history with the caller."
    ),
    examples=openapi.TENANT_RESUME,
    errors=OPERATION_ERRORS,
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
    examples=openapi.TENANT_RESYNC,
    errors={code: response for code, response in ACTION_ERRORS.items() if code != 409},
)


# --- Tiers ------------------------------------------------------------------------------------------


class TierCollectionApi(GenericAPIView):
    permission_classes = [SuperuserWrites]
    serializer_class = TierSerializer
    queryset = Tier.objects.none()

    @extend_schema(
        operation_id="tiers_list",
        tags=[TAG_TIERS],
        summary="The tier mapping",
        responses={
            200: OpenApiResponse(TierSerializer(many=True), examples=openapi.TIERS_LIST),
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
        examples=openapi.TIER_INPUT,
        responses={
            201: OpenApiResponse(TierSerializer, examples=openapi.TIER_CREATED),
            409: error_response("A tier with this name exists.", "conflict", "Tier BASIC already exists."),
            **WRITE_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        tier = tier_create(**validated_body(TierInputSerializer, request))
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
            200: OpenApiResponse(TierSerializer, examples=openapi.TIER_DETAIL),
            404: error_response("No such tier.", "not_found", "No such tier."),
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
        examples=openapi.TIER_INPUT,
        responses={
            200: OpenApiResponse(TierSerializer, examples=openapi.TIER_UPDATED),
            404: error_response("No such tier.", "not_found", "No such tier."),
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
        examples=openapi.TIER_PARTIAL_INPUT,
        responses={
            200: OpenApiResponse(TierSerializer, examples=openapi.TIER_UPDATED),
            404: error_response("No such tier.", "not_found", "No such tier."),
            **WRITE_ERRORS,
        },
    )
    def patch(self, request: Request, name: str) -> Response:
        return self._update(request, name, partial=True)

    def _update(self, request: Request, name: str, *, partial: bool) -> Response:
        tier = tier_get_by_name(name=name)
        saved = tier_update(tier=tier, **validated_body(TierInputSerializer, request, partial=partial))
        return Response(TierSerializer(tier_get_by_name(name=saved.name)).data)

    @extend_schema(
        operation_id="tiers_delete",
        tags=[TAG_TIERS],
        summary="Delete a tier (superusers); its DynamoDB item is deleted too",
        description="Refused (409) while tenants that are not inactive use it.",
        parameters=[TIER_NAME],
        responses={
            204: None,
            404: error_response("No such tier.", "not_found", "No such tier."),
            409: error_response("Tenants use this tier.", "tier_in_use", "3 tenants still use tier BASIC."),
            **READ_ERRORS,
            403: WRITE_ERRORS[403],
        },
    )
    def delete(self, request: Request, name: str) -> Response:
        tier_delete(tier=tier_get_by_name(name=name))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Builds -----------------------------------------------------------------------------------------


class BuildCollectionApi(StaffModelApi):
    serializer_class = BuildSerializer
    queryset = Build.objects.none()

    @extend_schema(
        operation_id="builds_list",
        tags=[TAG_BUILDS],
        summary="Builds started for tenants, newest first",
        parameters=[BuildFilterSerializer],
        responses={
            200: OpenApiResponse(BuildSerializer(many=True), examples=openapi.BUILDS_LIST),
            400: INVALID_FILTER,
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        return filtered_page(
            self, request, filters=BuildFilterSerializer, select=build_list, serializer=BuildSerializer
        )


class BuildDetailApi(StaffModelApi):
    serializer_class = BuildDetailSerializer
    queryset = Build.objects.none()

    @extend_schema(
        operation_id="builds_retrieve",
        tags=[TAG_BUILDS],
        summary="One build with the environment it was sent (secrets masked)",
        responses={
            200: OpenApiResponse(BuildDetailSerializer, examples=openapi.BUILD_DETAIL),
            404: error_response("No such build.", "not_found", "No such build."),
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(BuildDetailSerializer(build_get(pk=pk)).data)
