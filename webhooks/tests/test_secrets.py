"""Secrets never reach logs, stored attempts, history or the payload copies shown to staff."""

import json
import logging

import pytest
from django.db import connection
from django.urls import reverse

from devstack.receivers import Reply
from orchestrator.redaction import MASK
from orchestrator.tests.factories import staff_user
from tenants.models import TenantHistory
from webhooks.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services.attempts import delivery_attempt
from webhooks.tests.factories import (
    CALLBACK_CONTEXT,
    CALLBACK_SECRET,
    CLIENT_SECRET,
    WebhookEndpointFactory,
    make_delivery,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]


def test_secrets_are_absent_from_logs_and_stored_records(receiver, run_deployment, caplog, capfd, fast_retries):
    # given a subscriber, and an app plane that first fails, echoing the secrets it got in its answer
    endpoint = WebhookEndpointFactory(url=receiver.url("/subscriber"))
    endpoint_secret = endpoint.secret.reveal()
    echoed = json.dumps({"received": {"secret": CALLBACK_SECRET, "clientSecret": CLIENT_SECRET}})
    receiver.script("/bootstrap", Reply(500, body=f"{echoed} raw {CALLBACK_SECRET}".encode()))
    caplog.set_level(logging.DEBUG)

    # when the chain runs (the failed call is retried and succeeds)
    tenant, event, _ = run_deployment(base=receiver.url(""))

    # then the chain did run and log (this test would pass vacuously otherwise)
    assert WebhookDelivery.objects.filter(event=event, status="succeeded").count() == 4
    assert "delivery" in caplog.text
    # and no secret appears in the log records, the process output, or what staff can read
    out, err = capfd.readouterr()
    stored = json.dumps(
        [
            list(DeliveryAttempt.objects.values("response_body", "error", "request_headers")),
            list(WebhookDelivery.objects.values("payload", "status_reason")),
            list(TenantHistory.objects.filter(tenant=tenant).values("summary", "details")),
        ],
        default=str,
    )
    for secret in (CALLBACK_SECRET, CLIENT_SECRET, endpoint_secret, endpoint_secret[6:]):
        assert secret not in caplog.text
        assert secret not in out
        assert secret not in err
        assert secret not in stored
    assert CALLBACK_CONTEXT not in stored
    assert repr(endpoint.secret) == "SecretValue('********')"
    assert "********" in stored  # the echoed secrets were masked, not dropped silently


# --- Endpoints' custom headers: sealed at rest, plain on the wire, write-only for every staff role --------

HEADERS = {"Authorization": "Bearer header-secret-1", "X-Custom-Auth": "header-secret-2", "X-Team": "billing"}


def stored_headers(endpoint) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(custom_headers AS text) FROM webhooks_webhookendpoint WHERE id = %s", [endpoint.pk])
        return cursor.fetchone()[0]


def plain_header_values(text: str) -> list[str]:
    return [value for value in ("header-secret-1", "header-secret-2", "billing") if value in text]


def test_custom_headers_are_sealed_at_rest_and_sent_in_plain(receiver):
    # given an endpoint with custom headers, one under a name no secret rule could guess, and a receiver
    # that echoes them in its answer
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"), custom_headers=HEADERS)
    receiver.script("/hook", Reply(200, body=b"saw header-secret-1 and X-Custom-Auth: header-secret-2"))

    # when a delivery is sent
    attempt = delivery_attempt(delivery_id=make_delivery(endpoint).pk)

    # then the receiver got every header in plain, while neither the endpoint's row nor the attempt holds them
    (request,) = receiver.requests
    assert (request.headers["authorization"], request.headers["x-custom-auth"]) == (
        "Bearer header-secret-1",
        "header-secret-2",
    )
    assert plain_header_values(stored_headers(endpoint)) == []
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).custom_headers == HEADERS
    stored = DeliveryAttempt.objects.values_list("request_headers", flat=True).get(pk=attempt.pk)
    assert plain_header_values(json.dumps(stored)) == []
    assert stored["x-custom-auth"] == MASK
    assert stored["content-type"] == "application/json"  # the engine's own headers stay readable
    assert stored["webhook-id"] == request.headers["webhook-id"]
    assert DeliveryAttempt.objects.get(pk=attempt.pk).response_body == f"saw {MASK} and X-Custom-Auth: {MASK}"


@pytest.mark.parametrize("level", ["read_only", "operator", "superuser"])
def test_no_staff_role_sees_a_custom_header_value(receiver, client, level):
    endpoint = WebhookEndpointFactory(url=receiver.url("/hook"), custom_headers=HEADERS)
    delivery = make_delivery(endpoint)
    delivery_attempt(delivery_id=delivery.pk)
    client.force_login(staff_user(level))

    answers = [
        client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])),
        client.get(reverse("admin:webhooks_webhookendpoint_changelist")),
        client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk])),
        client.get(reverse("webhook-endpoint-detail", args=[endpoint.pk])),
        client.get(reverse("webhook-endpoints")),
        client.get(f"/api/webhook-deliveries/{delivery.pk}/"),
    ]

    assert [answer.status_code for answer in answers] == [200] * len(answers)
    assert plain_header_values(b"".join(answer.content for answer in answers).decode()) == []
    assert "X-Custom-Auth" in answers[0].content.decode()  # names are shown
    assert answers[3].json()["custom_headers"] == dict.fromkeys(HEADERS, MASK)


def test_a_masked_value_sent_back_keeps_the_stored_one_in_the_admin_and_the_api(client):
    endpoint = WebhookEndpointFactory(url="https://hooks.example.com/in", custom_headers=HEADERS)
    client.force_login(staff_user("superuser"))
    form = client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])).context["adminform"].form

    # when the admin form is saved as shown, with one header changed and one added
    shown = json.loads(form["custom_headers"].value())
    assert shown == dict.fromkeys(HEADERS, MASK)
    posted = {**shown, "X-Team": "payments", "X-New": "new-value"}
    response = client.post(
        reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]),
        {
            "url": endpoint.url,
            "description": "",
            "events": endpoint.events,
            "signing_scheme": endpoint.signing_scheme,
            "custom_headers": json.dumps(posted),
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content
    expected = {**HEADERS, "X-Team": "payments", "X-New": "new-value"}
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).custom_headers == expected

    # and the API does the same; a masked value with nothing stored under its name is refused
    api = reverse("webhook-endpoint-detail", args=[endpoint.pk])
    kept = client.patch(api, {"custom_headers": {"Authorization": MASK}}, content_type="application/json")
    refused = client.patch(api, {"custom_headers": {"X-Unknown": MASK}}, content_type="application/json")

    assert kept.status_code == 200, kept.content
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).custom_headers == {"Authorization": "Bearer header-secret-1"}
    assert refused.status_code == 400
    assert "custom_headers" in refused.json()["error"]["fields"]
