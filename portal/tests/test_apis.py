"""The staff API across apps: the tenant's history (the timeline over the API), and the staff permission
levels on every staff endpoint of the API (tenants, webhooks and events)."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.models import EventStatus
from events.tests.factories import ReceivedEventFactory
from orchestrator.tests.factories import LEVELS, staff_user
from tenants.models import HistoryKind, TenantHistory, TenantStatus, Tier
from tenants.tests.factories import BuildFactory, TenantFactory, TierFactory
from tenants.tests.test_apis import api_client, error_of
from webhooks.models import DeliveryStatus
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return api_client("operator")


# --- Permission levels, every staff endpoint ---------------------------------------------------------


@pytest.fixture
def world():
    """One row of everything, in states where every action is harmless (no AWS call is made)."""
    tenant = TenantFactory(status=TenantStatus.PROVISIONING)  # retry: "already provisioning"
    inactive = TenantFactory(status=TenantStatus.INACTIVE)  # deprovision: "already inactive"
    tier = TierFactory(name="SPARE")
    build = BuildFactory(tenant=tenant)
    endpoint = WebhookEndpointFactory()
    delivery = make_delivery(endpoint, tenant=tenant, status=DeliveryStatus.FAILED)
    event = ReceivedEventFactory(status=EventStatus.FAILED, tenant_id=tenant.pk)
    return {
        "tenant": tenant,
        "inactive": inactive,
        "tier": tier,
        "build": build,
        "endpoint": endpoint,
        "delivery": delivery,
        "event": event,
    }


READS = [
    ("GET", "/api/tenants/"),
    ("GET", "/api/tenants/{tenant}/"),
    ("GET", "/api/tenants/{tenant}/history/"),
    ("GET", "/api/tiers/"),
    ("GET", "/api/tiers/{tier}/"),
    ("GET", "/api/builds/"),
    ("GET", "/api/builds/{build}/"),
    ("GET", "/api/webhook-endpoints/"),
    ("GET", "/api/webhook-endpoints/{endpoint}/"),
    ("GET", "/api/webhook-deliveries/"),
    ("GET", "/api/webhook-deliveries/{delivery}/"),
    ("GET", "/api/events/"),
    ("GET", "/api/events/{event}/"),
]
OPERATIONS = [  # operators may; read-only staff may not
    ("POST", "/api/tenants/{tenant}/retry-provisioning/"),
    ("POST", "/api/tenants/{inactive}/deprovision/"),
    ("POST", "/api/tenants/{tenant}/resync/"),
    ("POST", "/api/webhook-deliveries/{delivery}/retry/"),
    ("POST", "/api/events/{event}/replay/"),
]
SUPERUSER_WRITES = [  # only superusers may
    ("POST", "/api/tiers/", {"name": "NEW", "provision_project": "new-provision"}),
    ("PUT", "/api/tiers/{tier}/", {"name": "SPARE", "provision_project": "other"}),
    ("PATCH", "/api/tiers/{tier}/", {"description": "changed"}),
    ("DELETE", "/api/tiers/{tier}/", None),
    ("POST", "/api/webhook-endpoints/", {"url": "https://hooks.example.com/x", "events": ["tenant.deployed"]}),
    ("PATCH", "/api/webhook-endpoints/{endpoint}/", {"description": "changed"}),
    ("POST", "/api/webhook-endpoints/{endpoint}/rotate-secret/", {}),
    ("DELETE", "/api/webhook-endpoints/{endpoint}/", None),
]


def call(client: APIClient, method: str, template: str, world: dict, data=None):
    values = {name: (row.name if name == "tier" else row.pk) for name, row in world.items()}
    path = template.format(**values)
    if method == "GET":
        return client.get(path)
    return getattr(client, method.lower())(path, data, format="json")


EXPECTED = {
    # level: (reads, operations, superuser writes) -> allowed?
    "anonymous": (False, False, False),
    "read_only": (True, False, False),
    "operator": (True, True, False),
    "superuser": (True, True, True),
}


@pytest.mark.parametrize("level", LEVELS)
def test_every_staff_endpoint_at_every_permission_level(level, world):
    client = api_client(level)
    can_read, can_operate, can_write = EXPECTED[level]
    denied = 401 if level == "anonymous" else 403

    checks = [(m, p, None, can_read) for m, p in READS]
    checks += [(m, p, None, can_operate) for m, p in OPERATIONS]
    checks += [(m, p, d, can_write) for m, p, d in SUPERUSER_WRITES]
    outcomes = {}
    for method, template, data, allowed in checks:
        response = call(client, method, template, world, data)
        outcomes[f"{method} {template}"] = response.status_code
        if allowed:
            assert response.status_code < 400, (method, template, response.status_code, response.content)
        else:
            assert response.status_code == denied, (method, template, response.status_code, response.content)
            assert error_of(response)["code"] in ("not_authenticated", "permission_denied")

    # nothing a denied caller sent reached the services
    if not can_operate:
        assert not TenantHistory.objects.filter(kind=HistoryKind.STAFF_ACTION).exists()
    if not can_write:
        assert Tier.objects.filter(name="SPARE", description="test tier").exists()


def test_token_authentication_for_machines(world):
    token = Token.objects.create(user=staff_user("read_only"))
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.get("/api/tenants/").status_code == 200
    assert client.post(f"/api/tenants/{world['tenant'].pk}/resync/").status_code == 403
    assert APIClient(HTTP_AUTHORIZATION="Token not-a-token").get("/api/tenants/").status_code == 401


@pytest.mark.parametrize(
    "path",
    ["/api/tenants/", "/api/tenants/{tenant}/", "/api/tenants/{tenant}/history/", "/api/tiers/", "/api/builds/"],
)
def test_browsable_api_renders(client, world, path):
    client.force_login(staff_user("superuser"))

    response = client.get(path.format(tenant=world["tenant"].pk), HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"Django REST framework" in response.content


# --- History ------------------------------------------------------------------------------------------


def test_history_is_the_timeline_in_time_order_with_what_each_entry_refers_to(operator):
    tenant = TenantFactory(status=TenantStatus.DEPLOY_FAILED)
    event = ReceivedEventFactory(tenant_id=tenant.pk)
    build = BuildFactory(tenant=tenant, logs_url="https://logs.example/build/1")
    delivery = make_delivery(WebhookEndpointFactory(), tenant=tenant, status=DeliveryStatus.FAILED, attempts=3)
    delivery.last_status_code = 500
    delivery.save()
    for kind, ref_type, ref_id in [
        (HistoryKind.EVENT, "event", event.pk),
        (HistoryKind.BUILD, "build", build.pk),
        (HistoryKind.CALLBACK, "delivery", delivery.pk),
        (HistoryKind.NOTE, "", ""),
    ]:
        TenantHistory.objects.create(tenant=tenant, kind=kind, summary=kind, ref_type=ref_type, ref_id=ref_id)

    body = operator.get(f"/api/tenants/{tenant.pk}/history/").json()

    assert [row["kind"] for row in body["results"]] == ["event", "build", "callback", "note"]
    event_row, build_row, delivery_row, note_row = body["results"]
    assert event_row["event"]["event_id"] == event.event_id
    assert build_row["build"]["logs_url"] == "https://logs.example/build/1"
    assert delivery_row["delivery"] == {
        "id": delivery.pk,
        "step": "subscriber",
        "event_type": "tenant.deployed",
        "url": delivery.url,
        "status": "failed",
        "status_reason": "",
        "attempts": 3,
        "last_status_code": 500,
    }
    assert (note_row["event"], note_row["build"], note_row["delivery"]) == (None, None, None)


@pytest.mark.parametrize("rows", [3, 60])
def test_history_query_budget_is_constant(operator, django_assert_max_num_queries, rows):
    tenant = TenantFactory()
    endpoint = WebhookEndpointFactory()
    for n in range(rows):
        delivery = make_delivery(endpoint, tenant=tenant, dedupe_key=f"budget:{n}")
        build = BuildFactory(tenant=tenant, attempt=n + 1)
        TenantHistory.objects.create(
            tenant=tenant, kind="callback", summary="x", ref_type="delivery", ref_id=delivery.pk
        )
        TenantHistory.objects.create(tenant=tenant, kind="build", summary="x", ref_type="build", ref_id=build.pk)

    with django_assert_max_num_queries(7):  # permissions (2), tenant, count, page, deliveries, builds
        response = operator.get(f"/api/tenants/{tenant.pk}/history/", {"page_size": 500})

    assert len(response.json()["results"]) == 2 * rows
