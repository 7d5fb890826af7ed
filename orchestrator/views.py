from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, parser_classes, permission_classes
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from orchestrator import api_examples
from orchestrator.errors import error_body, json_not_found
from orchestrator.health import run_checks
from orchestrator.metrics import metrics_exposition, metrics_token_valid

_check = inline_serializer(
    "DependencyCheck",
    {"status": serializers.CharField(help_text='"ok" or a short error'), "latency_ms": serializers.FloatField()},
)


@extend_schema(
    tags=["status"],
    summary="Dependency health",
    examples=api_examples.STATUS,
    description="One entry per dependency; 200 when all are ok, 503 otherwise. No authentication.",
    responses={
        200: inline_serializer(
            "Status",
            {
                "status": serializers.ChoiceField(choices=["ok", "degraded"]),
                "checks": serializers.DictField(child=_check),
            },
        ),
        503: None,
    },
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def status_view(request: HttpRequest) -> Response:
    checks = run_checks()
    healthy = all(check["status"] == "ok" for check in checks.values())
    return Response({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)


@extend_schema(exclude=True)
@api_view(["POST"])
@authentication_classes([])
@permission_classes([AllowAny])
@parser_classes([JSONParser])
def bench_echo_view(request: HttpRequest) -> Response:
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
