"""HTTP edges of the event intake and the events API: parse, call a service, answer."""

import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import openapi
from events.authentication import IntakeAuthentication
from events.dry_run import event_dry_run
from events.intake.envelope import body_parse, envelope_validate
from events.metrics import intake_request_observe
from events.models import ReceivedEvent
from events.selectors import event_get, event_list
from events.serializers import (
    EventDetailSerializer,
    EventDryRunSerializer,
    EventFilterSerializer,
    EventReplaySerializer,
    EventSerializer,
    IntakeResponseSerializer,
)
from events.services import event_receive, event_replay
from orchestrator.errors import ApplicationError
from orchestrator.openapi import error_response
from orchestrator.pagination import filtered_page
from orchestrator.permissions import StaffModelPermissions, acting_user, action_permission
from orchestrator.staff import PERM_REPLAY_EVENT, PERM_VIEW_EVENT

JSON_TYPES = ("application/json",)


INTAKE_RESPONSES = {
    202: OpenApiResponse(IntakeResponseSerializer, description='Stored and queued: {"id", "status": "accepted"}.'),
    200: OpenApiResponse(IntakeResponseSerializer, description='Already received with this body: "duplicate".'),
    400: error_response("Invalid envelope or detail (fields name the paths), unsupported detail-type, or not JSON."),
    401: error_response(
        "Missing or wrong credentials (API key, Basic or bearer token, as INTAKE_AUTH_SCHEMES allows); "
        "WWW-Authenticate names the scheme; nothing is stored."
    ),
    409: error_response("This id was already received with a different body."),
    413: error_response("The body is larger than INTAKE_MAX_BODY_BYTES."),
    415: error_response("The content type is not application/json."),
    503: error_response("The database is unavailable; EventBridge retries."),
}


def _read_body(request: Request) -> bytes:
    """The raw body, refusing the wrong content type (415) and anything over the limit (413)."""
    content_type = request.content_type.split(";", 1)[0].strip().lower()
    if content_type not in JSON_TYPES and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise exceptions.UnsupportedMediaType(content_type or "(none)")
    limit = settings.INTAKE_MAX_BODY_BYTES
    too_large = ApplicationError(
        f"The body is larger than {limit} bytes.",
        code="payload_too_large",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    django_request: HttpRequest = request._request
    raw = django_request.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    return raw


def _intake(request: Request, *, path_event_type: str | None) -> Response:
    data = body_parse(_read_body(request))
    envelope = envelope_validate(data, path_event_type=path_event_type)
    result = event_receive(envelope=envelope)
    if result.created:
        return Response({"id": result.event_id, "status": "accepted"}, status=status.HTTP_202_ACCEPTED)
    return Response({"id": result.event_id, "status": "duplicate"}, status=status.HTTP_200_OK)


class _IntakeMetricsMixin(APIView):
    """Counts every intake answer (POST) by outcome and times it (``events.metrics``)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "POST":
            return super().dispatch(request, *args, **kwargs)
        started = time.perf_counter()
        status_code, data = 500, None
        try:
            response = super().dispatch(request, *args, **kwargs)
            status_code, data = response.status_code, getattr(response, "data", None)
            return response
        finally:
            intake_request_observe(status=status_code, data=data, seconds=time.perf_counter() - started)


class _MethodAuthMixin(APIView):
    """POST is the machine intake (API key / Basic); other methods are staff (session / token)."""

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        self._http_method = request.method
        return super().initialize_request(request, *args, **kwargs)

    def get_authenticators(self) -> list:
        if getattr(self, "_http_method", None) == "POST":
            return [IntakeAuthentication()]
        return super().get_authenticators()

    def get_permissions(self) -> list:
        if self.request.method == "POST":
            return [IsAuthenticated()]
        return [StaffModelPermissions()]


class EventCollectionApi(_IntakeMetricsMixin, _MethodAuthMixin, GenericAPIView):
    parser_classes = [JSONParser]
    serializer_class = EventSerializer
    queryset = ReceivedEvent.objects.none()  # the model whose permissions StaffModelPermissions checks

    @extend_schema(
        operation_id="events_receive",
        tags=["events"],
        summary="Receive one EventBridge event (the API destination's target)",
        description=(
            "Validates the envelope and the detail of its `detail-type`, stores the event (unique on `id`) "
            "and queues its handler. A redelivery with the same body answers 200 `duplicate`; the same id with "
            "another body 409. Authenticate with the connection's API key header, HTTP Basic or an OAuth bearer "
            "token (INTAKE_AUTH_SCHEMES); sbt-aws's requests (`sbt_aws_*`) are accepted with EVENT_DIALECTS=sbt."
        ),
        request=openapi.EVENT_REQUEST,
        examples=[*openapi.event_examples(), *openapi.EVENT_INTAKE],
        responses=INTAKE_RESPONSES,
    )
    def post(self, request: Request) -> Response:
        return _intake(request, path_event_type=None)

    @extend_schema(
        operation_id="events_list",
        examples=openapi.EVENTS_LIST,
        tags=["events"],
        summary="List received events (staff)",
        description=(
            "Newest first, paginated; filter by detail_type, status, tenant_id and received_after/received_before. "
            "Staff session or DRF token."
        ),
        parameters=[EventFilterSerializer],
        responses={
            200: EventSerializer(many=True),
            400: error_response("Invalid filter."),
            401: error_response("Not signed in."),
            403: error_response("Not staff, or missing the events.view_receivedevent permission."),
        },
    )
    def get(self, request: Request) -> Response:
        return filtered_page(
            self, request, filters=EventFilterSerializer, select=event_list, serializer=EventSerializer
        )


class OriginalIntakeApi(_IntakeMetricsMixin, APIView):
    """The original service's path, kept for existing senders (an EventBridge target with
    ``path_parameter_values = ["$.detail-type"]``)."""

    authentication_classes = [IntakeAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="events_receive_by_type",
        tags=["events"],
        summary="Receive one event on the original service's path",
        description="As `POST /api/events/`; `eventType` must equal the body's `detail-type` (else 400).",
        parameters=[
            OpenApiParameter(
                "eventType",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=list(openapi.INTAKE_DETAIL_TYPES),
                description="The detail-type.",
            )
        ],
        request=openapi.EVENT_REQUEST,
        examples=[*openapi.event_examples(), *openapi.EVENT_INTAKE],
        responses=INTAKE_RESPONSES,
    )
    def post(self, request: Request, eventType: str) -> Response:
        return _intake(request, path_event_type=eventType)


class EventDetailApi(APIView):
    permission_classes = [StaffModelPermissions]
    queryset = ReceivedEvent.objects.none()

    @extend_schema(
        operation_id="events_retrieve",
        examples=openapi.EVENT_DETAIL,
        tags=["events"],
        summary="One received event with its attempts (staff)",
        responses={
            200: EventDetailSerializer,
            401: error_response("Not signed in."),
            403: error_response("Not staff, or missing the events.view_receivedevent permission."),
            404: error_response("No such event."),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(EventDetailSerializer(event_get(pk=pk)).data)


class EventReplayApi(APIView):
    permission_classes = [action_permission(PERM_REPLAY_EVENT)]

    @extend_schema(
        operation_id="events_replay",
        examples=openapi.EVENT_REPLAY,
        tags=["events"],
        summary="Run a stored event through its handler again (staff)",
        description=(
            "Queues a new attempt recorded as requested by the caller. Idempotent: an event already waiting to "
            "run answers `queued: false`. 409 while a worker is running it."
        ),
        request=None,
        responses={
            202: EventReplaySerializer,
            401: error_response("Not signed in."),
            403: error_response("Not staff, or missing the events.replay_receivedevent permission."),
            404: error_response("No such event."),
            409: error_response("Being processed right now."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        event = event_get(pk=pk)
        result = event_replay(event_pk=event.pk, user=acting_user(request.user))
        body = {
            "id": result.event.pk,
            "status": result.event.status,
            "queued": result.queued,
            "message": result.message,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class EventDryRunApi(APIView):
    """What receiving an event would do, without doing it (staff; reads only)."""

    permission_classes = [action_permission(PERM_VIEW_EVENT)]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="events_dry_run",
        tags=["events"],
        summary="Dry run: validate an event and show what it would do, without doing it (staff)",
        description=(
            "Takes the body `POST /api/events/` takes and validates it exactly as the intake does (the same 400s). "
            "Answers what receiving it would do: the intake's answer (accepted, duplicate, conflict), the handler, "
            "and its effect: the tenant's status change or why it would be refused, the resolved tier and builder "
            "(and why), the build environment (secrets masked; SSM / Secrets Manager variables by name, never "
            "resolved), the callback URLs with the SSRF guard's verdict (host names are resolved, nothing is "
            "connected to) and the headers a receiver would get, signed over the would-be body at a fixed dummy "
            "time (2000-01-01T00:00:00Z). No row is written, no task queued, no AWS or callback request made. "
            "Staff with the events.view_receivedevent permission (session or DRF token)."
        ),
        request=openapi.EVENT_REQUEST,
        examples=[*openapi.event_examples(), *openapi.EVENT_DRY_RUN],
        responses={
            200: EventDryRunSerializer,
            400: error_response("Invalid envelope or detail (fields name the paths), unsupported type, or not JSON."),
            401: error_response("Not signed in."),
            403: error_response("Not staff, or missing the events.view_receivedevent permission."),
            413: error_response("The body is larger than INTAKE_MAX_BODY_BYTES."),
            415: error_response("The content type is not application/json."),
        },
    )
    def post(self, request: Request) -> Response:
        return Response(event_dry_run(data=body_parse(_read_body(request))))
