"""OpenAPI examples and documented errors of the pipelines API."""

from typing import Any

from orchestrator.openapi import EXAMPLE_TENANT_ID, error_response, example_request, example_response, page

STEPS_EXAMPLE: list[dict[str, Any]] = [
    {
        "name": "build",
        "kind": "build",
        "config": {"project": "orchestrator-basic-provision", "builders": ["CODE_BUILD"]},
    },
    {"name": "go-live", "kind": "approval", "config": {"prompt": "Check the build"}, "timeout_seconds": 86400},
    {
        "name": "tell-control-plane",
        "kind": "callback",
        "config": {"callback": "control_plane_webhook"},
        "max_attempts": 3,
        "backoff_seconds": 30,
    },
]
FULL_STEPS_EXAMPLE: list[dict[str, Any]] = [
    {"config": {}, "timeout_seconds": 3600, "max_attempts": 1, "backoff_seconds": 30, "continue_on_failure": False}
    | step
    for step in STEPS_EXAMPLE
]
RUN_EXAMPLE = {
    "id": 12,
    "tenant": EXAMPLE_TENANT_ID,
    "operation": "provision",
    "tier_name": "BASIC",
    "status": "WAITING",
    "status_reason": "",
    "triggered_by": "event 7b8e2a6c-2f1e-4d5e-9a51-3c1c2f0e9b11",
    "created_at": "2025-01-15T10:30:01Z",
    "started_at": "2025-01-15T10:30:01Z",
    "finished_at": None,
    "step_runs": [
        {
            "id": 31,
            "position": 1,
            "name": "build",
            "kind": "build",
            "config": STEPS_EXAMPLE[0]["config"],
            "status": "SUCCEEDED",
            "attempts": 1,
            "started_at": "2025-01-15T10:30:01Z",
            "finished_at": "2025-01-15T10:34:40Z",
            "error": "",
            "outputs": {"API_ENDPOINT": "https://control-plane.example.com/webhook", "secret": "********"},
            "build": 88,
            "decision": "",
            "decided_by": None,
            "decision_comment": "",
            "decided_at": None,
        },
        {
            "id": 32,
            "position": 2,
            "name": "go-live",
            "kind": "approval",
            "config": STEPS_EXAMPLE[1]["config"],
            "status": "WAITING",
            "attempts": 1,
            "started_at": "2025-01-15T10:34:41Z",
            "finished_at": None,
            "error": "",
            "outputs": {},
            "build": None,
            "decision": "",
            "decided_by": None,
            "decision_comment": "",
            "decided_at": None,
        },
    ],
}

TIER_PIPELINES = [
    example_response("pipelines", {"tier": "BASIC", "pipelines": {"provision": FULL_STEPS_EXAMPLE}}, status=None)
]
PIPELINE_INPUT = [example_request("build, approval, callback", {"steps": STEPS_EXAMPLE})]
INVALID_PIPELINE = error_response(
    "Invalid pipeline.",
    "invalid",
    "Pipeline provision of tier BASIC is invalid: steps[0].config: builders: tier BASIC does not allow LOCAL.",
    {"steps[0].config": ["builders: tier BASIC does not allow LOCAL."]},
)
RUNS_LIST = [example_response("a page of runs", page(RUN_EXAMPLE), status=None)]
DECISION_INPUT = [example_request("a comment", {"comment": "Checked the build logs."})]
APPROVED = [
    example_response(
        "approved", {"run": 12, "status": "RUNNING", "changed": True, "message": "Step go-live approved."}, status=None
    )
]
REJECTED = [
    example_response(
        "rejected", {"run": 12, "status": "FAILED", "changed": True, "message": "Step go-live rejected."}, status=None
    )
]
REDRIVEN = [
    example_response(
        "redriven",
        {"run": 12, "status": "RUNNING", "changed": True, "message": "Run 12 redriven from step tell-control-plane."},
        status=None,
    )
]
CANCELLED = [
    example_response(
        "cancelled", {"run": 12, "status": "CANCELLED", "changed": True, "message": "Run 12 cancelled."}, status=None
    )
]
NOT_DECIDABLE = error_response(
    "The step is not waiting for a decision, or the run's status does not allow this.",
    "conflict",
    "Step go-live is succeeded, not waiting for a decision.",
)
