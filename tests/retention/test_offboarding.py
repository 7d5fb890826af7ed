"""Offboarding: a tenant's full record as JSON Lines (service, command, admin action) with every secret
masked, and the purge of deprovisioned tenants after TENANT_PURGE_AFTER_DAYS with the export kept (a
directory or S3 on moto), never touching tenants that still exist otherwise."""

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from events.models import EventAttempt, EventStatus, OutboxEvent, ReceivedEvent
from orchestrator.aws import aws_client
from orchestrator.errors import ConflictError
from orchestrator.retention import retention_run
from orchestrator.tests.factories import staff_user
from tenants.models import Build, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.offboarding import tenant_export, tenant_purge
from tenants.services.sync import tenant_sync, to_dynamodb
from tenants.tests.factories import BuildFactory, TenantFactory
from webhooks.models import DeliveryAttempt, DeliveryStep, Deployment, WebhookDelivery

pytestmark = pytest.mark.django_db

BUILDER_SECRET = "s3cr3t"  # tenants.tests.factories.TenantFactory's environment override
EVENT_SECRET = "event-hmac-secret-5d2f"
CALLBACK_SECRET = "callback-secret-77ab"
CLIENT_SECRET = "client-secret-19cc"
SECRETS = (BUILDER_SECRET, EVENT_SECRET, CALLBACK_SECRET, CLIENT_SECRET)
LONG_AGO = timezone.now() - timedelta(days=200)


def tenant_with_everything(*, status: str = TenantStatus.INACTIVE, changed_at=LONG_AGO) -> Tenant:
    """A tenant with a row in every table its record spans, secrets in each place they can be."""
    tenant = TenantFactory(status=status)
    event = ReceivedEvent.objects.create(
        event_id=f"evt-{tenant.pk}",
        detail_type="TENANT_DEPLOYMENT",
        source="test",
        account="123456789012",
        region="us-east-1",
        time=timezone.now(),
        envelope={"detail": {"secret": EVENT_SECRET, "tier": "BASIC"}},
        body_sha256="0" * 64,
        tenant_id=tenant.pk,
        status=EventStatus.PROCESSED,
        finished_at=changed_at,
    )
    EventAttempt.objects.create(event=event, number=1, outcome=EventAttempt.Outcome.SUCCEEDED)
    BuildFactory(tenant=tenant, event=event)
    deployment = Deployment.objects.create(event=event, tenant=tenant)
    delivery = WebhookDelivery.objects.create(
        dedupe_key=f"test:{tenant.pk}",
        deployment=deployment,
        tenant=tenant,
        event=event,
        step=DeliveryStep.APP_PLANE_BOOTSTRAP,
        url="http://127.0.0.1:9/bootstrap",
        signing_scheme="original",
        signing_secret=CALLBACK_SECRET,
        body=json.dumps({"CLIENT_SECRET": CLIENT_SECRET}),
        payload={"CLIENT_SECRET": CLIENT_SECRET},
    )
    DeliveryAttempt.objects.create(delivery=delivery, number=1, request_headers={"x-signature": "abc123"})
    OutboxEvent.objects.create(
        detail_type="TENANT_DEPLOYMENT", source="t", detail={"secret": EVENT_SECRET}, event_bus="b", tenant_id=tenant.pk
    )
    TenantHistory.objects.create(tenant=tenant, kind=HistoryKind.TRANSITION, summary=f"-> {status}")
    TenantHistory.objects.filter(tenant=tenant).update(at=changed_at)
    return tenant


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def kinds(lines: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in lines:
        counts[line["record"]] = counts.get(line["record"], 0) + 1
    return counts


def test_the_export_holds_every_part_of_the_record_with_every_secret_masked():
    tenant = tenant_with_everything()
    stream = io.StringIO()

    written = tenant_export(tenant=tenant, stream=stream, via="test")

    lines = records(stream.getvalue())
    assert written == len(lines)
    assert kinds(lines) == {
        "export": 1,
        "tenant": 1,
        "history": 1,
        "build": 1,
        "event": 1,
        "event_attempt": 1,
        "outbox_event": 1,
        "deployment": 1,
        "delivery": 1,
        "delivery_attempt": 1,
    }
    assert lines[0]["tenant_id"] == tenant.pk
    assert lines[1]["data"]["document"] == tenant.document
    assert lines[1]["data"]["builder_config"]["config"]["environmentOverride"]["secret"] == "********"
    for secret in SECRETS:
        assert secret not in stream.getvalue()
    assert TenantHistory.objects.filter(tenant=tenant, summary__startswith="Full record exported (test").exists()


def test_the_command_writes_the_record_to_a_file_or_standard_output(tmp_path):
    tenant = tenant_with_everything()
    path = tmp_path / "record.jsonl"

    call_command("tenant_export", tenant.key, "--output", str(path))
    stdout = io.StringIO()
    call_command("tenant_export", tenant.pk, stdout=stdout)

    assert kinds(records(path.read_text()))["delivery"] == 1
    assert kinds(records(stdout.getvalue()))["tenant"] == 1
    with pytest.raises(CommandError, match="No tenant"):
        call_command("tenant_export", "nobody")


def test_operators_download_the_record_from_the_admin_and_the_timeline_says_who(client):
    tenant = tenant_with_everything(status=TenantStatus.ACTIVE)
    staff = staff_user("operator")
    client.force_login(staff)

    response = client.post(
        reverse("admin:tenants_tenant_changelist"), {"action": "export_record", "_selected_action": [tenant.pk]}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert f'filename="tenant-{tenant.key}.jsonl"' in response["Content-Disposition"]
    assert kinds(records(response.content.decode()))["history"] == 1
    exported = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert exported.actor == staff.username


def test_deprovisioned_tenants_are_purged_after_the_period_with_their_export_kept(settings, tmp_path, aws):
    settings.TENANT_PURGE_AFTER_DAYS = 90
    settings.TENANT_EXPORT_DIR = str(tmp_path)
    gone = tenant_with_everything()
    recently_inactive = tenant_with_everything(changed_at=timezone.now() - timedelta(days=10))
    active = tenant_with_everything(status=TenantStatus.ACTIVE)
    for tenant in (gone, recently_inactive, active):
        tenant_sync(tenant_id=tenant.pk)
    history_before = {t.pk: TenantHistory.objects.filter(tenant=t).count() for t in (recently_inactive, active)}

    purged = retention_run()["deprovisioned tenants"]

    assert purged == 1
    assert set(Tenant.objects.values_list("pk", flat=True)) == {recently_inactive.pk, active.pk}
    for model, field in (
        (TenantHistory, "tenant_id"),
        (Build, "tenant_id"),
        (ReceivedEvent, "tenant_id"),
        (OutboxEvent, "tenant_id"),
        (Deployment, "tenant_id"),
        (WebhookDelivery, "tenant_id"),
        (DeliveryAttempt, "delivery__tenant_id"),
        (EventAttempt, "event__tenant_id"),
    ):
        assert not model.objects.filter(**{field: gone.pk}).exists(), model
    # the others keep their whole history
    assert {t: TenantHistory.objects.filter(tenant_id=t).count() for t in history_before} == history_before
    # the export was kept, whole
    [export] = list(Path(tmp_path).glob(f"{gone.key}-{gone.pk}-*.jsonl"))
    assert kinds(records(export.read_text()))["delivery_attempt"] == 1
    # and the tenant left the tenant data store
    table = aws_client("dynamodb")
    key = settings.DYNAMODB_TENANT_TABLE
    assert "Item" not in table.get_item(TableName=key, Key=to_dynamodb({"tenantId": gone.pk}))
    assert "Item" in table.get_item(TableName=key, Key=to_dynamodb({"tenantId": active.pk}))


def test_the_export_can_be_kept_in_s3(settings, aws):
    settings.TENANT_EXPORT_BUCKET = "orchestrator-exports"
    aws_client("s3").create_bucket(Bucket="orchestrator-exports")
    tenant = tenant_with_everything()

    location = tenant_purge(tenant=tenant)

    assert location.startswith(f"s3://orchestrator-exports/tenant-exports/{tenant.key}-{tenant.pk}-")
    key = location.removeprefix("s3://orchestrator-exports/")
    body = aws_client("s3").get_object(Bucket="orchestrator-exports", Key=key)["Body"].read().decode()
    assert kinds(records(body))["tenant"] == 1
    assert not Tenant.objects.filter(pk=tenant.pk).exists()


def test_nothing_is_deleted_when_the_export_cannot_be_stored(settings, tmp_path, aws):
    settings.TENANT_PURGE_AFTER_DAYS = 90
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    settings.TENANT_EXPORT_DIR = str(not_a_directory)
    tenant = tenant_with_everything()

    assert retention_run()["deprovisioned tenants"] == 0
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    assert TenantHistory.objects.filter(tenant=tenant).exists()


def test_only_deprovisioned_tenants_can_be_purged():
    tenant = tenant_with_everything(status=TenantStatus.ACTIVE)

    with pytest.raises(ConflictError):
        tenant_purge(tenant=tenant)
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    assert settings.TENANT_PURGE_AFTER_DAYS == 0  # off unless configured
