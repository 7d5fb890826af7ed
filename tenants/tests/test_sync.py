"""The DynamoDB mirror: items written after commit, conditional on version (a stale write never wins),
DynamoDB down delays but never loses a change, drift reported and repaired, tiers mirrored and imported."""

import json
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from devstack.processes import free_port
from orchestrator.aws import aws_client, reset_clients
from orchestrator.sealing import unseal
from orchestrator.tests.factories import StaffFactory
from tenants.models import Tenant, TenantStatus, Tier, TierVariable, VariableType
from tenants.services.lifecycle import tenant_transition
from tenants.services.sync import (
    SyncUnavailable,
    dynamodb_drift,
    dynamodb_repair,
    tenant_item,
    tenant_resync,
    tenant_sync,
    tenant_sync_schedule,
    tier_sync,
    to_dynamodb,
)
from tenants.services.tiers import tier_upsert
from tenants.tasks import sync_pending, sync_tenant
from tenants.tests.conftest import tenant_item_of, tier_item_of
from tenants.tests.factories import TenantFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def dynamodb_down():
    """DynamoDB's endpoint pointing at a closed port (and back afterwards)."""
    endpoints = {**settings.AWS_SERVICE_ENDPOINT_URLS, "dynamodb": f"http://127.0.0.1:{free_port()}"}
    with override_settings(AWS_SERVICE_ENDPOINT_URLS=endpoints, AWS_CONNECT_TIMEOUT=0.5):
        reset_clients()
        yield
    reset_clients()


def test_committed_tenant_change_is_written_with_the_original_layout(aws, run_commit_hooks):
    with run_commit_hooks():
        tenant = TenantFactory(app_config={"preferredSubdomain": "x"}, plan={"tier": "BASIC", "sizeConfig": {"N": 1.5}})
        tenant_sync_schedule(tenant_id=tenant.pk)  # what every tenants service does after a change

    item = tenant_item_of(tenant.pk)
    assert unseal(item) == {  # secrets sealed (see the tests below), everything else as the original wrote it
        "tenantId": tenant.pk,
        "tenant": tenant.document,
        "planConfig": {"tier": "BASIC", "sizeConfig": {"N": Decimal("1.5")}},
        "builderConfig": tenant.builder_config,
        "appConfig": {"preferredSubdomain": "x"},
        "status": "PENDING_PROVISION",
        "version": 1,
    }
    tenant.refresh_from_db()
    assert tenant.synced_version == 1


def test_nothing_is_written_before_commit(aws, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tenant = TenantFactory()
        tenant_transition(tenant=tenant, to=TenantStatus.PROVISIONING)

    assert tenant_item_of(tenant.pk) is None
    assert len(callbacks) == 1  # one write per tenant and transaction, however many changes
    callbacks[0]()
    assert tenant_item_of(tenant.pk)["status"] == "PROVISIONING"


def test_stale_write_never_overwrites_a_newer_item(aws, run_commit_hooks):
    # Given DynamoDB already holds version 2 (PROVISIONING)
    with run_commit_hooks():
        tenant = TenantFactory()
    stale = tenant_item(tenant)  # version 1, PENDING_PROVISION
    with run_commit_hooks():
        tenant_transition(tenant=tenant, to=TenantStatus.PROVISIONING)
    assert tenant_item_of(tenant.pk)["version"] == 2

    # When a late writer (an old task) tries to put version 1 through the same conditional write
    from tenants.services import sync

    written = sync._conditional_put(table=settings.DYNAMODB_TENANT_TABLE, key="tenantId", item=stale)

    # then it is refused and the newer item stays
    assert written is False
    item = tenant_item_of(tenant.pk)
    assert (item["version"], item["status"]) == (2, "PROVISIONING")
    # and re-running the current write is a harmless no-op
    assert tenant_sync(tenant_id=tenant.pk) == "stale"


def test_dynamodb_down_delays_the_sync_and_loses_nothing(aws, run_commit_hooks, dynamodb_down):
    tenant = TenantFactory()
    sync_tenant.max_retries, retries = 0, sync_tenant.max_retries
    try:
        with run_commit_hooks():  # the task fails (and would retry with backoff); the change is committed
            tenant_transition(tenant=tenant, to=TenantStatus.PROVISIONING)
        with pytest.raises(SyncUnavailable):
            tenant_sync(tenant_id=tenant.pk)
    finally:
        sync_tenant.max_retries = retries
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISIONING
    assert tenant.synced_version < tenant.version


def test_pending_changes_are_written_by_the_sweep_once_dynamodb_is_back(aws, run_commit_hooks):
    tenant = TenantFactory()  # its write never ran (as if the broker or DynamoDB had been down)
    tier = TierFactory()
    assert tenant_item_of(tenant.pk) is None

    with run_commit_hooks():
        counts = sync_pending.delay().get()

    assert counts == {"tenants": 1, "tiers": 1}
    assert tenant_item_of(tenant.pk)["version"] == tenant.version
    assert tier_item_of(tier.name)["jobName"] == tier.provision_project
    assert sync_pending.delay().get() == {"tenants": 0, "tiers": 0}


def test_sync_task_is_declared_to_retry_with_backoff():
    assert SyncUnavailable in sync_tenant.autoretry_for
    assert sync_tenant.retry_backoff
    assert sync_tenant.retry_jitter
    assert sync_tenant.acks_late


def test_tier_item_layout_and_write_through(aws, run_commit_hooks):
    with run_commit_hooks():
        tier, _ = tier_upsert(
            name="BASIC",
            provision_project="basic-provision",
            deprovision_project="basic-deprovision",
            variables={
                "EKS_CLUSTER_NAME": ("demo-eks", VariableType.PLAINTEXT),
                "DB_PASSWORD": ("/app/db", VariableType.PARAMETER_STORE),
            },
        )

    assert tier_item_of("BASIC") == {
        "tier": "BASIC",
        "jobName": "basic-provision",
        "deprovisionJobName": "basic-deprovision",
        "version": tier.version,
        "allowedBuilders": ["CODE_BUILD"],  # an attribute the original's readers ignore
        "EKS_CLUSTER_NAME": "demo-eks",
        "DB_PASSWORD": "/app/db",  # the reference (not sealed: no secret), never the secret
    }

    with run_commit_hooks():  # editing a variable (as the admin inline does) writes through
        variable = TierVariable.objects.get(tier=tier, name="EKS_CLUSTER_NAME")
        variable.value = "other-eks"
        variable.save()
    assert tier_item_of("BASIC")["EKS_CLUSTER_NAME"] == "other-eks"

    with run_commit_hooks():  # a rename moves the item
        tier = Tier.objects.get(pk=tier.pk)
        tier.name = "STARTER"
        tier.save()
    assert tier_item_of("BASIC") is None
    assert tier_item_of("STARTER")["jobName"] == "basic-provision"

    with run_commit_hooks():
        tier.delete()
    assert tier_item_of("STARTER") is None


def test_drift_check_reports_and_repair_fixes(aws, run_commit_hooks):
    with run_commit_hooks():
        in_sync = TenantFactory()
        changed = TenantFactory()
        for tenant in (in_sync, changed):
            tenant_sync_schedule(tenant_id=tenant.pk)
        TierFactory(name="BASIC")
    missing = TenantFactory()  # never written
    client = aws_client("dynamodb")
    client.put_item(
        TableName=settings.DYNAMODB_TENANT_TABLE,
        Item=to_dynamodb({**tenant_item(changed), "status": "ACTIVE"}),  # edited behind Django's back
    )
    client.put_item(TableName=settings.DYNAMODB_TENANT_TABLE, Item=to_dynamodb({"tenantId": "ghost", "version": 1}))
    client.put_item(TableName=settings.DYNAMODB_TIER_TABLE, Item=to_dynamodb({"tier": "OLD", "jobName": "x"}))

    tenants, tiers = dynamodb_drift()
    assert tenants.missing == [missing.pk]
    assert tenants.extra == ["ghost"]
    assert tenants.different == {changed.pk: ["status"]}
    assert (tiers.missing, tiers.extra, tiers.different) == ([], ["OLD"], {})

    with pytest.raises(CommandError, match="differs from Django in 4 item"):
        call_command("dynamodb_sync", "--check")

    call_command("dynamodb_sync", "--repair")

    assert all(drift.clean for drift in dynamodb_drift())
    call_command("dynamodb_sync", "--check")  # exit status 0 now
    assert tenant_item_of(changed.pk)["status"] == "PENDING_PROVISION"
    assert tenant_item_of(in_sync.pk)["version"] == 1
    assert tenant_item_of("ghost") is None


def test_check_command_reports_unreachable_dynamodb(aws, dynamodb_down):
    with pytest.raises(CommandError, match="unreachable"):
        call_command("dynamodb_sync", "--check")


def test_import_tiers_loads_the_original_table_once(aws, capsys):
    client = aws_client("dynamodb")
    client.put_item(
        TableName=settings.DYNAMODB_TIER_TABLE,
        Item={
            "tier": {"S": "BASIC"},
            "jobName": {"S": "ns-env-basic-codebuild-project"},
            "EKS_CLUSTER_NAME": {"S": "ns-env-eks-cluster"},
            "ACCESS_TOKEN_EXPIRATION": {"N": "3600"},
        },
    )
    client.put_item(
        TableName=settings.DYNAMODB_TIER_TABLE,
        Item={"tier": {"S": "PREMIUM"}, "jobName": {"S": "premium"}, "bad-name": {"S": "x"}},
    )
    client.put_item(  # an item this service wrote: its builders come back, and a LOCAL tier is checked
        TableName=settings.DYNAMODB_TIER_TABLE,
        Item={
            "tier": {"S": "DEMO"},
            "jobName": {"S": "demo/build.sh provision"},
            "allowedBuilders": {"L": [{"S": "LOCAL"}]},
            "NAMESPACE": {"S": "demo"},
        },
    )
    client.put_item(
        TableName=settings.DYNAMODB_TIER_TABLE,
        Item={"tier": {"S": "ROGUE"}, "jobName": {"S": "manage.py shell"}, "allowedBuilders": {"L": [{"S": "LOCAL"}]}},
    )

    with pytest.raises(CommandError, match="2 tier"):
        call_command("import_tiers")

    tier = Tier.objects.get(name="BASIC")
    assert tier.provision_project == "ns-env-basic-codebuild-project"
    assert tier.allowed_builders == ["CODE_BUILD"]
    assert Tier.objects.get(name="DEMO").allowed_builders == ["LOCAL"]
    assert "ROGUE: Tier ROGUE is invalid: A LOCAL tier may only run a command of LOCAL_BUILD_COMMANDS" in (
        capsys.readouterr().err
    )
    assert not Tier.objects.filter(name="ROGUE").exists()
    assert dict(tier.variables.values_list("name", "value")) == {
        "ACCESS_TOKEN_EXPIRATION": "3600",
        "EKS_CLUSTER_NAME": "ns-env-eks-cluster",
    }
    assert not Tier.objects.filter(name="PREMIUM").exists()
    with pytest.raises(CommandError):
        call_command("import_tiers")
    assert "skipped: 2 (BASIC, DEMO)" in capsys.readouterr().out
    assert Tier.objects.get(name="BASIC").version == tier.version


def test_seed_demo_is_idempotent_and_keeps_staff_edits(aws, run_commit_hooks):
    with run_commit_hooks():
        call_command("seed_demo")
    basic = Tier.objects.get(name="BASIC")
    assert basic.provision_project == "demo/build.sh provision"
    assert basic.deprovision_project == "demo/build.sh deprovision"
    assert basic.allowed_builders == ["LOCAL"]
    TierVariable.objects.filter(tier=basic, name="NAMESPACE").update(value="edited")
    versions = dict(Tier.objects.values_list("name", "version"))

    with run_commit_hooks():
        call_command("seed_demo")

    assert sorted(Tier.objects.values_list("name", flat=True)) == ["BASIC", "PREMIUM", "STANDARD"]
    assert dict(Tier.objects.values_list("name", "version")) == versions
    assert TierVariable.objects.get(tier=basic, name="NAMESPACE").value == "edited"
    assert tier_item_of("PREMIUM")["BUILD_SECONDS"] == "3"


def test_staff_resync_rewrites_the_item_and_is_recorded(aws, run_commit_hooks):
    with run_commit_hooks():
        tenant = TenantFactory()
    aws_client("dynamodb").delete_item(TableName=settings.DYNAMODB_TENANT_TABLE, Key={"tenantId": {"S": tenant.pk}})
    staff = StaffFactory()

    with run_commit_hooks():
        message = tenant_resync(tenant=tenant, actor_user=staff)

    assert "version 2" in message
    assert tenant_item_of(tenant.pk)["version"] == 2
    assert tenant.history.get().actor_user == staff


def test_tier_sync_of_an_unknown_name_deletes_its_item(aws):
    aws_client("dynamodb").put_item(TableName=settings.DYNAMODB_TIER_TABLE, Item={"tier": {"S": "GONE"}})

    assert tier_sync(name="GONE") == "deleted"
    assert tier_item_of("GONE") is None
    assert not Tenant.objects.exists()


def test_documents_dynamodb_cannot_store_as_is_are_cleaned_and_not_drift(aws, run_commit_hooks):
    # DynamoDB (and DynamoDB Local) refuse empty attribute names and floats; empty values are fine
    document = {"key": "odd", "": "dropped", "nested": {"": 1, "ok": 2.25}, "blank": ""}
    with run_commit_hooks():
        tenant = TenantFactory(key="odd", document=document)
        tenant_sync_schedule(tenant_id=tenant.pk)

    item = tenant_item_of(tenant.pk)
    assert item["tenant"] == {"key": "odd", "nested": {"ok": Decimal("2.25")}, "blank": "", "id": tenant.pk}
    assert all(drift.clean for drift in dynamodb_drift())


# --- Secrets in the mirror (DYNAMODB_MIRROR_SECRETS) ---------------------------------------------------

MIRROR_SECRETS = ("db-pw-1", "client-secret-2", "hmac-3", "ctx-4", "doc-token-5", "tier-pw-6")


def _tenant_with_secrets() -> Tenant:
    document = {"key": "acme", "name": "Acme", "apiToken": "doc-token-5"}
    tenant = TenantFactory(
        document=document,
        plan={"id": "plan-basic", "tier": "BASIC", "sizeConfig": {"MAX_USERS": "50", "DB_PASSWORD": "db-pw-1"}},
        builder_config={
            "type": "CODE_BUILD",
            "config": {
                "environmentOverride": {
                    "secret": "hmac-3",
                    "context": "ctx-4",
                    "MAX_USERS": "50",
                    # the tenant document as a JSON string, as the control plane's producer sends it
                    "tenant": json.dumps(document, separators=(",", ":")),
                }
            },
        },
        app_config={"preferredSubdomain": "acme", "clientSecret": "client-secret-2"},
    )
    tenant_sync_schedule(tenant_id=tenant.pk)  # what every tenants service does after a change
    return tenant


def _keys(value: Any, path: str = "") -> set[str]:
    """Every key path of a JSON-like value, also inside strings that hold JSON objects."""
    if isinstance(value, str) and value.startswith("{"):
        value = json.loads(value)
    if not isinstance(value, dict):
        return set()
    return {f"{path}.{key}" for key in value} | {k for key, item in value.items() for k in _keys(item, f"{path}.{key}")}


def test_the_mirror_seals_secrets_and_keeps_the_original_layout(aws, run_commit_hooks, settings):
    # Given the default mode and a tenant and tier carrying secrets (nested, and inside the tenant JSON string)
    assert settings.DYNAMODB_MIRROR_SECRETS == "sealed"
    with run_commit_hooks():
        tenant = _tenant_with_secrets()
        tier_upsert(
            name="BASIC", provision_project="p", variables={"DB_PASSWORD": ("tier-pw-6", VariableType.PLAINTEXT)}
        )

    # When the data plane reads the items (boto3 from moto_server)
    item, tier = tenant_item_of(tenant.pk), tier_item_of("BASIC")

    # Then no secret is there in plain, every key of the original layout is, and the orchestrator opens them
    text = json.dumps([item, tier], default=str)
    assert not [secret for secret in MIRROR_SECRETS if secret in text]
    assert item["planConfig"]["sizeConfig"]["DB_PASSWORD"].startswith("sealed:v1:")
    assert item["planConfig"]["sizeConfig"]["MAX_USERS"] == "50"
    assert _keys(item) == _keys(unseal(item))
    override = unseal(item)["builderConfig"]["config"]["environmentOverride"]
    assert override == tenant.builder_config["config"]["environmentOverride"]  # the tenant string exactly
    assert unseal(tier)["DB_PASSWORD"] == "tier-pw-6"
    # and a fresh seal on every write is no drift
    assert all(drift.clean for drift in dynamodb_drift())


def test_the_mirror_can_leave_secrets_out_instead(aws, run_commit_hooks, settings):
    # Given items written sealed (the default)
    with run_commit_hooks():
        tenant = _tenant_with_secrets()
        tier_upsert(
            name="BASIC", provision_project="p", variables={"DB_PASSWORD": ("tier-pw-6", VariableType.PLAINTEXT)}
        )

    # When the mode becomes omit: the sealed items are drift, and the repair rewrites them
    settings.DYNAMODB_MIRROR_SECRETS = "omit"
    assert {name for drift in dynamodb_drift() for name in drift.different} == {tenant.pk, "BASIC"}
    assert dynamodb_repair(dynamodb_drift()) == {"written": 2, "deleted": 0}

    # Then the items hold no secret at all, sealed or not, and keep every other key and value
    item, tier = tenant_item_of(tenant.pk), tier_item_of("BASIC")

    text = json.dumps([item, tier], default=str)
    assert not [secret for secret in MIRROR_SECRETS if secret in text]
    assert "sealed:v1" not in text
    assert set(item) == {"tenantId", "tenant", "planConfig", "builderConfig", "appConfig", "status", "version"}
    assert item["planConfig"]["sizeConfig"] == {"MAX_USERS": "50"}
    assert item["appConfig"] == {"preferredSubdomain": "acme"}
    override = item["builderConfig"]["config"]["environmentOverride"]
    assert set(override) == {"MAX_USERS", "tenant"}
    assert json.loads(override["tenant"]) == {"key": "acme", "name": "Acme"}
    assert set(tier) == {"tier", "jobName", "allowedBuilders", "version"}
    assert all(drift.clean for drift in dynamodb_drift())


def test_a_pending_update_is_mirrored_sealed_beside_the_current_plan(aws, run_commit_hooks):
    # Given an active tenant whose update to a plan with a secret is pending, on a tier with operation projects
    with run_commit_hooks():
        tier_upsert(name="BASIC", provision_project="p", update_project="u", resume_project="r")
        tenant = TenantFactory(status=TenantStatus.ACTIVE, plan={"id": "basic", "tier": "BASIC"}, tier="BASIC")
        tenant.pending_plan = {"id": "pro", "tier": "PRO", "sizeConfig": {"DB_PASSWORD": "pending-pw-7"}}
        tenant.pending_tier = "PRO"
        tenant.save()
        tenant_transition(tenant=tenant, to=TenantStatus.UPDATING)

    # When the data plane reads the items
    item, tier = tenant_item_of(tenant.pk), tier_item_of("BASIC")

    # Then the current plan stays planConfig, the pending one is beside it with its secret sealed
    assert (item["status"], item["planConfig"]["id"], item["version"]) == ("UPDATING", "basic", tenant.version)
    assert (item["pendingPlanConfig"]["id"], item["pendingTier"]) == ("pro", "PRO")
    assert "pending-pw-7" not in json.dumps(item, default=str)
    assert unseal(item)["pendingPlanConfig"]["sizeConfig"]["DB_PASSWORD"] == "pending-pw-7"
    # and the tier item names the projects it has (and only those)
    assert (tier["jobName"], tier["updateJobName"], tier["resumeJobName"]) == ("p", "u", "r")
    assert "suspendJobName" not in tier
    assert all(drift.clean for drift in dynamodb_drift())
