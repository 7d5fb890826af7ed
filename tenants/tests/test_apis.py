"""Tenants API (tenants, staff actions, tiers, builds). The history and the permission levels on every staff
endpoint of the API: ``portal/tests/test_apis.py``."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from orchestrator.sealing import unseal
from orchestrator.tests.factories import staff_user
from tenants.models import Build, HistoryKind, TenantHistory, TenantStatus, Tier
from tenants.services.sync import tenant_sync_schedule
from tenants.tests.conftest import (
    provisioning_failed,
    tenant_item_of,
    tier_item_of,
)
from tenants.tests.factories import BuildFactory, TenantFactory, TierFactory, TierVariableFactory

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


# --- Permission levels ---------------------------------------------------------------------------------


def test_staff_without_the_view_permission_cannot_read():
    client = APIClient()
    user = staff_user("read_only")
    user.groups.clear()
    client.force_authenticate(user)

    assert client.get("/api/tenants/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_tenant"))
    client.force_authenticate(type(user).objects.get(pk=user.pk))  # fresh permission cache
    assert client.get("/api/tenants/").status_code == 200


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


def test_retry_provisioning_starts_a_new_build_recorded_with_the_caller(operator, codebuild_tier, send_event):
    # given a tenant whose provisioning failed (real intake, real CodeBuild in moto)
    tenant, first = provisioning_failed(send_event)

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
        tenant_sync_schedule(tenant_id=tenant.pk)
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
