"""The tier rules (``tenants/services/tiers.py``) hold through both edges that change tiers, the API and the
real admin pages (CSRF enforced): a tier keeps its name, a tier that tenants still use is not deleted, and a
refusal is an error shown to the user that changes nothing."""

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from rest_framework.test import APIClient

from orchestrator.tests.admin_pages import csrf_client, csrf_token, page_form, shown_messages
from orchestrator.tests.factories import SuperuserFactory
from tenants.models import TenantStatus, Tier
from tenants.services.tiers import RENAME_REFUSED
from tenants.tests.conftest import tier_item_of
from tenants.tests.factories import TenantFactory, TierFactory, TierVariableFactory

pytestmark = pytest.mark.django_db

IN_USE = "1 tenant(s) still use tier BASIC; deprovision them first."


@pytest.fixture
def superuser():
    return SuperuserFactory()


@pytest.fixture
def basic_in_use():
    """Tier BASIC, with a variable, used by an active tenant (whose retries and deprovisioning need it)."""
    tier = TierFactory(name="BASIC")
    TierVariableFactory(tier=tier, name="EKS_CLUSTER_NAME", value="basic-eks")
    TenantFactory(tier="BASIC", status=TenantStatus.ACTIVE)
    return tier


def tiers_now() -> list[tuple[str, int, str]]:
    return list(Tier.objects.order_by("name").values_list("name", "version", "provision_project"))


# --- the edges, as a superuser uses them --------------------------------------------------------------


def rename_through_the_api(user, tier: Tier, name: str) -> str:
    client = APIClient()
    client.force_authenticate(user)
    response = client.patch(f"/api/tiers/{tier.name}/", {"name": name}, format="json")
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]["name"][0]


def rename_in_the_admin(user, tier: Tier, name: str) -> str:
    client = csrf_client(user)
    url = reverse("admin:tenants_tier_change", args=[tier.pk])
    response = client.post(url, {**page_form(client.get(url)), "name": name})
    assert response.status_code == 200  # the form again, with its errors
    return response.context["adminform"].form.errors["name"][0]


def delete_through_the_api(user, *tiers: Tier) -> list[str]:
    client = APIClient()
    client.force_authenticate(user)
    refusals = []
    for tier in tiers:
        response = client.delete(f"/api/tiers/{tier.name}/")
        if response.status_code != 204:
            assert response.status_code == 409, response.content
            refusals.append(response.json()["error"]["message"])
    return refusals


def delete_on_the_admin_page(user, *tiers: Tier) -> list[str]:
    client = csrf_client(user)
    shown = []
    for tier in tiers:
        url = reverse("admin:tenants_tier_delete", args=[tier.pk])
        response = client.post(url, {"post": "yes", "csrfmiddlewaretoken": csrf_token(client.get(url))})
        assert response.status_code == 302
        shown += shown_messages(response)
    return shown


def delete_with_the_bulk_action(user, *tiers: Tier) -> list[str]:
    client = csrf_client(user)
    url = reverse("admin:tenants_tier_changelist")
    selected = {"action": "delete_selected", "_selected_action": [tier.pk for tier in tiers]}
    confirmation = client.post(url, {**selected, "csrfmiddlewaretoken": csrf_token(client.get(url))})
    response = client.post(url, {**selected, "post": "yes", "csrfmiddlewaretoken": csrf_token(confirmation)})
    assert response.status_code == 302
    return shown_messages(response)


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rename", [rename_through_the_api, rename_in_the_admin])
def test_a_tier_cannot_be_renamed(superuser, basic_in_use, rename):
    # given tier BASIC
    before = tiers_now()

    # when a superuser renames it
    reason = rename(superuser, basic_in_use, "PLATINUM")

    # then the refusal is shown and nothing changed
    assert reason == RENAME_REFUSED
    assert tiers_now() == before
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize("delete", [delete_through_the_api, delete_on_the_admin_page, delete_with_the_bulk_action])
def test_a_tier_in_use_cannot_be_deleted(superuser, basic_in_use, delete):
    # given tier BASIC used by an active tenant
    before = tiers_now()

    # when a superuser deletes it
    shown = delete(superuser, basic_in_use)

    # then the refusal is shown and the tier and its variables are still there
    assert shown == [IN_USE]
    assert tiers_now() == before
    assert list(basic_in_use.variables.values_list("name", flat=True)) == ["EKS_CLUSTER_NAME"]
    assert not LogEntry.objects.exists()


def test_a_bulk_delete_with_one_tier_in_use_deletes_none(superuser, basic_in_use):
    # given BASIC in use and SPARE used by no tenant
    TierFactory(name="SPARE")
    before = tiers_now()

    # when a superuser deletes both with the changelist action
    shown = delete_with_the_bulk_action(superuser, *Tier.objects.all())

    # then neither is deleted (one transaction) and the refusal is shown
    assert shown == [IN_USE]
    assert tiers_now() == before
    assert not LogEntry.objects.exists()


# --- writes through the admin go through the services too ---------------------------------------------


@pytest.mark.parametrize("delete", [delete_on_the_admin_page, delete_with_the_bulk_action])
def test_a_tier_no_active_tenant_uses_is_deleted_with_its_dynamodb_item(superuser, aws, run_commit_hooks, delete):
    # given tier OLD, mirrored to DynamoDB, used only by an inactive tenant
    with run_commit_hooks():
        tier = TierFactory(name="OLD")
    TenantFactory(tier="OLD", status=TenantStatus.INACTIVE)
    assert tier_item_of("OLD") is not None

    # when a superuser deletes it in the admin
    with run_commit_hooks():
        shown = delete(superuser, tier)

    # then it is gone from the database and from DynamoDB, and the deletion is logged
    assert not Tier.objects.exists()
    assert tier_item_of("OLD") is None
    assert any("deleted" in message for message in shown), shown
    assert LogEntry.objects.get().is_deletion()


def test_editing_a_tier_and_its_variables_in_the_admin_writes_through(superuser, aws, run_commit_hooks):
    # given tier GOLD with two variables, mirrored to DynamoDB
    with run_commit_hooks():
        tier = TierFactory(name="GOLD", provision_project="gold-provision")
        TierVariableFactory(tier=tier, name="KEEP", value="1")
        TierVariableFactory(tier=tier, name="DROP", value="2")
    client = csrf_client(superuser)
    url = reverse("admin:tenants_tier_change", args=[tier.pk])
    form = page_form(client.get(url))
    row = {form[f"variables-{index}-name"]: index for index in range(2)}

    # when a superuser changes the project and one variable, and deletes the other
    form.update(
        {
            "provision_project": "gold-provision-v2",
            f"variables-{row['KEEP']}-value": "10",
            f"variables-{row['DROP']}-DELETE": "on",
        }
    )
    with run_commit_hooks():
        response = client.post(url, form)

    # then the tier, its variables and its DynamoDB item say so, and the change is logged
    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert list(tier.variables.values_list("name", "value")) == [("KEEP", "10")]
    item = tier_item_of("GOLD")
    assert (item["jobName"], item["KEEP"], "DROP" in item) == ("gold-provision-v2", "10", False)
    assert item["version"] == Tier.objects.get().version
    assert "variables" in LogEntry.objects.get().get_change_message()


def test_the_operations_projects_are_set_kept_and_checked_through_the_api(superuser, aws, run_commit_hooks):
    client = APIClient()
    client.force_authenticate(superuser)
    body = {"name": "OPS", "provision_project": "p", "update_project": "u", "suspend_project": "s"}

    # a new tier with two operation projects; a PATCH of something else keeps them
    with run_commit_hooks():
        created = client.post("/api/tiers/", body, format="json")
        patched = client.patch("/api/tiers/OPS/", {"description": "ops"}, format="json")
    assert created.status_code == 201, created.content
    assert (patched.json()["update_project"], patched.json()["suspend_project"], patched.json()["resume_project"]) == (
        "u",
        "s",
        "",
    )
    assert tier_item_of("OPS")["suspendJobName"] == "s"

    # a LOCAL tier's operation project must be an allowed command, like its other projects
    local = client.patch(
        "/api/tiers/OPS/",
        {"allowed_builders": ["LOCAL"], "provision_project": "demo/build.sh provision", "update_project": "rm -rf /"},
        format="json",
    )
    assert local.status_code == 400
    assert "update_project" in local.json()["error"]["fields"]
    assert Tier.objects.get(name="OPS").update_project == "u"
