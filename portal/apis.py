"""The tenant's history over the API: the same timeline as the tenant page, a page at a time."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from orchestrator.permissions import StaffModelPermissions
from portal.serializers import HistoryEntrySerializer
from portal.timeline import tenant_history_entries, timeline_complete
from tenants.apis import ACTION_ERRORS, READ_ERRORS, TAG_TENANTS, TENANT_ID
from tenants.models import TenantHistory
from tenants.selectors import tenant_get

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
HISTORY_PAGE_EXAMPLE = OpenApiExample(
    "a page of history",
    value={"count": 1, "next": None, "previous": None, "results": [HISTORY_EXAMPLE]},
    response_only=True,
)


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
            200: OpenApiResponse(HistoryEntrySerializer(many=True), examples=[HISTORY_PAGE_EXAMPLE]),
            404: ACTION_ERRORS[404],
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        tenant = tenant_get(pk=pk)
        page = self.paginate_queryset(tenant_history_entries(tenant_id=tenant.pk))
        return self.get_paginated_response(HistoryEntrySerializer(timeline_complete(page), many=True).data)
