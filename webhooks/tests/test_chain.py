"""The deployment chain against a real receiver on 127.0.0.1, signatures checked independently."""

import json

import pytest

from devstack.receivers import Reply
from events.catalogue import DetailType
from events.models import OutboxEvent
from orchestrator.tests.factories import StaffFactory
from tenants.models import HistoryKind, TenantHistory, TenantStatus
from webhooks.models import DeliveryStatus, DeliveryStep, Deployment, DeploymentStatus, WebhookDelivery
from webhooks.services.retry import delivery_retry
from webhooks.tests.factories import (
    CALLBACK_CONTEXT,
    CALLBACK_SECRET,
    CLIENT_SECRET,
    DeployingTenantFactory,
    WebhookEndpointFactory,
)
from webhooks.tests.independent import original_ok, standard_ok

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]


def test_full_chain_runs_in_order_signed_and_activates_the_tenant(receiver, run_deployment):
    # given a tenant deploying and one subscriber for tenant.deployed
    base = receiver.url("")
    endpoint = WebhookEndpointFactory(url=receiver.url("/subscriber"))
    tenant = DeployingTenantFactory()

    # when the deployment event is handled
    tenant, event, result = run_deployment(tenant, base=base)

    # then every call arrived once, in the chain's order
    assert receiver.paths() == ["/bootstrap", "/feature-service/bootstrap", "/webhook", "/subscriber"]
    app, feature, webhook, subscriber = receiver.requests
    # signatures verify with an independent implementation of each scheme
    assert original_ok(app.body, app.headers, CALLBACK_SECRET)
    assert original_ok(feature.body, feature.headers, CALLBACK_SECRET)
    assert original_ok(webhook.body, webhook.headers, CALLBACK_SECRET, context=CALLBACK_CONTEXT)
    assert not original_ok(webhook.body, webhook.headers, CALLBACK_SECRET)  # the context is part of it
    assert standard_ok(subscriber.body, subscriber.headers, endpoint.secret.reveal())
    assert len(app.headers["x-timestamp"]) == 13  # epoch milliseconds
    assert app.headers["content-type"] == "application/json"
    assert app.headers["bypass-tunnel-reminder"] == "true"
    # the bodies are the original's payloads
    app_body = json.loads(app.body)
    assert app_body["tenant"]["id"] == tenant.pk
    assert app_body["email"] == tenant.primary_contact["email"]
    assert app_body["tenantKey"] == tenant.key
    assert app_body["authClient"]["secret"] == CALLBACK_SECRET
    assert app_body["authClient"]["clientSecret"] == CLIENT_SECRET
    assert app_body["authClient"]["accessTokenExpiration"] == 3600
    assert app_body["authClient"]["redirectUrl"] == f"{base}/app"
    assert json.loads(feature.body) == {"tenant": tenant.document, "plan": tenant.plan}
    assert json.loads(webhook.body) == {
        "initiatorId": tenant.pk,
        "type": 0,
        "data": {
            "status": 1,
            "resources": [
                {"type": "s3", "metadata": {"bucket": "acme-terraform-state", "path": "tenants/acme/terraform.tfstate"}}
            ],
            "appPlaneUrl": f"{base}/app",
        },
    }
    assert webhook.body == json.dumps(json.loads(webhook.body), separators=(",", ":")).encode()
    sub = json.loads(subscriber.body)
    assert sub["type"] == "tenant.deployed"
    assert sub["data"]["tenant"]["id"] == tenant.pk
    assert set(sub) == {"type", "timestamp", "data"}
    # and the tenant is active, the success event recorded, every delivery succeeded
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    deployment = Deployment.objects.get(event=event)
    assert deployment.status == DeploymentStatus.SUCCEEDED
    assert result["deployment"] == deployment.pk
    assert list(deployment.deliveries.order_by("position").values_list("step", "status")) == [
        (DeliveryStep.APP_PLANE_BOOTSTRAP, DeliveryStatus.SUCCEEDED),
        (DeliveryStep.FEATURE_SERVICE_BOOTSTRAP, DeliveryStatus.SUCCEEDED),
        (DeliveryStep.CONTROL_PLANE_WEBHOOK, DeliveryStatus.SUCCEEDED),
        (DeliveryStep.SUBSCRIBER, DeliveryStatus.SUCCEEDED),
    ]
    outbox = OutboxEvent.objects.get(detail_type=DetailType.TENANT_DEPLOYMENT_SUCCESS)
    assert outbox.tenant_id == tenant.pk
    assert outbox.detail["tenant"]["id"] == tenant.pk
    callbacks = TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.CALLBACK, ref_type="delivery")
    assert callbacks.count() == 4


def test_deliveries_are_written_before_anything_is_sent(receiver, run_deployment, monkeypatch):
    # given a spy on the HTTP client that counts stored rows when the first request goes out
    from webhooks import sending
    from webhooks.models import AttemptOutcome, DeliveryAttempt

    seen = []
    real_post = sending.http_post

    def spy(url, **kwargs):
        seen.append(
            (
                WebhookDelivery.objects.count(),
                DeliveryAttempt.objects.filter(outcome=AttemptOutcome.RUNNING).count(),
            )
        )
        return real_post(url, **kwargs)

    monkeypatch.setattr(sending, "http_post", spy)
    WebhookEndpointFactory(url=receiver.url("/subscriber"))

    # when the chain runs
    run_deployment(base=receiver.url(""))

    # then all four deliveries existed before the first request, and each request had its attempt row
    assert seen == [(4, 1)] * 4


def test_a_missing_url_skips_its_step_with_the_reason(receiver, run_deployment):
    # given build outputs without a feature-service endpoint
    tenant, event, _ = run_deployment(base=receiver.url(""), APP_PLANE_ENDPOINT_FEATURE_SERVICE="")

    # then that step is skipped with the reason and the others ran
    skipped = WebhookDelivery.objects.get(event=event, step=DeliveryStep.FEATURE_SERVICE_BOOTSTRAP)
    assert skipped.status == DeliveryStatus.SKIPPED
    assert "APP_PLANE_ENDPOINT_FEATURE_SERVICE" in skipped.status_reason
    assert receiver.paths() == ["/bootstrap", "/webhook"]
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE


def test_the_same_event_handled_twice_creates_no_second_delivery(receiver, run_deployment):
    # given a chain that ran for an event
    tenant, event, first = run_deployment(base=receiver.url(""))

    # when the handler runs again for the same event (replay, crash recovery)
    _, _, second = run_deployment(tenant, event=event)

    # then nothing new was created or sent
    assert second["deployment"] == first["deployment"]
    assert WebhookDelivery.objects.filter(event=event).count() == 3
    assert len(receiver.requests) == 3


def test_a_failing_step_pauses_the_chain_and_staff_retry_resumes_it(receiver, run_deployment, committed):
    # given a feature service that refuses the call (not retried) and a subscriber
    receiver.script("/feature-service/bootstrap", Reply(400, body=b'{"error":"unknown plan"}'))
    WebhookEndpointFactory(url=receiver.url("/subscriber"))

    # when the chain runs
    tenant, event, _ = run_deployment(base=receiver.url(""))

    # then the chain stopped at that step: later steps wait, tenant DEPLOY_FAILED
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOY_FAILED
    assert receiver.paths() == ["/bootstrap", "/feature-service/bootstrap"]
    statuses = dict(WebhookDelivery.objects.filter(event=event).values_list("step", "status"))
    assert statuses == {
        DeliveryStep.APP_PLANE_BOOTSTRAP: DeliveryStatus.SUCCEEDED,
        DeliveryStep.FEATURE_SERVICE_BOOTSTRAP: DeliveryStatus.FAILED,
        DeliveryStep.CONTROL_PLANE_WEBHOOK: DeliveryStatus.BLOCKED,
        DeliveryStep.SUBSCRIBER: DeliveryStatus.BLOCKED,
    }
    failed = WebhookDelivery.objects.get(event=event, step=DeliveryStep.FEATURE_SERVICE_BOOTSTRAP)
    attempt = failed.attempt_log.get()
    assert attempt.status_code == 400
    assert "unknown plan" in attempt.response_body

    # when staff retry the failed step (the receiver accepts it now)
    staff = StaffFactory()
    result = committed(delivery_retry, delivery=failed, actor_user=staff)

    # then the chain resumed from that step and finished
    assert result.queued
    assert receiver.paths() == [
        "/bootstrap",
        "/feature-service/bootstrap",
        "/feature-service/bootstrap",
        "/webhook",
        "/subscriber",
    ]
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert Deployment.objects.get(event=event).status == DeploymentStatus.SUCCEEDED
    # and the retry is in the tenant's history with the staff user
    entry = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert entry.actor_user == staff
    assert entry.ref_type == "delivery"
    assert entry.ref_id == str(failed.pk)
    transitions = TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.TRANSITION, actor_user=staff)
    assert transitions.filter(details__to=TenantStatus.DEPLOYING).exists()


def test_subscribers_fan_out_each_with_its_own_delivery(receiver, run_deployment):
    # given three subscribers
    endpoints = [WebhookEndpointFactory(url=receiver.url(f"/subscriber/{n}")) for n in range(3)]

    # when the chain runs
    _, _event, _ = run_deployment(base=receiver.url(""))

    # then each got one call signed with its own secret, after the control-plane webhook
    paths = receiver.paths()
    assert paths[:3] == ["/bootstrap", "/feature-service/bootstrap", "/webhook"]
    assert sorted(paths[3:]) == [f"/subscriber/{n}" for n in range(3)]
    for n, endpoint in enumerate(endpoints):
        (request,) = receiver.at(f"/subscriber/{n}")
        assert standard_ok(request.body, request.headers, endpoint.secret.reveal())
    ids = {r.headers["webhook-id"] for r in receiver.requests[3:]}
    assert len(ids) == 3


def test_a_failed_build_only_tells_the_control_plane(receiver, run_deployment):
    # given build outputs that report failure
    tenant, _event, _ = run_deployment(base=receiver.url(""), CODEBUILD_BUILD_SUCCEEDING="0")

    # then only the webhook was called, with status 0, and the tenant is DEPLOY_FAILED
    assert receiver.paths() == ["/webhook"]
    assert json.loads(receiver.requests[0].body)["data"]["status"] == 0
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOY_FAILED
