"""OpenAPI examples of the webhooks API: endpoints and deliveries."""

from orchestrator.openapi import EXAMPLE_TENANT_ID, example_error, example_request, example_response, page

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
ENDPOINTS_LIST = [example_response("a page of endpoints", page(ENDPOINT))]
ENDPOINT_CREATE = [
    example_request("an endpoint", ENDPOINT_INPUT),
    example_response("created, with its secret (shown once)", ENDPOINT_WITH_SECRET, "201"),
    example_error("invalid URL", "400", "invalid", "The request is invalid."),
]
ENDPOINT_DETAIL = [
    example_response("endpoint", ENDPOINT),
    example_error("unknown", "404", "not_found", "No such webhook endpoint."),
]
ENDPOINT_UPDATE = [
    example_request("pause it", {"is_active": False, "description": "paused for maintenance"}),
    example_response("updated", {**ENDPOINT, "is_active": False, "description": "paused for maintenance"}),
]
ENDPOINT_DELETE = [example_error("unknown", "404", "not_found", "No such webhook endpoint.")]
ENDPOINT_ROTATE = [
    example_request("generate a new secret", {}),
    example_response(
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
    "tenant": EXAMPLE_TENANT_ID,
    "event": 42,
    "deployment": 7,
    "attempts": 4,
    "last_status_code": 500,
    "next_attempt_at": None,
    "last_attempt_at": "2025-01-15T10:41:10Z",
    "created_at": "2025-01-15T10:30:02Z",
    "finished_at": "2025-01-15T10:41:10Z",
}
DELIVERIES_LIST = [example_response("a page of deliveries", page(DELIVERY))]
DELIVERY_DETAIL = [
    example_response(
        "delivery with its attempts",
        {
            **DELIVERY,
            "payload": {"initiatorId": EXAMPLE_TENANT_ID, "type": 0, "data": {"status": 1}},
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
    example_error("unknown", "404", "not_found", "No such webhook delivery."),
]
DELIVERY_RETRY = [
    example_response(
        "queued", {"id": 55, "status": "pending", "queued": True, "message": "queued (chain resumed)"}, "202"
    ),
    example_response(
        "already queued", {"id": 55, "status": "pending", "queued": False, "message": "already queued"}, "202"
    ),
    example_error("delivered", "409", "already_delivered", "This delivery already succeeded."),
]
