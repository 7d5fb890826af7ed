"""The demo receiver (demo/receiver.py) verifies and accepts a whole deployment chain."""

import importlib.util
import json
import threading
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from tenants.models import TenantStatus
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.secrets import secret_generate
from webhooks.tests.factories import CALLBACK_CONTEXT, CALLBACK_SECRET, DeployingTenantFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]

MODULE = Path(__file__).resolve().parents[2] / "demo" / "receiver.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("demo_receiver", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def demo(monkeypatch):
    module = load_demo()
    subscriber_secret = secret_generate()
    config = module.Config(
        {
            "DEMO_RECEIVER_PORT": "0",
            "DEMO_CALLBACK_SECRET": CALLBACK_SECRET,
            "DEMO_CALLBACK_CONTEXT": CALLBACK_CONTEXT,
            "DEMO_SUBSCRIBER_SECRET": subscriber_secret,
        }
    )
    server = module.DemoReceiver(config)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("DEMO_RECEIVER_URL", base)
    monkeypatch.setenv("DEMO_SUBSCRIBER_SECRET", subscriber_secret)
    yield server, base
    server.shutdown()
    server.server_close()


def test_a_deployment_against_the_demo_receiver_reaches_active(demo, run_deployment):
    _server, base = demo
    # given the demo subscriber registered the way `make run` does it
    call_command("webhooks_demo_subscriber")
    assert WebhookEndpoint.objects.get().url == f"{base}/subscriber"

    # when a tenant is deployed with the build script's paths (tenant key prefix)
    tenant = DeployingTenantFactory()
    tenant, event, _ = run_deployment(
        tenant,
        base=None,
        API_ENDPOINT=f"{base}/webhook",
        USER_CALLBACK_ENDPOINT=f"{base}/{tenant.key}/user-callback",
        APP_PLANE_ENDPOINT_FEATURE_SERVICE=f"{base}/{tenant.key}/feature-service",
        APP_PLANE_REDIRECT_URL=f"{base}/{tenant.key}/app",
    )

    # then every call was verified and accepted, and the tenant is active
    calls = json.loads(urllib.request.urlopen(f"{base}/calls", timeout=5).read())
    assert [(c["role"], c["status"]) for c in calls] == [
        ("app-plane", 204),
        ("feature-service", 204),
        ("webhook", 204),
        ("subscriber", 200),
    ]
    assert set(WebhookDelivery.objects.filter(event=event).values_list("status", flat=True)) == {
        DeliveryStatus.SUCCEEDED
    }
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    page = urllib.request.urlopen(f"{base}/{tenant.key}/app", timeout=5)
    assert page.status == 200


def test_the_demo_receiver_refuses_a_bad_signature(demo):
    _server, base = demo
    request = urllib.request.Request(
        f"{base}/webhook",
        data=b'{"initiatorId":"t","type":0}',
        headers={"x-timestamp": "1", "x-signature": "00", "content-type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401


@pytest.mark.parametrize("timestamp", ["\u00b2", "1" * 4300])
@pytest.mark.parametrize("path", ["/webhook", "/subscriber"])
def test_the_demo_receiver_answers_401_to_a_malformed_timestamp(demo, path, timestamp):
    # given a timestamp that str.isdigit() accepts but int() refuses (sent as latin-1, as HTTP carries it)
    _server, base = demo
    headers = {
        "x-timestamp": timestamp,
        "x-signature": "00",
        "webhook-id": "msg_1",
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1,AAAA",
        "content-type": "application/json",
    }
    request = urllib.request.Request(f"{base}{path}", data=b"{}", headers=headers, method="POST")

    # when it is posted, then the receiver refuses it as unauthenticated (not a 500 or a dropped connection)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert "epoch" in json.loads(refused.value.read())["error"]
