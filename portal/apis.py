"""The portal's API: the tenant's history (the same timeline as the tenant page, a page at a time) and the
doctor (what needs attention, and its one-click fixes)."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.apis import StaffModelApi, validated_body
from orchestrator.permissions import acting_user, is_active_staff
from portal import openapi
from portal.doctor.base import Fix
from portal.doctor.fixes import FIX_ACTIONS
from portal.doctor.service import doctor_findings, doctor_fix
from portal.serializers import DoctorFixSerializer, DoctorReportSerializer, HistoryEntrySerializer, doctor_report
from portal.timeline import tenant_history_entries, timeline_complete
from tenants.apis import TAG_TENANTS, TENANT_ID
from tenants.models import Tenant, TenantHistory
from tenants.openapi import ACTION_ERRORS, READ_ERRORS
from tenants.selectors import tenant_get


class TenantHistoryApi(StaffModelApi):
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
            200: OpenApiResponse(HistoryEntrySerializer(many=True), examples=openapi.HISTORY_PAGE),
            404: ACTION_ERRORS[404],
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        tenant = tenant_get(pk=pk)
        page = self.paginate_queryset(tenant_history_entries(tenant_id=tenant.pk))
        assert page is not None  # None only for a view without a paginator
        return self.get_paginated_response(HistoryEntrySerializer(timeline_complete(page), many=True).data)


TAG_DOCTOR = "doctor"


class MayFixSomething(BasePermission):
    """Active staff holding the permission of at least one fix; each fix then checks its own (the one the admin
    and API action need)."""

    message = "You need staff access and the permission of a fix for this."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return is_active_staff(user) and any(user.has_perm(action.permission) for action in FIX_ACTIONS.values())


class DoctorApi(StaffModelApi):
    queryset = Tenant.objects.none()  # reading the doctor needs tenants.view_tenant
    serializer_class = DoctorReportSerializer
    pagination_class = None

    @extend_schema(
        operation_id="doctor_findings",
        tags=[TAG_DOCTOR],
        summary="What needs attention, and how to fix it",
        description=(
            "The doctor's findings, oldest first: for each, the rule, the tenant and object, the reason, since "
            "when (`age_seconds`), the admin page and the one-click fixes (`POST /api/doctor/fixes/`). "
            "`needs_attention` is false when there is none. Thresholds are the `DOCTOR_*` settings."
        ),
        responses={200: OpenApiResponse(DoctorReportSerializer, examples=openapi.DOCTOR_REPORT), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(doctor_report(doctor_findings()))


class DoctorFixApi(APIView):
    permission_classes = [MayFixSomething]

    @extend_schema(
        operation_id="doctor_fix",
        tags=[TAG_DOCTOR],
        summary="Apply one of a finding's fixes",
        description=(
            "Calls the same service as the admin's button (replay an event, retry a delivery, close an "
            "endpoint's circuit, resync a tenant to DynamoDB), with that action's permission. A fix no current "
            "finding offers any more changes nothing and answers `changed: false`."
        ),
        request=DoctorFixSerializer,
        examples=openapi.FIX_REQUEST,
        responses={
            200: OpenApiResponse(openapi.FIX_RESULT_SCHEMA, examples=openapi.FIX_RESULT),
            **openapi.FIX_ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        body = validated_body(DoctorFixSerializer, request)
        fix = Fix(action=body["action"], target=body["target"])
        result = doctor_fix(fix=fix, user=acting_user(request.user))
        return Response({"changed": result.changed, "message": result.message})
