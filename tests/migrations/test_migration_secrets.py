"""The data steps of events/0007, tenants/0005 and webhooks/0004: rows written before hold no secret in plain
afterwards, read back as they were (sealed) or masked (records), and a second run changes nothing."""

import importlib
import json

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from events.models import OutboxEvent, ReceivedEvent
from events.tests.factories import OutboxEventFactory, ReceivedEventFactory
from orchestrator.redaction import MASK
from tenants.models import Build, Tenant, TenantHistory
from tenants.tests.factories import BuildFactory, TenantFactory
from webhooks.models import DeliveryAttempt, WebhookEndpoint
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db

MIGRATIONS = [
    ("events", "0008_seal_context_and_secrets_inside_json_strings"),
    ("tenants", "0005_seal_context_and_secrets_inside_json_strings"),
    ("webhooks", "0004_custom_headers_sealed"),
]
SECRETS = ("ctx-1", "inner-pw-2", "hdr-3", "result-token-4", "legacy-pw-5", "history-ctx-6", "payload-ctx-7")
TENANT_STRING = json.dumps({"id": "t1", "password": "inner-pw-2"}, separators=(",", ":"))
OVERRIDE = {"environmentOverride": {"secret": "sealed:v1:already", "context": "ctx-1", "tenant": TENANT_STRING}}
ENVIRONMENT = [
    {"name": "DB_PASSWORD", "value": "legacy-pw-5", "type": "PLAINTEXT"},
    {"name": "tenant", "value": TENANT_STRING, "type": "PLAINTEXT"},
    {"name": "API_TOKEN", "value": "tenants/api-token", "type": "SECRETS_MANAGER"},
]


def store_plain(model, pk, **columns) -> None:
    """Overwrite columns with plain JSON, as rows written before these migrations hold them."""
    assignments = ", ".join(f"{model._meta.get_field(name).column} = %s" for name in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET {assignments} WHERE id = %s",
            [*(json.dumps(value) for value in columns.values()), pk],
        )


def stored_texts() -> str:
    tables = {
        "events_receivedevent": ["envelope", "detail", "result"],
        "events_outboxevent": ["detail"],
        "tenants_tenant": ["builder_config"],
        "tenants_build": ["environment"],
        "tenants_tenanthistory": ["details"],
        "webhooks_webhookendpoint": ["custom_headers"],
        "webhooks_deliveryattempt": ["request_headers"],
        "webhooks_webhookdelivery": ["payload"],
    }
    texts = []
    with connection.cursor() as cursor:
        for table, columns in tables.items():
            cursor.execute(f"SELECT {', '.join(f'CAST({c} AS text)' for c in columns)} FROM {table} ORDER BY id")
            texts.append(cursor.fetchall())
    return json.dumps(texts)


def migrate_data() -> None:
    loader = MigrationLoader(connection)
    for app, name in MIGRATIONS:
        importlib.import_module(f"{app}.migrations.{name}").seal_existing(loader.project_state((app, name)).apps, None)


def test_rows_written_before_are_sealed_or_masked_and_read_back():
    # Given rows as they were stored before: secrets under context, inside JSON strings, in custom headers
    event = ReceivedEventFactory()
    envelope = {**event.envelope, "detail": {"builderConfig": {"config": OVERRIDE}}}
    store_plain(ReceivedEvent, event.pk, envelope=envelope, detail_override=None, result={"token": "result-token-4"})
    outbox = OutboxEventFactory()
    store_plain(OutboxEvent, outbox.pk, detail={"context": "ctx-1", "tenant": TENANT_STRING})
    tenant = TenantFactory()
    store_plain(Tenant, tenant.pk, builder_config={"type": "CODE_BUILD", "config": OVERRIDE})
    build = BuildFactory(tenant=tenant)
    store_plain(Build, build.pk, environment=ENVIRONMENT)
    entry = TenantHistory.objects.create(tenant=tenant, kind="note", summary="x")
    store_plain(TenantHistory, entry.pk, details={"detail": {"context": "history-ctx-6"}})
    endpoint = WebhookEndpointFactory(url="https://hooks.example.com/in")
    store_plain(WebhookEndpoint, endpoint.pk, custom_headers={"X-Custom-Auth": "hdr-3"})
    delivery = make_delivery(endpoint, payload={"context": "payload-ctx-7", "n": 1})
    attempt = DeliveryAttempt.objects.create(delivery=delivery, number=1)
    store_plain(
        DeliveryAttempt, attempt.pk, request_headers={"content-type": "application/json", "x-custom-auth": "hdr-3"}
    )
    assert all(secret in stored_texts() for secret in SECRETS)  # the set-up holds them in plain

    # When the data steps run with the models as they were then
    migrate_data()

    # Then no row holds one in plain
    after = stored_texts()
    assert [secret for secret in SECRETS if secret in after] == []
    # and what is read back in plain reads exactly as before (an already sealed value is left as it was)
    assert ReceivedEvent.objects.get(pk=event.pk).envelope == envelope
    assert OutboxEvent.objects.get(pk=outbox.pk).detail == {"context": "ctx-1", "tenant": TENANT_STRING}
    assert Tenant.objects.get(pk=tenant.pk).builder_config["config"] == OVERRIDE
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).custom_headers == {"X-Custom-Auth": "hdr-3"}
    # and records are masked
    environment = {v["name"]: v["value"] for v in Build.objects.get(pk=build.pk).environment}
    assert environment["DB_PASSWORD"] == MASK
    assert json.loads(environment["tenant"]) == {"id": "t1", "password": MASK}
    assert environment["API_TOKEN"] == "tenants/api-token"
    headers = DeliveryAttempt.objects.get(pk=attempt.pk).request_headers
    assert headers == {"content-type": "application/json", "x-custom-auth": MASK}
    assert ReceivedEvent.objects.get(pk=event.pk).result == {"token": MASK}

    # and running them again changes nothing
    migrate_data()
    assert stored_texts() == after
