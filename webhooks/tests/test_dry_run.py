"""The dry run of TENANT_DEPLOYMENT: every callback the chain would make, the SSRF guard's verdict on each
and the headers a receiver would get, with nothing sent; the real chain then sends exactly those bytes."""

import hashlib
import json

import pytest
from rest_framework.test import APIClient

from events.catalogue import DetailType
from orchestrator.redaction import MASK
from orchestrator.tests.factories import staff_user
from orchestrator.tests.side_effects import side_effects_counted
from tenants.models import TenantStatus
from tenants.tests.conftest import envelope
from webhooks.models import DeliveryStep
from webhooks.tests.factories import (
    CALLBACK_CONTEXT,
    CALLBACK_SECRET,
    CLIENT_SECRET,
    DeployingTenantFactory,
    WebhookEndpointFactory,
    deployment_detail,
)
from webhooks.tests.independent import original_ok, standard_signature

pytestmark = pytest.mark.django_db

DUMMY_MS = "946684800000"  # 2000-01-01T00:00:00Z


@pytest.fixture
def staff_api():
    client = APIClient()
    client.force_authenticate(staff_user("read_only"))
    return client


def dry_run(staff_api, body):
    response = staff_api.post("/api/events/dry-run/", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def test_deployment_shows_each_callback_signed_and_the_real_chain_sends_those_bytes(
    aws,
    receiver,
    staff_api,
    send_event,
):
    # Given a deploying tenant, a subscriber with a credential in a custom header, and build outputs
    # pointing at a live receiver on 127.0.0.1 (allowed by WEBHOOK_ALLOWED_HOSTS in tests)
    endpoint = WebhookEndpointFactory(url=receiver.url("/subscriber"), custom_headers={"Authorization": "Bearer tok-9"})
    tenant = DeployingTenantFactory()
    body = envelope(DetailType.TENANT_DEPLOYMENT, deployment_detail(tenant, receiver.url("")))

    # When staff dry-run the deployment
    with side_effects_counted() as effects:
        answer = dry_run(staff_api, body)

    # Then nothing was written, queued or sent
    assert effects.none(), effects
    assert receiver.requests == []
    effect = answer["effect"]
    assert effect["outcome"] == "callbacks_start"
    assert effect["tenant"]["resulting_status"] == TenantStatus.DEPLOYING
    callbacks = {row["step"]: row for row in effect["callbacks"]}
    assert list(callbacks) == [
        DeliveryStep.APP_PLANE_BOOTSTRAP,
        DeliveryStep.FEATURE_SERVICE_BOOTSTRAP,
        DeliveryStep.CONTROL_PLANE_WEBHOOK,
        DeliveryStep.SUBSCRIBER,
    ]
    # each URL passes the guard, pinned to the loopback address
    for row in callbacks.values():
        assert row["guard"] == {"verdict": "allowed", "reason": row["guard"]["reason"], "address": "127.0.0.1"}
    assert callbacks[DeliveryStep.CONTROL_PLANE_WEBHOOK]["url"] == receiver.url("/webhook")
    # the headers carry the dummy time; custom header values are masked; no secret anywhere
    webhook_headers = callbacks[DeliveryStep.CONTROL_PLANE_WEBHOOK]["headers"]
    assert webhook_headers["x-timestamp"] == DUMMY_MS
    subscriber_headers = callbacks[DeliveryStep.SUBSCRIBER]["headers"]
    assert subscriber_headers["authorization"] == MASK
    assert subscriber_headers["webhook-timestamp"] == DUMMY_MS[:-3]
    assert subscriber_headers["webhook-id"] == effect["message_id"]
    text = json.dumps(answer)
    for secret in (CALLBACK_SECRET, CALLBACK_CONTEXT, CLIENT_SECRET, "tok-9", endpoint.secret.reveal()):
        assert secret not in text

    # When the deployment is received for real
    send_event(body)

    # Then the receiver got the bodies the dry run signed: its signatures verify over the bytes sent
    sent = {request.path: request for request in receiver.requests}
    assert list(sent) == ["/bootstrap", "/feature-service/bootstrap", "/webhook", "/subscriber"]
    for step, path, context in (
        (DeliveryStep.APP_PLANE_BOOTSTRAP, "/bootstrap", None),
        (DeliveryStep.FEATURE_SERVICE_BOOTSTRAP, "/feature-service/bootstrap", None),
        (DeliveryStep.CONTROL_PLANE_WEBHOOK, "/webhook", CALLBACK_CONTEXT),
    ):
        shown = callbacks[step]
        assert hashlib.sha256(sent[path].body).hexdigest() == shown["body_sha256"], step
        assert original_ok(sent[path].body, shown["headers"], CALLBACK_SECRET, context=context), step
        assert set(shown["headers"]) <= set(sent[path].headers), step
    # the subscriber's signature verifies over its would-be body (the payload shown, stamped at the dummy time)
    subscriber = callbacks[DeliveryStep.SUBSCRIBER]
    would_be = json.dumps(subscriber["payload"], separators=(",", ":"), ensure_ascii=False).encode()
    assert hashlib.sha256(would_be).hexdigest() == subscriber["body_sha256"]
    assert subscriber["headers"]["webhook-signature"] == standard_signature(
        endpoint.secret.reveal(), effect["message_id"], DUMMY_MS[:-3], would_be
    )
    assert set(subscriber["headers"]) <= set(sent["/subscriber"].headers)
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE


def test_the_guard_refuses_loopback_and_private_addresses_where_settings_do_not_allow_them(
    staff_api, settings, receiver
):
    # Given a deployment whose API_ENDPOINT is private, on a deployment that does not allow loopback
    settings.WEBHOOK_ALLOWED_HOSTS = []
    tenant = DeployingTenantFactory(status=TenantStatus.PROVISIONING)
    detail = deployment_detail(tenant, receiver.url(""), API_ENDPOINT="http://10.1.2.3/hook?token=abc")

    # When it is dry-run
    effect = dry_run(staff_api, envelope(DetailType.TENANT_DEPLOYMENT, detail))["effect"]

    # Then every URL has the guard's refusal with its reason, and the query string is not shown
    callbacks = {row["step"]: row for row in effect["callbacks"]}
    webhook = callbacks[DeliveryStep.CONTROL_PLANE_WEBHOOK]
    assert webhook["url"] == "http://10.1.2.3/hook?…"
    assert webhook["guard"]["verdict"] == "refused"
    assert "non-public address (10.1.2.3)" in webhook["guard"]["reason"]
    bootstrap = callbacks[DeliveryStep.APP_PLANE_BOOTSTRAP]
    assert bootstrap["guard"]["verdict"] == "refused"
    assert "127.0.0.1" in bootstrap["guard"]["reason"]
    # and the tenant would move from PROVISIONING to DEPLOYING
    assert effect["transitions"] == [{"from": "PROVISIONING", "to": "DEPLOYING", "allowed": True}]


def test_a_deployment_for_an_active_tenant_is_refused_with_the_chains_reason(staff_api):
    tenant = DeployingTenantFactory(status=TenantStatus.ACTIVE)
    detail = deployment_detail(tenant, "http://127.0.0.1:9")

    effect = dry_run(staff_api, envelope(DetailType.TENANT_DEPLOYMENT, detail))["effect"]

    assert effect["outcome"] == "refused"
    assert effect["reason"] == f"tenant {tenant.pk} is ACTIVE; a deployment needs it provisioned"
    assert effect["callbacks"] == []


def test_a_step_without_a_url_is_shown_skipped_and_a_missing_secret_as_a_problem(staff_api):
    tenant = DeployingTenantFactory()
    detail = deployment_detail(tenant, "http://127.0.0.1:9", USER_CALLBACK_ENDPOINT="", secret="")

    effect = dry_run(staff_api, envelope(DetailType.TENANT_DEPLOYMENT, detail))["effect"]

    callbacks = {row["step"]: row for row in effect["callbacks"]}
    skipped = callbacks[DeliveryStep.APP_PLANE_BOOTSTRAP]
    assert skipped["skipped"] == "USER_CALLBACK_ENDPOINT is not set in the build outputs"
    assert skipped["guard"] is None
    assert skipped["headers"] is None
    webhook = callbacks[DeliveryStep.CONTROL_PLANE_WEBHOOK]
    assert webhook["problem"] == "no signing secret is configured for this delivery"
    assert webhook["headers"] is None


def test_the_admin_form_lists_the_callbacks_with_the_guards_verdict(client, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    client.force_login(staff_user("read_only"))
    tenant = DeployingTenantFactory()
    body = envelope(DetailType.TENANT_DEPLOYMENT, deployment_detail(tenant, "http://127.0.0.1:9"))

    page = client.post("/admin/events/receivedevent/dry-run/", {"event": json.dumps(body)})

    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-step="{DeliveryStep.CONTROL_PLANE_WEBHOOK}" data-guard="refused"' in html
    assert "not in WEBHOOK_ALLOWED_HOSTS" in html
    assert CALLBACK_SECRET not in html.split('id="dry-run-result"', 1)[1]
