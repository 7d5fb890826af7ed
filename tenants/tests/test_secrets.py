"""A tenant's secrets: plain on the wire to the builder, sealed or masked in every row, masked for every
staff role in the API and the admin (also inside the ``tenant`` JSON-string build variable)."""

import json

import pytest
from django.db import connection
from django.urls import reverse

from events.catalogue import DetailType
from orchestrator.redaction import MASK
from orchestrator.tests.factories import LEVELS, staff_user
from tenants.models import Build, Tenant
from tenants.tests.conftest import envelope, provisioning_detail
from tenants.tests.factories import TierFactory, TierVariableFactory

pytestmark = pytest.mark.django_db

STAFF_LEVELS = [level for level in LEVELS if level != "anonymous"]
# Every secret of the provisioning request below, each under a secret-named key somewhere.
SECRETS = {
    "hmac-secret-value": "environmentOverride.secret",
    "ctx-123": "environmentOverride.context",
    "size-db-pw-1": "planConfig.sizeConfig.DB_MASTER_PASSWORD",
    "app-client-secret-2": "appConfig.clientSecret",
    "doc-token-3": "tenant.apiToken, and inside the tenant JSON-string variable",
}


def secret_detail() -> dict:
    detail = provisioning_detail(size={"MAX_USERS": 50, "DB_MASTER_PASSWORD": "size-db-pw-1"})
    detail["tenant"]["apiToken"] = "doc-token-3"
    detail["builderConfig"]["config"]["environmentOverride"]["tenant"] = json.dumps(
        detail["tenant"], separators=(",", ":")
    )
    detail["appConfig"]["clientSecret"] = "app-client-secret-2"
    return detail


def plain_secrets_in(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def stored_text(table: str, columns: list[str]) -> str:
    """The columns of every row as the database holds them (raw SQL: no model field opens anything)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(f'CAST({column} AS text)' for column in columns)} FROM {table}")
        return json.dumps(cursor.fetchall())


@pytest.fixture
def provisioned(codebuild_tier, send_event, codebuild_calls):
    """A tenant provisioned through the intake on moto's CodeBuild: (tenant, its build, StartBuild bodies)."""
    detail = secret_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    starts = [body for operation, body in codebuild_calls if operation == "StartBuild"]
    return tenant, Build.objects.get(tenant=tenant), starts


def test_the_builder_gets_every_secret_in_plain(provisioned):
    tenant, _build, starts = provisioned

    sent = {variable["name"]: variable["value"] for variable in starts[0]["environmentVariablesOverride"]}

    assert sent["secret"] == "hmac-secret-value"
    assert sent["context"] == "ctx-123"
    assert sent["DB_MASTER_PASSWORD"] == "size-db-pw-1"
    assert sent["tenant"] == json.dumps(secret_detail()["tenant"] | {"id": tenant.pk}, separators=(",", ":"))
    assert json.loads(sent["tenant"])["apiToken"] == "doc-token-3"


def test_no_row_holds_a_secret_in_plain(provisioned):
    tenant, build, _starts = provisioned

    rows = {
        "tenants": stored_text("tenants_tenant", ["document", "plan", "builder_config", "app_config"]),
        "builds": stored_text("tenants_build", ["environment"]),
        "events": stored_text("events_receivedevent", ["envelope", "detail", "result"]),
        "history": stored_text("tenants_tenanthistory", ["details"]),
    }

    assert {name: plain_secrets_in(text) for name, text in rows.items()} == {name: [] for name in rows}
    # and the code still reads them in plain (the build's copy is a record: masked, not sealed)
    assert tenant.builder_config["config"]["environmentOverride"]["context"] == "ctx-123"
    assert Build.objects.values_list("environment", flat=True).get(pk=build.pk) == build.environment
    stored_tenant = next(v["value"] for v in build.environment if v["name"] == "tenant")
    assert json.loads(stored_tenant)["apiToken"] == MASK


@pytest.mark.parametrize("level", STAFF_LEVELS)
def test_the_api_masks_every_secret_for_every_staff_role(provisioned, client, level):
    tenant, build, _starts = provisioned
    client.force_login(staff_user(level))

    answers = [
        client.get(reverse("tenant-detail", args=[tenant.pk])),
        client.get(reverse("build-detail", args=[build.pk])),
        client.get(reverse("tenant-history", args=[tenant.pk])),
        client.get(reverse("tenants")),
    ]

    assert [answer.status_code for answer in answers] == [200] * len(answers)
    assert plain_secrets_in(b"".join(answer.content for answer in answers).decode()) == []
    detail = answers[0].json()
    assert detail["plan"]["sizeConfig"] == {"MAX_USERS": 50, "DB_MASTER_PASSWORD": MASK}
    assert detail["app_config"]["clientSecret"] == MASK
    override = detail["builder_config"]["config"]["environmentOverride"]
    assert (override["secret"], override["context"], json.loads(override["tenant"])["apiToken"]) == (MASK,) * 3


@pytest.mark.parametrize("level", STAFF_LEVELS)
def test_admin_pages_mask_every_secret_for_every_staff_role(provisioned, client, level):
    tenant, build, _starts = provisioned
    event = build.event
    client.force_login(staff_user(level))

    pages = [
        client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk])),
        client.get(reverse("admin:tenants_build_change", args=[build.pk])),
        client.get(reverse("admin:events_receivedevent_change", args=[event.pk])),
        client.get(reverse("admin:tenants_tenant_changelist")),
        client.get(reverse("admin:tenants_build_changelist")),
        client.get(reverse("admin:tenants_tenanthistory_changelist")),
    ]

    assert [page.status_code for page in pages] == [200] * len(pages)
    assert plain_secrets_in(b"".join(page.content for page in pages).decode()) == []
    assert MASK in pages[0].content.decode()


@pytest.mark.parametrize("level", STAFF_LEVELS)
def test_plain_text_tier_secrets_are_masked_in_the_admin_for_every_role(client, level):
    tier = TierFactory(name="GOLD")
    password = TierVariableFactory(tier=tier, name="DB_PASSWORD", value="tier-pw-8")
    TierVariableFactory(tier=tier, name="EKS_CLUSTER_NAME", value="gold-eks")
    client.force_login(staff_user(level))

    page = client.get(reverse("admin:tenants_tier_change", args=[tier.pk])).content.decode()

    assert "tier-pw-8" not in page
    assert MASK in page
    assert "gold-eks" in page
    if level != "superuser":
        return
    # a superuser saving the form as shown keeps the stored value (the mask is write-only)
    response = client.post(
        reverse("admin:tenants_tier_change", args=[tier.pk]),
        {
            "name": "GOLD",
            "provision_project": tier.provision_project,
            "deprovision_project": tier.deprovision_project,
            "description": "changed",
            "allowed_builders": ["CODE_BUILD"],
            "variables-TOTAL_FORMS": "1",
            "variables-INITIAL_FORMS": "1",
            "variables-MIN_NUM_FORMS": "0",
            "variables-MAX_NUM_FORMS": "1000",
            "variables-0-id": password.pk,
            "variables-0-tier": tier.pk,
            "variables-0-name": "DB_PASSWORD",
            "variables-0-value": MASK,
            "variables-0-type": "PLAINTEXT",
        },
    )
    assert response.status_code == 302, response.content
    password.refresh_from_db()
    assert password.value == "tier-pw-8"
    tier.refresh_from_db()
    assert tier.description == "changed"
