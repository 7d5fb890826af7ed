"""Secrets never reach logs, stored attempts, history or the payload copies shown to staff."""

import json
import logging

import pytest

from devstack.receivers import Reply
from tenants.models import TenantHistory
from webhooks.models import DeliveryAttempt, WebhookDelivery
from webhooks.tests.factories import CALLBACK_CONTEXT, CALLBACK_SECRET, CLIENT_SECRET, WebhookEndpointFactory

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
