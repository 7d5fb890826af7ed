"""Tenants API (tenants, history, staff actions, tiers, builds) and the staff permission levels on every
staff endpoint of the API, including the webhooks and events ones."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.catalogue import DetailType
from events.models import EventStatus
from events.tests.factories import ReceivedEventFactory
from orchestrator.sealing import unseal
from tenants.models import Build, HistoryKind, Tenant, TenantHistory, TenantStatus, Tier
from tenants.tests.conftest import envelope, outcome_detail, provisioning_detail, tenant_item_of, tier_item_of
from tenants.tests.factories import BuildFactory, TenantFactory, TierFactory, TierVariableFactory
from tenants.tests.staff import LEVELS, staff_user
from webhooks.models import DeliveryStatus
from webhooks.tests.factories import WebhookEndpointFactory
from webhooks.tests.test_delivery import make_delivery

pytestmark = pytest.mark.django_db


def api_client(level: str) -> APIClient:
    client = APIClient()
    if level != "anonymous":
        client.user = staff_user(level)
        client.force_authenticate(client.user)
    return client


@pytest.fixture
def operator():
    return api_client("operator")


@pytest.fixture
def superuser():
    return api_client("superuser")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]


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


def test_staff_without_the_view_permission_cannot_read():
    client = APIClient()
    user = staff_user("read_only")
    user.groups.clear()
    client.force_authenticate(user)

    assert client.get("/api/tenants/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client.force_authenticate(type(user).objects.get(pk=user.pk))  # fresh permission cache
    assert client.get("/api/tenants/").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/api/tenants/", "/api/tenants/{tenant}/", "/api/tenants/{tenant}/history/", "/api/tiers/", "/api/builds/"],
)
def test_browsable_api_renders(client, world, path):
    client.force_login(staff_user("superuser"))

    response = client.get(path.format(tenant=world["tenant"].pk), HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"Django REST framework" in response.content


# --- Tenants ------------------------------------------------------------------------------------------


def test_list_filters_search_and_pages(operator):
    acme = TenantFactory(key="acme", tier="GOLD", status=TenantStatus.ACTIVE)
    TenantFactory(key="globex", tier="BASIC", status=TenantStatus.ACTIVE)
    TenantFactory(key="initech", tier="GOLD", status=TenantStatus.PROVISION_FAILED)

    def keys(**params):
        response = operator.get("/api/tenants/", params)
        assert response.status_code == 200, response.content
        return sorted(row["key"] for row in response.json()["results"])

    assert keys() == ["acme", "globex", "initech"]
    assert keys(status="ACTIVE") == ["acme", "globex"]
    assert keys(tier="GOLD") == ["acme", "initech"]
    assert keys(status="ACTIVE", tier="GOLD") == ["acme"]
    assert keys(search="glob") == ["globex"]
    assert keys(search=acme.pk[:8]) == ["acme"]
    assert keys(search="ops@initech.example") == ["initech"]
    page = operator.get("/api/tenants/", {"page_size": 2}).json()
    assert page["count"] == 3
    assert len(page["results"]) == 2
    assert page["next"]
    row = operator.get("/api/tenants/", {"search": "acme"}).json()["results"][0]
    assert row["contact_email"] == "ops@acme.example"
    assert row["status"] == "ACTIVE"


def test_list_refuses_an_invalid_filter(operator):
    response = operator.get("/api/tenants/", {"status": "SLEEPING"})

    assert response.status_code == 400
    assert "status" in error_of(response)["fields"]


def test_detail_masks_secrets_and_unknown_tenant_is_404(operator):
    tenant = TenantFactory()

    body = operator.get(f"/api/tenants/{tenant.pk}/").json()
    missing = operator.get("/api/tenants/no-such-tenant/")

    assert body["builder_config"]["config"]["environmentOverride"]["secret"] == "********"
    assert "s3cr3t" not in str(body)
    assert body["plan"]["tier"] == "BASIC"
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"
    for action in ("history", "retry-provisioning", "deprovision", "resync"):
        method = operator.get if action == "history" else operator.post
        assert method(f"/api/tenants/no-such-tenant/{action}/").status_code == 404


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


def test_retry_provisioning_starts_a_new_build_recorded_with_the_caller(operator, codebuild_tier, send_event):
    # given a tenant whose provisioning failed (real intake, real CodeBuild in moto)
    detail = provisioning_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    first = Build.objects.get()
    send_event(
        envelope(DetailType.TENANT_PROVISIONING_FAILURE, outcome_detail(tenant.pk, first.build_id, succeeding="0"))
    )

    # when an operator retries it, twice
    response = operator.post(f"/api/tenants/{tenant.pk}/retry-provisioning/")
    again = operator.post(f"/api/tenants/{tenant.pk}/retry-provisioning/")

    # then one new attempt and build; the second call changed nothing
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "PROVISIONING"
    assert body["changed"] is True
    second = Build.objects.exclude(pk=first.pk).get()
    assert body["build"] == second.build_id
    assert second.attempt == 2
    assert again.status_code == 202
    assert again.json()["changed"] is False
    assert Build.objects.count() == 2
    action = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert action.actor_user == operator.user
    assert action.actor == operator.user.username


def test_deprovision_starts_the_deprovisioning_build_and_is_idempotent(operator, codebuild_tier):
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC")

    response = operator.post(f"/api/tenants/{tenant.pk}/deprovision/")
    again = operator.post(f"/api/tenants/{tenant.pk}/deprovision/")

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "DEPROVISIONING"
    build = Build.objects.get(tenant=tenant)
    assert build.purpose == "deprovision"
    assert build.project == "orchestrator-basic-deprovision"
    assert build.build_id  # started in moto's CodeBuild
    assert again.json() | {"message": ""} == {
        "tenant": tenant.pk,
        "status": "DEPROVISIONING",
        "changed": False,
        "message": "",
        "build": None,
    }
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.STAFF_ACTION, actor_user=operator.user)


def test_deprovision_refused_by_the_state_machine_is_409_and_recorded(operator):
    tenant = TenantFactory(status=TenantStatus.DEPLOYING)

    response = operator.post(f"/api/tenants/{tenant.pk}/deprovision/")

    assert response.status_code == 409
    assert error_of(response)["code"] == "transition_refused"
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOYING
    refused = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.TRANSITION_REFUSED)
    assert refused.actor_user == operator.user


def test_resync_writes_the_tenant_to_dynamodb(operator, aws, run_commit_hooks):
    with run_commit_hooks():  # the tenant's own first write, as after its creation's commit
        tenant = TenantFactory(status=TenantStatus.ACTIVE)
    written = tenant_item_of(tenant.pk)["version"]

    with run_commit_hooks():
        response = operator.post(f"/api/tenants/{tenant.pk}/resync/")

    assert response.status_code == 202
    tenant.refresh_from_db()
    item = tenant_item_of(tenant.pk)
    assert item["version"] == tenant.version > written
    assert tenant.synced_version == tenant.version
    assert TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION).actor_user == operator.user


# --- Tiers --------------------------------------------------------------------------------------------


def test_tier_crud_writes_through_to_dynamodb(superuser, aws, run_commit_hooks):
    create = {
        "name": "GOLD",
        "provision_project": "gold-provision",
        "deprovision_project": "gold-deprovision",
        "variables": [
            {"name": "EKS_CLUSTER_NAME", "value": "gold-eks", "type": "PLAINTEXT"},
            {"name": "DB_PASSWORD", "value": "/gold/db", "type": "PARAMETER_STORE"},
            {"name": "API_SECRET", "value": "plain-secret", "type": "PLAINTEXT"},
        ],
    }
    with run_commit_hooks():
        created = superuser.post("/api/tiers/", create, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["allowed_builders"] == ["CODE_BUILD"]  # a new tier: CodeBuild only
    variables = {v["name"]: v["value"] for v in created.json()["variables"]}
    assert variables == {"API_SECRET": "********", "DB_PASSWORD": "/gold/db", "EKS_CLUSTER_NAME": "gold-eks"}
    item = tier_item_of("GOLD")
    assert item["API_SECRET"].startswith("sealed:v1:")  # the mirror never holds a secret in plain
    assert (item["jobName"], item["EKS_CLUSTER_NAME"], unseal(item["API_SECRET"])) == (
        "gold-provision",
        "gold-eks",
        "plain-secret",
    )
    assert item["allowedBuilders"] == ["CODE_BUILD"]

    # a masked value sent back keeps the stored value; the list replaces the variables
    with run_commit_hooks():
        patched = superuser.patch(
            "/api/tiers/GOLD/",
            {
                "provision_project": "gold-provision-v2",
                "variables": [
                    {"name": "EKS_CLUSTER_NAME", "value": "gold-eks-2", "type": "PLAINTEXT"},
                    {"name": "API_SECRET", "value": "********", "type": "PLAINTEXT"},
                ],
            },
            format="json",
        )
    assert patched.status_code == 200, patched.content
    item = tier_item_of("GOLD")
    assert item["jobName"] == "gold-provision-v2"
    assert (item["EKS_CLUSTER_NAME"], unseal(item["API_SECRET"])) == ("gold-eks-2", "plain-secret")
    assert "DB_PASSWORD" not in item
    assert patched.json()["deprovision_project"] == "gold-deprovision"
    assert item["version"] == Tier.objects.get(name="GOLD").version

    with run_commit_hooks():
        deleted = superuser.delete("/api/tiers/GOLD/")
    assert deleted.status_code == 204
    assert tier_item_of("GOLD") is None
    assert not Tier.objects.filter(name="GOLD").exists()


def test_tier_errors(superuser):
    tier = TierFactory(name="BASIC")
    TierVariableFactory(tier=tier, name="KEEP", value="1")
    TenantFactory(tier="BASIC", status=TenantStatus.ACTIVE)

    invalid = superuser.post(
        "/api/tiers/",
        {"name": "X", "provision_project": "p", "variables": [{"name": "1BAD", "value": "x"}]},
        format="json",
    )
    duplicate_vars = superuser.post(
        "/api/tiers/",
        {
            "name": "X",
            "provision_project": "p",
            "variables": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}],
        },
        format="json",
    )
    exists = superuser.post("/api/tiers/", {"name": "BASIC", "provision_project": "p"}, format="json")
    missing_field = superuser.put("/api/tiers/BASIC/", {"name": "BASIC"}, format="json")
    rename = superuser.patch("/api/tiers/BASIC/", {"name": "RENAMED"}, format="json")
    in_use = superuser.delete("/api/tiers/BASIC/")
    unknown = superuser.get("/api/tiers/NOPE/")

    assert invalid.status_code == 400
    assert "variables.0.name" in error_of(invalid)["fields"]
    assert duplicate_vars.status_code == 400
    assert exists.status_code == 409
    assert missing_field.status_code == 400
    assert "provision_project" in error_of(missing_field)["fields"]
    assert rename.status_code == 400
    assert error_of(rename)["code"] == "rename_refused"
    assert in_use.status_code == 409
    assert error_of(in_use)["code"] == "tier_in_use"
    assert unknown.status_code == 404
    assert list(Tier.objects.values_list("name", flat=True)) == ["BASIC"]
    assert list(tier.variables.values_list("name", flat=True)) == ["KEEP"]


# --- Builds -------------------------------------------------------------------------------------------


def test_builds_list_filters_and_detail(operator):
    tenant = TenantFactory(key="acme")
    failed = BuildFactory(tenant=tenant, status="FAILED", environment=[{"name": "secret", "value": "********"}])
    BuildFactory(tenant=TenantFactory(), purpose="deprovision")

    everything = operator.get("/api/builds/").json()
    by_tenant = operator.get("/api/builds/", {"tenant": tenant.pk}).json()
    by_status = operator.get("/api/builds/", {"status": "FAILED"}).json()
    by_purpose = operator.get("/api/builds/", {"purpose": "deprovision"}).json()
    detail = operator.get(f"/api/builds/{failed.pk}/").json()

    assert everything["count"] == 2
    assert [row["id"] for row in by_tenant["results"]] == [failed.pk]
    assert by_tenant["results"][0]["tenant_key"] == "acme"
    assert [row["id"] for row in by_status["results"]] == [failed.pk]
    assert by_purpose["count"] == 1
    assert detail["environment"] == [{"name": "secret", "value": "********"}]
    assert operator.get("/api/builds/", {"status": "BROKEN"}).status_code == 400
    assert operator.get("/api/builds/999999/").status_code == 404


# --- Query budgets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [3, 60])
def test_tenant_list_query_budget_is_constant(operator, django_assert_max_num_queries, rows):
    TenantFactory.create_batch(rows)

    with django_assert_max_num_queries(4):  # the user's permissions (2), count, page
        response = operator.get("/api/tenants/", {"page_size": 100})

    assert len(response.json()["results"]) == rows


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


@pytest.mark.parametrize("rows", [3, 60])
def test_deliveries_list_query_budget_is_constant(operator, django_assert_max_num_queries, rows):
    endpoint = WebhookEndpointFactory()
    tenant = TenantFactory()
    for n in range(rows):
        make_delivery(endpoint, tenant=tenant, dedupe_key=f"list:{n}")

    with django_assert_max_num_queries(5):  # the user's permissions (2), count, page (endpoints joined)
        response = operator.get(reverse("webhook-deliveries"), {"page_size": 100})

    assert len(response.json()["results"]) == rows
