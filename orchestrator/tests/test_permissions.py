"""One permission rule for every staff API: active staff holding the model permission of the method (GET and
OPTIONS need ``view``), or the action's own permission. Every route under /api/ is found from the URL
configuration, so an endpoint added later is covered without touching this test."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from orchestrator.permissions import acting_user
from orchestrator.tests.factories import staff_user

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete", "options")
# Machine endpoints with their own authentication (the EventBridge intake's API key), not staff endpoints.
MACHINE_ENDPOINTS = {("api/events/", "post")}
# The OpenAPI schema and its viewers are public (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]).
PUBLIC_ROUTES = {"api/schema/", "api/docs/", "api/redoc/"}


def api_routes(patterns=None, prefix: str = "") -> list[tuple[str, type]]:
    """(route, view class) of every URL pattern under api/, path parameters filled with a placeholder."""
    routes = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes += api_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/") and route not in PUBLIC_ROUTES:
            view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
            routes.append((route, view_class))
    return routes


def staff_calls() -> list[tuple[str, str]]:
    calls = []
    for route, view_class in api_routes():
        for method in METHODS:
            if hasattr(view_class, method) and (route, method) not in MACHINE_ENDPOINTS:
                calls.append((method, route))
    return calls


def call(client: APIClient, method: str, route: str):
    # 1 fits every parameter (<int:pk>, <str:pk>, <str:name>): permissions are checked before any lookup.
    path = "/" + re.sub(r"<(?:\w+:)?\w+>", "1", route)
    return getattr(client, method)(path, {}, format="json") if method != "get" else client.get(path)


def client_for(**fields) -> APIClient:
    user = get_user_model().objects.create_user(username=f"user-{uuid.uuid4().hex[:8]}", password="x", **fields)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_every_staff_api_is_found():
    routes = {route for route, _view in api_routes()}
    assert {
        "api/events/",
        "api/events/<int:pk>/",
        "api/webhook-deliveries/",
        "api/webhook-deliveries/<int:pk>/",
        "api/webhook-endpoints/",
        "api/tenants/",
        "api/tiers/",
        "api/builds/",
    } <= routes


@pytest.mark.parametrize(("method", "route"), staff_calls())
def test_staff_without_permissions_are_refused_everywhere(method, route):
    # given an active staff user holding no permission at all
    client = client_for(is_staff=True)

    # when they call any staff endpoint with any method it has
    response = call(client, method, route)

    # then it is refused with the permission error, before any row is looked up
    assert response.status_code == 403, (method, route, response.status_code, response.content[:200])
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("route", sorted({route for method, route in staff_calls() if method == "get"}))
def test_reads_pass_the_permission_check_for_a_superuser(route):
    # the control: the same calls are not refused for someone holding every permission
    response = call(client_for(is_staff=True, is_superuser=True), "get", route)
    assert response.status_code in (200, 404), (route, response.status_code, response.content[:200])


def test_acting_user_is_the_signed_in_user_and_refuses_an_anonymous_one():
    # Given a staff member and an anonymous visitor
    staff = staff_user("operator")

    # Then an action is recorded against the staff member, and an anonymous request is refused
    assert acting_user(staff) is staff
    with pytest.raises(PermissionDenied):
        acting_user(AnonymousUser())
