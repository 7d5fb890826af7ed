"""OpenAPI documentation of the events API: the intake's envelope, one per detail-type (a ``oneOf`` keyed by
``detail-type``), the catalogue's and the dialects' detail schemas as components, the sample events as
examples; and the examples of every events operation."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer
from rest_framework import serializers

from events.catalogue import DetailType
from events.dialects import detail_schema
from events.dialects.sbt import PREFIX as SBT_PREFIX
from events.dialects.sbt import SbtDetailType
from events.samples import all_samples, sample_envelope
from orchestrator.openapi import EXAMPLE_TENANT_ID, example_error, example_response, page

# Every type the intake can accept (a dialect that is off refuses its requests at run time).
INTAKE_DETAIL_TYPES = (*DetailType.ALL, *SbtDetailType.REQUESTS)


class IntakeAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "events.authentication.IntakeAuthentication"
    name = ["intakeApiKey", "intakeBasic", "intakeBearer"]

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return [{"intakeApiKey": []}, {"intakeBasic": []}, {"intakeBearer": []}]  # any one INTAKE_AUTH_SCHEMES allows

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        from django.conf import settings

        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": settings.INTAKE_API_KEY_HEADER,
                "description": "The API key of the EventBridge connection (any of INTAKE_API_KEYS).",
            },
            {"type": "http", "scheme": "basic", "description": "A user:password pair of INTAKE_BASIC_AUTH."},
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "With bearer_jwt: a JWT of INTAKE_JWT_ISSUER (keys from INTAKE_JWKS_URL). With "
                "oauth_client: a token of POST /oauth/token (OAuth client credentials).",
            },
        ]


def _component_name(detail_type: str) -> str:
    if detail_type.startswith(SBT_PREFIX):  # sbt_aws_onboardingRequest -> SbtOnboardingRequestEvent
        name = detail_type.removeprefix(SBT_PREFIX)
        return f"Sbt{name[:1].upper()}{name[1:]}Event"
    if "_" in detail_type:  # TENANT_PROVISIONING -> TenantProvisioningEvent
        return "".join(word.capitalize() for word in detail_type.split("_")) + "Event"
    return "".join(detail_type.split()) + "Event"  # CodeBuild Build State Change -> CodeBuildBuildStateChangeEvent


class _EnvelopeBase(serializers.Serializer):
    detail_type: str = ""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "version": serializers.CharField(help_text='EventBridge envelope version, "0".'),
            "id": serializers.CharField(max_length=256, help_text="Unique event id; redeliveries repeat it."),
            "detail-type": serializers.ChoiceField(choices=[self.detail_type]),
            "source": serializers.CharField(max_length=256),
            "account": serializers.RegexField(r"^\d{12}$", help_text="12-digit AWS account id."),
            "time": serializers.DateTimeField(help_text="ISO-8601 with time zone (UTC)."),
            "region": serializers.CharField(max_length=64),
            "resources": serializers.ListField(child=serializers.CharField()),
            "detail": detail_schema(self.detail_type)(),
        }


# Typed as PolymorphicProxySerializer takes it (a dict is invariant in its value type).
ENVELOPES: dict[str, serializers.Serializer | type[serializers.Serializer]] = {
    detail_type: type(_component_name(detail_type), (_EnvelopeBase,), {"detail_type": detail_type})
    for detail_type in INTAKE_DETAIL_TYPES
}

EVENT_REQUEST = PolymorphicProxySerializer(
    component_name="EventBridgeEvent",
    serializers=ENVELOPES,
    resource_type_field_name="detail-type",
)


def event_examples() -> list[OpenApiExample]:
    samples = {**all_samples(), **{name: sample_envelope(name) for name in SbtDetailType.REQUESTS}}
    return [
        OpenApiExample(_component_name(detail_type), value=sample, request_only=True, summary=detail_type)
        for detail_type, sample in samples.items()
    ]


# --- Events -------------------------------------------------------------------------------------------

EVENT = {
    "id": 42,
    "event_id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail_type": "TENANT_DEPLOYMENT",
    "source": "saas.tenant.provisioning.success.handler",
    "account": "123456789012",
    "region": "us-east-1",
    "time": "2025-01-15T10:30:00Z",
    "resources": [],
    "tenant_id": EXAMPLE_TENANT_ID,
    "status": "processed",
    "attempts": 1,
    "last_error": "",
    "result": {"deployment": 7},
    "received_at": "2025-01-15T10:30:01Z",
    "started_at": "2025-01-15T10:30:01Z",
    "finished_at": "2025-01-15T10:30:03Z",
    "next_attempt_at": None,
}
EVENTS_LIST = [example_response("a page of events", page(EVENT))]
EVENT_DETAIL = [
    example_response(
        "event with its attempts",
        {
            **EVENT,
            "detail": {"tenant": '{"id": "7d0c..."}', "secret": "********", "API_ENDPOINT": "https://cp.example/hook"},
            "attempt_log": [
                {
                    "number": 1,
                    "outcome": "succeeded",
                    "error": "",
                    "requested_by": None,
                    "started_at": "2025-01-15T10:30:01Z",
                    "finished_at": "2025-01-15T10:30:03Z",
                }
            ],
        },
    ),
    example_error("unknown event", "404", "not_found", "No such event."),
]
EVENT_INTAKE = [
    example_response("stored and queued", {"id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "status": "accepted"}, "202"),
    example_response("a redelivery", {"id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "status": "duplicate"}, "200"),
    example_error("wrong key", "401", "authentication_failed", "Invalid API key."),
    example_error("same id, other body", "409", "conflict", "This id was already received with a different body."),
]
EVENT_REPLAY = [
    example_response("queued", {"id": 42, "status": "accepted", "queued": True, "message": "Replay queued."}, "202"),
    example_response(
        "already waiting",
        {"id": 42, "status": "accepted", "queued": False, "message": "Already queued; it will run shortly."},
        "202",
    ),
    example_error("running now", "409", "conflict", "The event is being processed right now; try again when it ends."),
]
EVENT_DRY_RUN = [
    example_response(
        "a provisioning that would start a build",
        {
            "event": {
                "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                "detail_type": "TENANT_PROVISIONING",
                "source": "saas.tenant.management",
                "tenant_id": EXAMPLE_TENANT_ID,
                "body_sha256": "3b1f...",
            },
            "intake": {"status": 202, "answer": "accepted", "message": "Stored and queued; the handler runs."},
            "handler": {
                "name": "tenants.event_handlers.handle_tenant_provisioning",
                "description": "Create/update the tenant, start its build.",
            },
            "effect": {
                "outcome": "build_starts",
                "reason": "provision attempt 1: the CODE_BUILD builder runs tenant-provisioning; ...",
                "tenant": {
                    "id": EXAMPLE_TENANT_ID,
                    "exists": False,
                    "current_status": None,
                    "resulting_status": "PROVISIONING",
                },
                "transitions": [{"from": "PENDING_PROVISION", "to": "PROVISIONING", "allowed": True}],
                "tier": {
                    "name": "BASIC",
                    "found": True,
                    "allowed_builders": ["CODE_BUILD"],
                    "builder": "CODE_BUILD",
                    "builder_allowed": True,
                    "why": "Tier BASIC allows CODE_BUILD; the event names CODE_BUILD (builderConfig.type).",
                },
                "build": {
                    "purpose": "provision",
                    "attempt": 1,
                    "builder": "CODE_BUILD",
                    "project": "tenant-provisioning",
                    "idempotency_token": f"{EXAMPLE_TENANT_ID}:provision:1",
                },
                "environment": [
                    {
                        "name": "DB_PASSWORD",
                        "value": "/acme/db",
                        "type": "PARAMETER_STORE",
                        "resolved_by_builder": True,
                    },
                    {"name": "secret", "value": "********", "type": "PLAINTEXT", "resolved_by_builder": False},
                ],
            },
        },
    ),
    example_response(
        "a deployment: callbacks with the guard's verdict and the headers",
        {
            "event": {"id": "9c1d...", "detail_type": "TENANT_DEPLOYMENT", "tenant_id": EXAMPLE_TENANT_ID},
            "intake": {"status": 202, "answer": "accepted", "message": "Stored and queued; the handler runs."},
            "handler": {"name": "webhooks.event_handlers.handle_tenant_deployment", "description": "..."},
            "effect": {
                "outcome": "callbacks_start",
                "tenant": {"current_status": "PROVISIONING", "resulting_status": "DEPLOYING"},
                "signed_at": "2000-01-01T00:00:00+00:00",
                "callbacks": [
                    {
                        "position": 3,
                        "step": "control_plane_webhook",
                        "url": "http://10.0.0.5/hook",
                        "skipped": "",
                        "guard": {
                            "verdict": "refused",
                            "reason": "10.0.0.5 resolves to a non-public address (10.0.0.5); not in "
                            "WEBHOOK_ALLOWED_HOSTS",
                            "address": "",
                        },
                        "headers": {
                            "content-type": "application/json",
                            "user-agent": "orchestrator-webhooks/1.0",
                            "bypass-tunnel-reminder": "true",
                            "x-timestamp": "946684800000",
                            "x-signature": "5f2c...",
                        },
                    }
                ],
            },
        },
    ),
    example_error("invalid event", "400", "invalid_event", "The event is invalid."),
]
