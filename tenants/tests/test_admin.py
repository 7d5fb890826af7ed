"""Admin: tenants read-only with POST-only staff actions recorded with the user; tiers editable and
written through to DynamoDB; builds and history read-only."""

import pytest
from django.urls import reverse

from orchestrator.tests.factories import signed_in_superuser
from tenants.models import Build, HistoryKind, TenantHistory, TenantStatus, Tier
from tenants.tests.conftest import (
    admin_tier_form,
    provisioning_failed,
    tier_item_of,
)
from tenants.tests.factories import BuildFactory, TenantFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    return signed_in_superuser(client)


@pytest.mark.parametrize("model", ["tenant", "tier", "build", "tenanthistory"])
def test_changelists_render(staff_client, model):
    # given a tenant with a build and a history entry
    tenant = TenantFactory()
    BuildFactory(tenant=tenant)
    TenantHistory.objects.create(tenant=tenant, kind=HistoryKind.NOTE, summary="hello")

    # when staff open the changelist
    response = staff_client.get(reverse(f"admin:tenants_{model}_changelist"))

    # then it renders
    assert response.status_code == 200


def test_tenant_changelist_filters_and_search(staff_client):
    # given an active tenant and a pending one
    TenantFactory(key="alpha", tier="GOLD", status=TenantStatus.ACTIVE)
    TenantFactory(key="beta", tier="BASIC")

    # when staff filter by status and search by key
    by_status = staff_client.get(reverse("admin:tenants_tenant_changelist"), {"status__exact": "ACTIVE"})
    by_search = staff_client.get(reverse("admin:tenants_tenant_changelist"), {"q": "beta"})

    # then each finds its tenant only
    assert [t.key for t in by_status.context["cl"].result_list] == ["alpha"]
    assert [t.key for t in by_search.context["cl"].result_list] == ["beta"]


def test_tenant_detail_masks_secrets(staff_client):
    # given a tenant whose builder config carries a secret
    tenant = TenantFactory()

    # when staff open its page
    response = staff_client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))

    # then the secret is not on it
    assert response.status_code == 200
    assert b"s3cr3t" not in response.content


def test_build_detail_shows_the_stored_local_outcome_with_secrets_masked(staff_client):
    build = BuildFactory(
        builder_type="LOCAL",
        outcome={
            "detail-type": "TENANT_PROVISIONING_SUCCESS",
            "detail": {"CLIENT_SECRET": "c1ient-s3cret", "TIER": "x"},
        },
        outcome_post_attempts=2,
        outcome_post_error="ConnectionError reaching http://127.0.0.1:8000/api/events/",
    )

    response = staff_client.get(reverse("admin:tenants_build_change", args=[build.pk]))

    assert response.status_code == 200
    assert b"TENANT_PROVISIONING_SUCCESS" in response.content
    assert b"ConnectionError reaching" in response.content
    assert b"c1ient-s3cret" not in response.content


def test_history_and_builds_are_read_only(staff_client):
    # given a history entry and a build
    entry = TenantHistory.objects.create(tenant=TenantFactory(), kind=HistoryKind.NOTE, summary="x")
    build = BuildFactory()

    # when a superuser tries to delete, add or change them, then it is forbidden and nothing changed
    assert staff_client.post(reverse("admin:tenants_tenanthistory_delete", args=[entry.pk])).status_code == 403
    assert staff_client.get(reverse("admin:tenants_tenanthistory_add")).status_code == 403
    assert (
        staff_client.post(reverse("admin:tenants_build_change", args=[build.pk]), {"status": "FAILED"}).status_code
        == 403
    )
    assert TenantHistory.objects.filter(pk=entry.pk).exists()


def test_retry_action_starts_a_new_build_recorded_with_the_staff_user(staff_client, codebuild_tier, send_event):
    # given a tenant whose provisioning failed
    tenant, _ = provisioning_failed(send_event)

    # when staff run "Retry provisioning" on it
    response = staff_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "retry_provisioning", "_selected_action": [tenant.pk]},
        follow=True,
    )

    # then a second build started, recorded with the staff user and reported
    assert response.status_code == 200
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISIONING
    assert Build.objects.count() == 2
    entry = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert entry.actor_user == staff_client.user
    messages = [str(m) for m in response.context["messages"]]
    assert any("provisioning attempt 2 started" in m for m in messages)


def test_refused_action_is_a_message_not_an_error(staff_client):
    # given a tenant still deploying
    tenant = TenantFactory(status=TenantStatus.DEPLOYING)

    # when staff try to deprovision it
    response = staff_client.post(
        reverse("admin:tenants_tenant_changelist"),
        {"action": "deprovision", "_selected_action": [tenant.pk]},
        follow=True,
    )

    # then the refusal is a message, recorded in its history, and its status is unchanged
    assert response.status_code == 200
    assert any("not an allowed transition" in str(m) for m in response.context["messages"])
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOYING
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.TRANSITION_REFUSED).exists()


def test_actions_need_a_post(staff_client):
    # given a tenant whose provisioning failed
    tenant = TenantFactory(status=TenantStatus.PROVISION_FAILED)

    # when the retry action is requested with a GET
    staff_client.get(
        reverse("admin:tenants_tenant_changelist"), {"action": "retry_provisioning", "_selected_action": [tenant.pk]}
    )

    # then nothing happened
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISION_FAILED


def test_saving_a_tier_with_its_variables_writes_through(staff_client, aws, run_commit_hooks):
    # given the add form filled in with two variables
    data = admin_tier_form(
        name="GOLD",
        provision_project="gold-provision",
        variables=(("EKS_CLUSTER_NAME", "gold-eks", "PLAINTEXT"), ("DB_PASSWORD", "/gold/db", "PARAMETER_STORE")),
    )

    # when a superuser saves it
    with run_commit_hooks():
        response = staff_client.post(reverse("admin:tenants_tier_add"), data)

    # then the tier and its variables are in DynamoDB at the tier's version
    assert response.status_code == 302, response.context["errors"] if response.context else response
    tier = Tier.objects.get(name="GOLD")
    item = tier_item_of("GOLD")
    assert item["jobName"] == "gold-provision"
    assert item["allowedBuilders"] == ["CODE_BUILD"]
    assert (item["EKS_CLUSTER_NAME"], item["DB_PASSWORD"]) == ("gold-eks", "/gold/db")
    assert item["version"] == tier.version


def test_tier_variable_with_an_invalid_name_is_refused(staff_client):
    # given the add form with a variable name a build cannot receive
    data = admin_tier_form(name="GOLD", provision_project="gold-provision", variables=(("bad-name", "x", "PLAINTEXT"),))

    # when a superuser saves it
    response = staff_client.post(reverse("admin:tenants_tier_add"), data)

    # then the form comes back and no tier was created
    assert response.status_code == 200
    assert not Tier.objects.exists()


def test_a_new_tier_offers_codebuild_alone_and_an_existing_one_shows_its_builders(staff_client):
    tier = TierFactory(name="DEMO", allowed_builders=["LOCAL"])

    add_form = staff_client.get(reverse("admin:tenants_tier_add")).context["adminform"].form
    change_form = staff_client.get(reverse("admin:tenants_tier_change", args=[tier.pk])).context["adminform"].form

    assert add_form["allowed_builders"].value() == ["CODE_BUILD"]
    assert change_form["allowed_builders"].value() == ["LOCAL"]


@pytest.mark.parametrize(
    ("stored", "rendered"),
    [
        ("https://logs.example/build/1", True),
        ("javascript:alert(document.cookie)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("http://logs.example/build/1", False),
    ],
)
def test_only_https_logs_links_are_rendered(staff_client, stored, rendered):
    # given a build whose link was stored before links were checked on the way in
    build = BuildFactory(logs_url=stored)
    TenantHistory.objects.create(
        tenant=build.tenant, kind=HistoryKind.BUILD, summary="build", ref_type="build", ref_id=str(build.pk)
    )
    pages = {
        "build list": reverse("admin:tenants_build_changelist"),
        "build": reverse("admin:tenants_build_change", args=[build.pk]),
        "tenant timeline": reverse("admin:tenants_tenant_change", args=[build.tenant_id]),
    }

    for name, url in pages.items():
        page = staff_client.get(url).content.decode()
        # then the link is there only when it is https, and a refused value is never an href
        assert (f'href="{stored}"' in page) is rendered, name
        assert "logs ↗" in page if rendered else "logs ↗" not in page, name
