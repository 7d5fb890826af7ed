"""OpenAPI examples of the portal's API: the tenant's history, the doctor."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from orchestrator.openapi import error_response, example_request, example_response, page

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
HISTORY_PAGE = [example_response("a page of history", page(HISTORY_EXAMPLE), status=None)]

DOCTOR_REPORT = [
    example_response(
        "a deployment waiting on an open circuit",
        {
            "needs_attention": True,
            "count": 1,
            "findings": [
                {
                    "key": "waiting_on_open_circuit:delivery:812:1736937000",
                    "rule": "waiting_on_open_circuit",
                    "title": "Deployment waits on an open circuit",
                    "tenant_id": "a3f1c2d4",
                    "object_type": "delivery",
                    "object_id": "812",
                    "reason": "The tenant is deploying and its tenant.deployed delivery waits for endpoint 4, whose "
                    "circuit is open after 5 failures in a row.",
                    "since": "2025-01-15T10:30:00Z",
                    "age_seconds": 1260,
                    "admin_url": "https://orchestrator.example/admin/webhooks/webhookdelivery/812/change/",
                    "fixes": [
                        {"action": "close_circuit", "target": "4", "label": "Close the endpoint's circuit"},
                        {"action": "retry_delivery", "target": "812", "label": "Retry the delivery now"},
                    ],
                }
            ],
        },
    ),
    example_response("nothing needs attention", {"needs_attention": False, "count": 0, "findings": []}),
]
FIX_REQUEST = [
    example_request("close a circuit", {"action": "close_circuit", "target": "4"}),
    example_request("replay an event", {"action": "replay_event", "target": "1207"}),
]
FIX_RESULT_SCHEMA = inline_serializer(
    "DoctorFixResult", {"changed": serializers.BooleanField(), "message": serializers.CharField()}
)
FIX_RESULT = [
    example_response(
        "fixed", {"changed": True, "message": "Endpoint 4: circuit closed, 3 waiting deliveries released."}
    ),
    example_response(
        "already fixed",
        {"changed": False, "message": "Nothing to do: no finding needs close the endpoint's circuit for 4 any more."},
    ),
]
FIX_ERRORS = {
    400: error_response(
        "Unknown fix, or no target.",
        "invalid",
        "The request is invalid.",
        {"action": ['"poke" is not a valid choice.']},
    ),
    401: error_response(
        "Not signed in (session or `Authorization: Token ...`).", "not_authenticated", "Not signed in."
    ),
    403: error_response(
        "Not staff, or missing the fix's permission.",
        "permission_denied",
        "You need the events.replay_receivedevent permission.",
    ),
    404: error_response("No such event, delivery, endpoint or tenant.", "not_found", "No WebhookEndpoint 4."),
    409: error_response(
        "The service refused it (e.g. the event is being processed right now).",
        "busy",
        "The event is being processed right now; replay it after it finishes.",
    ),
}
