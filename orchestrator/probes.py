"""``/orchestrator/live`` and ``/orchestrator/ready``: probes for load balancers and container schedulers.

Answered by the first middleware, before host validation (probes address the container by IP), the HTTPS
redirect (probes speak plain HTTP to the container), sessions and authentication. Liveness calls nothing: the
process answers, so it is up. Readiness runs one ``SELECT 1``: without its database the intake cannot accept
an event. Neither says anything about Redis or AWS (``/orchestrator/status`` does): a broker or AWS outage
must not take every web process out of the load balancer, the intake keeps storing events meanwhile.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from orchestrator.health import database_ready

LIVE_PATH = "/orchestrator/live"
READY_PATH = "/orchestrator/ready"


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in (LIVE_PATH, READY_PATH):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse({"error": {"code": "method_not_allowed", "message": "GET or HEAD."}}, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        if request.path_info == LIVE_PATH:
            return JsonResponse({"status": "ok"})
        ready = database_ready()
        return JsonResponse({"status": "ok" if ready else "unavailable"}, status=200 if ready else 503)
