"""The operations' staff API: update (with a plan, or a retry), roll back, suspend, resume; permission-checked,
idempotent, structured errors."""

import pytest

from tenants.models import HistoryKind, TenantHistory, TenantStatus
from tenants.tests.factories import TenantFactory, TierFactory
from tenants.tests.test_apis import api_client, error_of

pytestmark = pytest.mark.django_db

PLAN = {"id": "plan-pro", "name": "Pro", "tier": "PRO", "sizeConfig": {"MAX_USERS": 500}}


@pytest.fixture
def operator():
    return api_client("operator")


@pytest.fixture
def tiers():
    """BASIC and PRO, neither building its operations (they succeed at once)."""
    return TierFactory(name="BASIC"), TierFactory(name="PRO")


def test_read_only_staff_may_not_run_operations():
    # given staff who may only read, and an active tenant
    reader = api_client("read_only")
    tenant = TenantFactory(status=TenantStatus.ACTIVE)

    # when they try each operation
    answers = [
        reader.post(f"/api/tenants/{tenant.pk}/{action}/", data=data, format="json")
        for action, data in (("update", {"planConfig": PLAN}), ("roll-back", {}), ("suspend", {}), ("resume", {}))
    ]

    # then each is a structured 403 and the tenant is untouched
    assert [answer.status_code for answer in answers] == [403, 403, 403, 403]
    assert {error_of(answer)["code"] for answer in answers} == {"permission_denied"}
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert api_client("anonymous").post(f"/api/tenants/{tenant.pk}/suspend/").status_code in (401, 403)


def test_update_moves_the_tenant_to_the_new_plan_and_tier_recorded_with_the_caller(operator, tiers):
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC")

    response = operator.post(f"/api/tenants/{tenant.pk}/update/", data={"planConfig": PLAN}, format="json")

    assert response.status_code == 202, response.content
    assert (response.json()["status"], response.json()["changed"]) == ("ACTIVE", True)
    detail = operator.get(f"/api/tenants/{tenant.pk}/").json()
    assert (detail["tier"], detail["plan"]["id"], detail["previous_tier"], detail["pending_plan"]) == (
        "PRO",
        "plan-pro",
        "BASIC",
        {},
    )
    assert detail["previous_plan"]["tier"] == "BASIC"
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.STAFF_ACTION, actor_user=operator.user)


def test_update_errors_are_structured(operator, tiers):
    # given a tenant still provisioning and an active one
    provisioning = TenantFactory(status=TenantStatus.PROVISIONING)
    active = TenantFactory(status=TenantStatus.ACTIVE)

    # when an update is asked of the first, an unknown tier and a bad variable name of the second
    refused = operator.post(f"/api/tenants/{provisioning.pk}/update/", data={"planConfig": PLAN}, format="json")
    unknown = operator.post(
        f"/api/tenants/{active.pk}/update/", data={"planConfig": {**PLAN, "tier": "GOLD"}}, format="json"
    )
    bad_name = operator.post(
        f"/api/tenants/{active.pk}/update/",
        data={"planConfig": {**PLAN, "sizeConfig": {"LD_PRELOAD": "x"}}},
        format="json",
    )
    no_plan = operator.post(f"/api/tenants/{active.pk}/update/", data={}, format="json")

    # then: 409 for the status, 400 with the field for the plans; nothing moved
    assert refused.status_code == 409
    assert error_of(refused)["code"] == "operation_refused"
    assert (unknown.status_code, error_of(unknown)["code"]) == (400, "invalid_plan")
    assert "planConfig.tier" in error_of(unknown)["fields"]
    assert bad_name.status_code == 400
    assert any(field.startswith("planConfig") for field in error_of(bad_name)["fields"])
    assert (no_plan.status_code, error_of(no_plan)["code"]) == (400, "invalid_plan")
    active.refresh_from_db()
    provisioning.refresh_from_db()
    assert (active.status, provisioning.status) == (TenantStatus.ACTIVE, TenantStatus.PROVISIONING)


def test_suspend_and_resume_are_idempotent(operator, tiers):
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC")

    suspended = operator.post(f"/api/tenants/{tenant.pk}/suspend/")
    again = operator.post(f"/api/tenants/{tenant.pk}/suspend/")
    resumed = operator.post(f"/api/tenants/{tenant.pk}/resume/")
    resumed_again = operator.post(f"/api/tenants/{tenant.pk}/resume/")

    assert [(r.status_code, r.json()["status"], r.json()["changed"]) for r in (suspended, again)] == [
        (202, "SUSPENDED", True),
        (202, "SUSPENDED", False),
    ]
    assert [(r.json()["status"], r.json()["changed"]) for r in (resumed, resumed_again)] == [
        ("ACTIVE", True),
        ("ACTIVE", False),
    ]


def test_roll_back_of_a_tenant_not_in_update_failed_is_409_and_of_a_failed_update_works(operator, tiers):
    updating = TenantFactory(status=TenantStatus.UPDATING, pending_plan=PLAN, pending_tier="PRO")
    failed = TenantFactory(status=TenantStatus.UPDATE_FAILED, tier="BASIC", pending_plan=PLAN, pending_tier="PRO")

    refused = operator.post(f"/api/tenants/{updating.pk}/roll-back/")
    rolled_back = operator.post(f"/api/tenants/{failed.pk}/roll-back/")

    assert (refused.status_code, error_of(refused)["code"]) == (409, "operation_refused")
    assert (rolled_back.status_code, rolled_back.json()["status"]) == (202, "ACTIVE")
    failed.refresh_from_db()
    assert (failed.tier, failed.pending_plan, failed.pending_tier) == ("BASIC", {}, "")
