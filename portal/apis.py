"""The tenant's history over the API: the same timeline as the tenant page, a page at a time."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from orchestrator.apis import StaffModelApi
from portal import openapi
from portal.serializers import HistoryEntrySerializer
from portal.timeline import tenant_history_entries, timeline_complete
from tenants.apis import TAG_TENANTS, TENANT_ID
from tenants.models import TenantHistory
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
