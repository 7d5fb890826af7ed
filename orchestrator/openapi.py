"""OpenAPI pieces every app's API uses: the one error body and its documentation, and the helpers each
app's ``openapi`` module builds its examples with (values are illustrative; secrets shown masked, as the API
shows them). The examples of the status endpoint, the foundation's own, are at the bottom."""

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from orchestrator.errors import error_body

# The tenant every example is about.
EXAMPLE_TENANT_ID = "7d0c9b2e-4c1e-4a57-9d59-2f7c1a7b4d10"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # A declared field, which DRF's metaclass takes off the class: the ``fields`` property stays (the stubs cannot
    # tell the two apart).
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text='Dotted field paths to reasons, e.g. {"detail.tenant.id": ["This field is required."]}.',
    )


# Every error answer (``orchestrator.errors``): ``{"error": {"code", "message", "fields"?}}``. (A comment, not a
# docstring: drf-spectacular would publish a docstring as the component's description.)
class ErrorResponseSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


def error_response(
    description: str, code: str | None = None, message: str = "", fields: dict[str, list[str]] | None = None
) -> OpenApiResponse:
    """An error answer of an operation; with ``code``, its example body too."""
    examples = [OpenApiExample(code, value=error_body(code, message, fields), response_only=True)] if code else None
    return OpenApiResponse(ErrorResponseSerializer, description=description, examples=examples)


def page(row: dict[str, Any]) -> dict[str, Any]:
    """A page of one row, as the list operations answer (``orchestrator.pagination``)."""
    return {"count": 1, "next": None, "previous": None, "results": [row]}


def example_request(name: str, value: dict[str, Any]) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


def example_response(name: str, value: dict[str, Any] | None, status: str | None = "200") -> OpenApiExample:
    """A response example for ``status``; ``None``: for the status of the response it is given to."""
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status] if status else None)


def example_error(name: str, status: str, code: str, message: str) -> OpenApiExample:
    return example_response(name, error_body(code, message), status)


# --- Status ---------------------------------------------------------------------------------------------

_CHECKED_AT = "2025-01-15T10:30:00.120000+00:00"
STATUS = [
    example_response(
        "healthy (anonymous)",
        {
            "status": "ok",
            "checked_at": _CHECKED_AT,
            "checks": {
                name: {"status": "ok"} for name in ("database", "broker", "dynamodb", "eventbridge", "codebuild")
            },
        },
    ),
    example_response(
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
