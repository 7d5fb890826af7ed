"""OpenAPI examples of the portal's API: the tenant's history."""

from orchestrator.openapi import example_response, page

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
