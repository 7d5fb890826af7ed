"""OpenAPI request/response examples for the events, webhooks and status operations (the tenants API keeps
its own next to its views). Values are illustrative; secrets are shown as the API shows them (masked)."""

from drf_spectacular.utils import OpenApiExample

TENANT_ID = "7d0c9b2e-4c1e-4a57-9d59-2f7c1a7b4d10"


def _page(row: dict) -> dict:
    return {"count": 1, "next": None, "previous": None, "results": [row]}


def _response(name: str, value: dict | None, status: str = "200") -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status])


def _error(name: str, status: str, code: str, message: str) -> OpenApiExample:
    return _response(name, {"error": {"code": code, "message": message}}, status)


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
    "tenant_id": TENANT_ID,
    "status": "processed",
    "attempts": 1,
    "last_error": "",
    "result": {"deployment": 7},
    "received_at": "2025-01-15T10:30:01Z",
    "started_at": "2025-01-15T10:30:01Z",
    "finished_at": "2025-01-15T10:30:03Z",
    "next_attempt_at": None,
}
EVENTS_LIST = [_response("a page of events", _page(EVENT))]
EVENT_DETAIL = [
    _response(
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
    _error("unknown event", "404", "not_found", "No such event."),
]
EVENT_INTAKE = [
    _response("stored and queued", {"id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "status": "accepted"}, "202"),
    _response("a redelivery", {"id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "status": "duplicate"}, "200"),
    _error("wrong key", "401", "authentication_failed", "Invalid API key."),
    _error("same id, other body", "409", "conflict", "This id was already received with a different body."),
]
EVENT_REPLAY = [
    _response("queued", {"id": 42, "status": "accepted", "queued": True, "message": "Replay queued."}, "202"),
    _response(
        "already waiting",
        {"id": 42, "status": "accepted", "queued": False, "message": "Already queued; it will run shortly."},
        "202",
    ),
    _error("running now", "409", "conflict", "The event is being processed right now; try again when it ends."),
]

# --- Webhook endpoints ----------------------------------------------------------------------------------

ENDPOINT = {
    "id": 3,
    "url": "https://hooks.example.com/orchestrator",
    "description": "billing",
    "events": ["tenant.deployed", "tenant.deprovisioned"],
    "signing_scheme": "standard",
    "is_active": True,
    "disabled_reason": "",
    "disabled_at": None,
    "custom_headers": {"x-team": "********", "authorization": "********"},
    "secret_rotated_at": None,
    "has_previous_secret": False,
    "previous_secret_expires_at": None,
    "circuit": "closed",
    "consecutive_failures": 0,
    "circuit_opened_at": None,
    "circuit_open_until": None,
    "created_at": "2025-01-10T09:00:00Z",
    "updated_at": "2025-01-10T09:00:00Z",
}
ENDPOINT_WITH_SECRET = {**ENDPOINT, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
ENDPOINT_INPUT = {
    "url": "https://hooks.example.com/orchestrator",
    "description": "billing",
    "events": ["tenant.deployed", "tenant.deprovisioned"],
    "signing_scheme": "standard",
    "custom_headers": {"x-team": "billing"},
}
ENDPOINTS_LIST = [_response("a page of endpoints", _page(ENDPOINT))]
ENDPOINT_CREATE = [
    OpenApiExample("an endpoint", value=ENDPOINT_INPUT, request_only=True),
    _response("created, with its secret (shown once)", ENDPOINT_WITH_SECRET, "201"),
    _error("invalid URL", "400", "invalid", "The request is invalid."),
]
ENDPOINT_DETAIL = [_response("endpoint", ENDPOINT), _error("unknown", "404", "not_found", "No such webhook endpoint.")]
ENDPOINT_UPDATE = [
    OpenApiExample("pause it", value={"is_active": False, "description": "paused for maintenance"}, request_only=True),
    _response("updated", {**ENDPOINT, "is_active": False, "description": "paused for maintenance"}),
]
ENDPOINT_DELETE = [_error("unknown", "404", "not_found", "No such webhook endpoint.")]
ENDPOINT_ROTATE = [
    OpenApiExample("generate a new secret", value={}, request_only=True),
    _response(
        "rotated, the new secret shown once",
        {**ENDPOINT_WITH_SECRET, "has_previous_secret": True, "previous_secret_expires_at": "2025-01-11T09:00:00Z"},
    ),
]

# --- Webhook deliveries ---------------------------------------------------------------------------------

DELIVERY = {
    "id": 55,
    "message_id": "msg_2b5f3c0e8f0d4c8e9a1b7d6c5e4f3a21",
    "status": "failed",
    "status_reason": "gave up after 4 attempts; last: HTTP 500",
    "step": "control_plane_webhook",
    "event_type": "TENANT_DEPLOYMENT",
    "position": 2,
    "url": "https://control-plane.example/webhook",
    "signing_scheme": "original",
    "endpoint": None,
    "tenant": TENANT_ID,
    "event": 42,
    "deployment": 7,
    "attempts": 4,
    "last_status_code": 500,
    "next_attempt_at": None,
    "last_attempt_at": "2025-01-15T10:41:10Z",
    "created_at": "2025-01-15T10:30:02Z",
    "finished_at": "2025-01-15T10:41:10Z",
}
DELIVERIES_LIST = [_response("a page of deliveries", _page(DELIVERY))]
DELIVERY_DETAIL = [
    _response(
        "delivery with its attempts",
        {
            **DELIVERY,
            "payload": {"initiatorId": TENANT_ID, "type": 0, "data": {"status": 1}},
            "attempt_log": [
                {
                    "number": 4,
                    "outcome": "failed",
                    "url": "https://control-plane.example/webhook",
                    "started_at": "2025-01-15T10:41:09Z",
                    "duration_ms": 812,
                    "status_code": 500,
                    "response_body": '{"error":"upstream down"}',
                    "response_truncated": False,
                    "error": "",
                    "retry_at": None,
                    "request_headers": {"content-type": "application/json", "x-signature": "********"},
                }
            ],
        },
    ),
    _error("unknown", "404", "not_found", "No such webhook delivery."),
]
DELIVERY_RETRY = [
    _response("queued", {"id": 55, "status": "pending", "queued": True, "message": "queued (chain resumed)"}, "202"),
    _response("already queued", {"id": 55, "status": "pending", "queued": False, "message": "already queued"}, "202"),
    _error("delivered", "409", "already_delivered", "This delivery already succeeded."),
]

# --- Status ---------------------------------------------------------------------------------------------

_CHECKED_AT = "2025-01-15T10:30:00.120000+00:00"
_DEPENDENCIES = ("database", "broker", "dynamodb", "eventbridge", "codebuild")
STATUS = [
    _response(
        "healthy (anonymous)",
        {
            "status": "ok",
            "checked_at": _CHECKED_AT,
            "checks": {
                name: {"status": "ok"} for name in ("database", "broker", "dynamodb", "eventbridge", "codebuild")
            },
        },
    ),
    _response(
        "degraded (staff)",
        {
            "status": "degraded",
            "checked_at": _CHECKED_AT,
            "checks": {
                "database": {"status": "ok", "latency_ms": 1.2, "checked_at": "2025-01-15T10:30:00.002000+00:00"},
                "broker": {
                    "status": "failed",
                    "latency_ms": 2001.5,
                    "checked_at": "2025-01-15T10:30:00.118000+00:00",
                    "error": "TimeoutError: Timeout connecting to server",
                },
                "dynamodb": {"status": "ok", "latency_ms": 6.1, "checked_at": "2025-01-15T10:30:00.010000+00:00"},
                "eventbridge": {"status": "ok", "latency_ms": 5.3, "checked_at": "2025-01-15T10:30:00.009000+00:00"},
                "codebuild": {"status": "ok", "latency_ms": 7.8, "checked_at": "2025-01-15T10:30:00.011000+00:00"},
            },
        },
        "503",
    ),
]
