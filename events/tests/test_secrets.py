"""Secrets in received and emitted events: sealed in the database (also inside strings that hold JSON, and
``context``), read back exactly, masked for every staff role in the API and the admin."""

import json

import pytest
from django.db import connection
from django.urls import reverse

from events.catalogue import DetailType
from events.models import OutboxEvent, ReceivedEvent
from events.tests.factories import OutboxEventFactory
from orchestrator.redaction import MASK
from orchestrator.tests.factories import staff_user

pytestmark = pytest.mark.django_db

STAFF_LEVELS = ["read_only", "operator", "superuser"]
SECRETS = ("example-hmac-secret-not-real", "example-client-secret-not-real", "3f0e6c1a-2b7d", "tenant-db-pw-9")


def deployment_body(sample) -> dict:
    """The sample TENANT_DEPLOYMENT whose ``tenant`` JSON string carries a secret too."""
    body = sample(DetailType.TENANT_DEPLOYMENT)
    tenant = json.loads(body["detail"]["tenant"])
    body["detail"]["tenant"] = json.dumps({**tenant, "dbPassword": "tenant-db-pw-9"}, separators=(",", ":"))
    return body


def column_texts(table: str, columns: list[str]) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(f'CAST({column} AS text)' for column in columns)} FROM {table}")
        return json.dumps(cursor.fetchall())


def test_a_received_event_is_stored_sealed_and_read_back_exactly(intake, sample, recorder):
    body = deployment_body(sample)

    assert intake(body).status_code == 202

    stored = column_texts("events_receivedevent", ["envelope", "detail"])
    assert [secret for secret in SECRETS if secret in stored] == []
    assert ReceivedEvent.objects.get().envelope == body  # the tenant string exactly as sent


@pytest.mark.parametrize("level", STAFF_LEVELS)
def test_event_and_outbox_pages_and_the_api_mask_secrets_for_every_role(intake, sample, recorder, client, level):
    body = deployment_body(sample)
    intake(body)
    event = ReceivedEvent.objects.get()
    entry = OutboxEventFactory(detail=body["detail"])
    client.force_login(staff_user(level))

    answers = [
        client.get(reverse("admin:events_receivedevent_change", args=[event.pk])),
        client.get(reverse("admin:events_outboxevent_change", args=[entry.pk])),
        client.get(reverse("event-detail", args=[event.pk])),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    shown = b"".join(answer.content for answer in answers).decode()
    assert [secret for secret in SECRETS if secret in shown] == []
    detail = answers[2].json()["detail"]
    assert (detail["secret"], detail["context"], detail["CLIENT_SECRET"]) == (MASK, MASK, MASK)
    assert detail["tenant"]["dbPassword"] == MASK  # validated: the JSON string became an object
    assert [secret for secret in SECRETS if secret in column_texts("events_outboxevent", ["detail"])] == []
    assert OutboxEvent.objects.get().detail == body["detail"]  # what EventBridge is sent: plain, exactly
