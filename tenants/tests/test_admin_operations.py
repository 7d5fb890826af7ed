"""The tenant page's operations: buttons by status and permission, POST only, the same services as the API."""

import json

import pytest
from django.urls import reverse

from orchestrator.tests.factories import staff_user
from tenants.models import HistoryKind, TenantHistory, TenantStatus
from tenants.tests.factories import TenantFactory, TierFactory

pytestmark = pytest.mark.django_db

SECRET_PLAN = {"id": "plan-basic", "tier": "BASIC", "sizeConfig": {"DB_PASSWORD": "hunter22"}}


@pytest.fixture
def operator_client(client):
    client.user = staff_user("operator")
    client.force_login(client.user)
    return client


@pytest.fixture
def tiers():
    return TierFactory(name="BASIC"), TierFactory(name="PRO")


def buttons(client, tenant) -> list[str]:
    response = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    assert response.status_code == 200
    return [action.name for action in response.context["portal"]["actions"]]


def test_buttons_follow_the_status_and_read_only_staff_see_none(operator_client, client):
    active = TenantFactory(status=TenantStatus.ACTIVE)
    failed = TenantFactory(status=TenantStatus.UPDATE_FAILED)
    suspended = TenantFactory(status=TenantStatus.SUSPENDED)

    assert {"update_plan", "suspend"} <= set(buttons(operator_client, active))
    assert {"retry_update", "roll_back_update"} <= set(buttons(operator_client, failed))
    assert {"resume", "deprovision"} <= set(buttons(operator_client, suspended))
    assert "resume" not in buttons(operator_client, active)
    client.force_login(staff_user("read_only"))
    assert buttons(client, active) == []
    refused = client.post(reverse("admin:tenants_tenant_suspend", args=[active.pk]))
    assert refused.status_code == 403


def test_suspend_is_post_only_and_recorded_with_the_staff_user(operator_client, tiers):
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC")
    url = reverse("admin:tenants_tenant_suspend", args=[tenant.pk])

    assert operator_client.get(url).status_code == 405
    response = operator_client.post(url, follow=True)

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.SUSPENDED
    assert any("suspend" in str(message) for message in response.context["messages"])
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.STAFF_ACTION, actor_user=operator_client.user)


def test_update_plan_form_masks_secrets_and_keeps_them_when_left_masked(operator_client, tiers):
    # given an active tenant whose plan holds a secret
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC", plan=SECRET_PLAN)
    url = reverse("admin:tenants_tenant_update_plan", args=[tenant.pk])

    # when staff open the form, the secret is masked
    form = operator_client.post(url)
    assert form.status_code == 200
    assert "hunter22" not in form.content.decode()
    shown = json.loads(form.context["plan_text"])

    # and when they move it to PRO leaving the mask as it is
    shown.update({"id": "plan-pro", "tier": "PRO"})
    operator_client.post(url, {"plan": json.dumps(shown)}, follow=True)

    # then the tenant is on PRO with its secret intact
    tenant.refresh_from_db()
    assert (tenant.status, tenant.tier, tenant.plan["sizeConfig"]["DB_PASSWORD"]) == (
        TenantStatus.ACTIVE,
        "PRO",
        "hunter22",
    )


def test_an_unusable_plan_shows_the_form_again_with_why(operator_client, tiers):
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC")
    url = reverse("admin:tenants_tenant_update_plan", args=[tenant.pk])

    not_json = operator_client.post(url, {"plan": "{nope"})
    no_tier = operator_client.post(url, {"plan": json.dumps({"id": "x"})})
    unknown = operator_client.post(url, {"plan": json.dumps({"id": "x", "tier": "GOLD"})}, follow=True)

    assert "not JSON" in str(next(iter(not_json.context["messages"])))
    assert "tier" in str(next(iter(no_tier.context["messages"])))
    assert any("Unknown tier 'GOLD'" in str(message) for message in unknown.context["messages"])
    tenant.refresh_from_db()
    assert (tenant.status, tenant.pending_plan) == (TenantStatus.ACTIVE, {})
