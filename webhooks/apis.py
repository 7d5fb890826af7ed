"""HTTP edges of the webhooks API: endpoints (CRUD, secret rotation) and deliveries (read, staff retry)."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.apis import StaffModelApi, validated_body
from orchestrator.openapi import error_response
from orchestrator.pagination import filtered_page
from orchestrator.permissions import acting_user, action_permission
from orchestrator.staff import PERM_RETRY_DELIVERY
from webhooks import openapi
from webhooks.models import WebhookDelivery
from webhooks.selectors import delivery_get, delivery_list, endpoint_get, endpoint_list
from webhooks.serializers import (
    DeliveryFilterSerializer,
    DeliveryRetrySerializer,
    RotateSecretInputSerializer,
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointInputSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointUpdateSerializer,
    WebhookEndpointWithSecretSerializer,
)
from webhooks.services.endpoints import endpoint_create, endpoint_delete, endpoint_rotate_secret, endpoint_update
from webhooks.services.retry import delivery_retry

TAG_ENDPOINTS = "webhook endpoints"
TAG_DELIVERIES = "webhook deliveries"


AUTH_ERRORS = {
    401: error_response("Not signed in."),
    403: error_response("Not staff, or missing the model permission."),
}


class EndpointCollectionApi(StaffModelApi):
    serializer_class = WebhookEndpointSerializer
    queryset = endpoint_list()

    @extend_schema(
        operation_id="webhook_endpoints_list",
        examples=openapi.ENDPOINTS_LIST,
        tags=[TAG_ENDPOINTS],
        summary="List subscriber endpoints",
        description="Secrets are never returned; custom header values with secret-like names are masked.",
        responses={200: WebhookEndpointSerializer(many=True), **AUTH_ERRORS},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(endpoint_list())
        return self.get_paginated_response(WebhookEndpointSerializer(page, many=True).data)

    @extend_schema(
        operation_id="webhook_endpoints_create",
        examples=openapi.ENDPOINT_CREATE,
        tags=[TAG_ENDPOINTS],
        summary="Create a subscriber endpoint",
        description=(
            "The answer carries the signing secret (`whsec_...` for Standard Webhooks, generated unless given) "
            "once; it is stored encrypted and never shown again. Rotate it to get a new one."
        ),
        request=WebhookEndpointInputSerializer,
        responses={201: WebhookEndpointWithSecretSerializer, 400: error_response("Invalid endpoint."), **AUTH_ERRORS},
    )
    def post(self, request: Request) -> Response:
        fields = validated_body(WebhookEndpointInputSerializer, request)
        endpoint, secret = endpoint_create(**{**fields, "secret": fields.get("secret") or None})
        body = WebhookEndpointWithSecretSerializer(endpoint).data | {"secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)


class EndpointDetailApi(StaffModelApi):
    serializer_class = WebhookEndpointSerializer
    queryset = endpoint_list()

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        examples=openapi.ENDPOINT_DETAIL,
        tags=[TAG_ENDPOINTS],
        summary="One subscriber endpoint",
        responses={200: WebhookEndpointSerializer, 404: error_response("No such endpoint."), **AUTH_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(WebhookEndpointSerializer(endpoint_get(pk=pk)).data)

    @extend_schema(
        operation_id="webhook_endpoints_update",
        examples=openapi.ENDPOINT_UPDATE,
        tags=[TAG_ENDPOINTS],
        summary="Change a subscriber endpoint (not its secret)",
        description="Fields not sent are left as they are. Re-activating clears the disabled reason.",
        request=WebhookEndpointUpdateSerializer,
        responses={
            200: WebhookEndpointSerializer,
            400: error_response("Invalid change."),
            404: error_response("No such endpoint."),
            **AUTH_ERRORS,
        },
    )
    def patch(self, request: Request, pk: int) -> Response:
        endpoint = endpoint_get(pk=pk)
        endpoint = endpoint_update(endpoint=endpoint, **validated_body(WebhookEndpointUpdateSerializer, request))
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(
        operation_id="webhook_endpoints_delete",
        examples=openapi.ENDPOINT_DELETE,
        tags=[TAG_ENDPOINTS],
        summary="Delete a subscriber endpoint",
        description="Past deliveries are kept; queued ones are cancelled.",
        responses={204: None, 404: error_response("No such endpoint."), **AUTH_ERRORS},
    )
    def delete(self, request: Request, pk: int) -> Response:
        endpoint_delete(endpoint=endpoint_get(pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndpointRotateSecretApi(StaffModelApi):
    serializer_class = RotateSecretInputSerializer
    queryset = endpoint_list()

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        examples=openapi.ENDPOINT_ROTATE,
        tags=[TAG_ENDPOINTS],
        summary="Rotate an endpoint's signing secret",
        description=(
            "The new secret is in the answer, once. The previous secret keeps signing (a second signature in "
            "`webhook-signature`) for WEBHOOK_SECRET_GRACE_SECONDS so receivers can switch without dropping calls."
        ),
        request=RotateSecretInputSerializer,
        responses={
            200: WebhookEndpointWithSecretSerializer,
            400: error_response("Invalid secret."),
            404: error_response("No such endpoint."),
            **AUTH_ERRORS,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        endpoint = endpoint_get(pk=pk)
        rotation = validated_body(RotateSecretInputSerializer, request)
        secret = endpoint_rotate_secret(
            endpoint=endpoint,
            secret=rotation.get("secret") or None,
            signing_scheme=rotation.get("signing_scheme"),
        )
        endpoint.refresh_from_db()
        return Response(WebhookEndpointWithSecretSerializer(endpoint).data | {"secret": secret})


class DeliveryCollectionApi(StaffModelApi):
    serializer_class = WebhookDeliverySerializer
    queryset = WebhookDelivery.objects.none()  # the model whose permissions StaffModelPermissions checks

    @extend_schema(
        operation_id="webhook_deliveries_list",
        examples=openapi.DELIVERIES_LIST,
        tags=[TAG_DELIVERIES],
        summary="List deliveries (chain steps and subscriber calls), newest first",
        parameters=[DeliveryFilterSerializer],
        responses={200: WebhookDeliverySerializer(many=True), 400: error_response("Invalid filter."), **AUTH_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return filtered_page(
            self, request, filters=DeliveryFilterSerializer, select=delivery_list, serializer=WebhookDeliverySerializer
        )


class DeliveryDetailApi(StaffModelApi):
    queryset = WebhookDelivery.objects.none()

    @extend_schema(
        operation_id="webhook_deliveries_retrieve",
        examples=openapi.DELIVERY_DETAIL,
        tags=[TAG_DELIVERIES],
        summary="One delivery with its attempts",
        description="The payload is shown with secret values masked; signature headers are masked too.",
        responses={200: WebhookDeliveryDetailSerializer, 404: error_response("No such delivery."), **AUTH_ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(WebhookDeliveryDetailSerializer(delivery_get(pk=pk)).data)


class DeliveryRetryApi(APIView):
    permission_classes = [action_permission(PERM_RETRY_DELIVERY)]

    @extend_schema(
        operation_id="webhook_deliveries_retry",
        examples=openapi.DELIVERY_RETRY,
        tags=[TAG_DELIVERIES],
        summary="Send a delivery again now (staff)",
        description=(
            "Queues a new attempt with the same `webhook-id` and a fresh retry schedule. Retrying a failed "
            "deployment step resumes the chain from it (tenant back to DEPLOYING). Recorded in the tenant's "
            "history with the caller. Idempotent: a delivery already queued answers `queued: false`."
        ),
        request=None,
        responses={
            202: DeliveryRetrySerializer,
            404: error_response("No such delivery."),
            409: error_response(
                "Already delivered, skipped, waiting for an earlier step, or its endpoint is disabled."
            ),
            **AUTH_ERRORS,
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        result = delivery_retry(delivery=delivery_get(pk=pk), actor_user=acting_user(request.user))
        body = {
            "id": result.delivery.pk,
            "status": result.delivery.status,
            "queued": result.queued,
            "message": result.message,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
