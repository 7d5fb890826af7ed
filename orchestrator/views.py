from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, parser_classes, permission_classes
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from orchestrator.errors import error_body, json_not_found
from orchestrator.health import StatusReport, status_report
from orchestrator.metrics import metrics_exposition, metrics_token_valid
from orchestrator.openapi import STATUS
from orchestrator.permissions import is_active_staff

_check = inline_serializer(
    "DependencyCheck",
    {
        "status": serializers.ChoiceField(choices=["ok", "failed"]),
        "latency_ms": serializers.FloatField(required=False, help_text="Staff only."),
        "checked_at": serializers.DateTimeField(required=False, help_text="Staff only."),
        "error": serializers.CharField(required=False, help_text="Staff only, when failed: the error, secrets masked."),
    },
)


def status_body(report: StatusReport, *, details: bool) -> dict[str, Any]:
    """The overall status and each dependency's ok/failed; latencies, times and errors only with ``details``."""
    checks: dict[str, dict[str, Any]] = {}
    for name, check in report.checks.items():
        entry: dict[str, Any] = {"status": "ok" if check.ok else "failed"}
        if details:
            entry.update(latency_ms=check.latency_ms, checked_at=check.checked_at.isoformat())
            if check.error:
                entry["error"] = check.error
        checks[name] = entry
    return {
        "status": "ok" if report.healthy else "degraded",
        "checked_at": report.checked_at.isoformat(),
        "checks": checks,
    }


@extend_schema(
    tags=["status"],
    summary="Dependency health",
    examples=STATUS,
    description=(
        "One entry per dependency; 200 when all are ok, 503 otherwise. No authentication: anonymous callers get "
        "each dependency's ok/failed; staff (session or token) also get latencies, check times and errors. The "
        "checks run at most once per STATUS_CACHE_SECONDS per web process, whoever asks. Load balancers: use "
        "`/orchestrator/live` (no dependency calls) or `/orchestrator/ready` (database only)."
    ),
    responses={
        200: inline_serializer(
            "Status",
            {
                "status": serializers.ChoiceField(choices=["ok", "degraded"]),
                "checked_at": serializers.DateTimeField(),
                "checks": serializers.DictField(child=_check),
            },
        ),
        503: None,
    },
)
@api_view(["GET"])
@permission_classes([AllowAny])
def status_view(request: HttpRequest) -> Response:
    report = status_report()
    body = status_body(report, details=is_active_staff(request.user))
    return Response(body, status=200 if report.healthy else 503)


@extend_schema(exclude=True)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@parser_classes([JSONParser])
def bench_echo_view(request: Request) -> Response:
    """Benchmark baseline (mounted only with BENCH_ENDPOINTS): parse the JSON body and answer 202.

    The intake benchmark reports intake throughput as a ratio to this endpoint in the same server, so the
    cost of the framework (gunicorn, middleware, DRF, JSON) is separated from the intake's own work.
    """
    body = request.data
    return Response({"id": body.get("id", "") if isinstance(body, dict) else "", "status": "accepted"}, status=202)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint (not part of the API): the bearer token of METRICS_TOKENS, or 401; not served
    (404) while no token is configured."""
    if not settings.METRICS_TOKENS:
        return json_not_found(request)
    if request.method not in ("GET", "HEAD"):
        return JsonResponse(error_body("method_not_allowed", "Only GET."), status=405, headers={"Allow": "GET, HEAD"})
    if not metrics_token_valid(request.headers.get("Authorization", "")):
        return JsonResponse(
            error_body("not_authenticated", "A bearer token of METRICS_TOKENS is required."),
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="orchestrator-metrics"'},
        )
    body, content_type = metrics_exposition(accept=request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)
