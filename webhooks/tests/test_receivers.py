"""Tenant status changes notify the control plane and subscribers (signal receivers)."""

import json

import pytest

from events.catalogue import DetailType
from events.models import EventStatus
from events.tests.factories import ReceivedEventFactory
from tenants.models import TenantStatus
from tenants.services.lifecycle import TransitionCause, tenant_transition
from tenants.tests.factories import TenantFactory
from webhooks.models import DeliveryStatus, DeliveryStep, WebhookDelivery, WebhookEventType
from webhooks.tests.factories import (
    CALLBACK_CONTEXT,
    CALLBACK_SECRET,
    WebhookEndpointFactory,
    deployment_detail,
)
from webhooks.tests.independent import original_ok, standard_ok

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]


def test_provisioning_failure_tells_the_control_plane_and_subscribers(receiver, committed):
    # given a provisioning tenant, its failure event (build outputs), and a subscriber for failures
    tenant = TenantFactory(status=TenantStatus.PROVISIONING)
    detail = deployment_detail(tenant, receiver.url(""), CODEBUILD_BUILD_SUCCEEDING="0")
    event = ReceivedEventFactory(
        kind=DetailType.TENANT_PROVISIONING_FAILURE, status=EventStatus.PROCESSING, detail=detail, tenant_id=tenant.pk
    )
    endpoint = WebhookEndpointFactory(
        url=receiver.url("/subscriber"), events=[WebhookEventType.TENANT_PROVISIONING_FAILED]
    )

    # when the tenant moves to PROVISION_FAILED (its cause names the event, as the tenants app does)
    committed(
        tenant_transition,
        tenant=tenant,
        to=TenantStatus.PROVISION_FAILED,
        reason="terraform apply failed",
        cause=TransitionCause(event_pk=event.pk),
    )

    # then the control plane got the original webhook with status 0, signed with the context
    (webhook,) = receiver.at("/webhook")
    assert original_ok(webhook.body, webhook.headers, CALLBACK_SECRET, context=CALLBACK_CONTEXT)
    body = json.loads(webhook.body)
    assert body["initiatorId"] == tenant.pk
    assert body["type"] == 0
    assert body["data"]["status"] == 0
    # and the subscriber got tenant.provisioning_failed
    (notice,) = receiver.at("/subscriber")
    assert standard_ok(notice.body, notice.headers, endpoint.secret.reveal())
    payload = json.loads(notice.body)
    assert payload["type"] == "tenant.provisioning_failed"
    assert payload["data"]["reason"] == "terraform apply failed"
    assert WebhookDelivery.objects.filter(tenant=tenant, status=DeliveryStatus.SUCCEEDED).count() == 2


@pytest.mark.parametrize("stored_as", ["envelope", "validated copy"])
def test_a_failure_named_only_by_its_build_finds_that_builds_failure_event(receiver, committed, stored_as):
    # given two failure events about the tenant, the older one from the build that failed (CodeBuild's own
    # state change names only the build); its detail stored in the envelope or as the validated copy
    tenant = TenantFactory(status=TenantStatus.PROVISIONING)
    detail = deployment_detail(tenant, receiver.url(""), CODEBUILD_BUILD_SUCCEEDING="0", CODEBUILD_BUILD_ID="b:1")
    event = ReceivedEventFactory(
        kind=DetailType.TENANT_PROVISIONING_FAILURE, status=EventStatus.PROCESSED, detail=None, tenant_id=tenant.pk
    )
    event.envelope = {**event.envelope, "detail": detail}
    event.detail_override = detail if stored_as == "validated copy" else None
    event.save()
    ReceivedEventFactory(
        kind=DetailType.TENANT_PROVISIONING_FAILURE,
        status=EventStatus.PROCESSED,
        tenant_id=tenant.pk,
        detail=deployment_detail(tenant, "http://127.0.0.1:9/other", CODEBUILD_BUILD_ID="b:2"),
    )

    # when the tenant fails with a cause that names only the build id
    committed(
        tenant_transition,
        tenant=tenant,
        to=TenantStatus.PROVISION_FAILED,
        reason="build failed",
        cause=TransitionCause(build_id="b:1", source="aws.codebuild"),
    )

    # then the control plane got the webhook at that build's API_ENDPOINT, signed with its context
    (webhook,) = receiver.at("/webhook")
    assert original_ok(webhook.body, webhook.headers, CALLBACK_SECRET, context=CALLBACK_CONTEXT)
    assert json.loads(webhook.body)["data"]["status"] == 0


def test_provisioning_failure_without_an_endpoint_is_recorded_as_skipped(committed):
    # given a tenant whose failure carried no API_ENDPOINT
    tenant = TenantFactory(status=TenantStatus.PROVISIONING)

    # when it fails
    committed(tenant_transition, tenant=tenant, to=TenantStatus.PROVISION_FAILED, reason="boom")

    # then the control-plane delivery exists, skipped with the reason
    delivery = WebhookDelivery.objects.get(tenant=tenant, step=DeliveryStep.CONTROL_PLANE_WEBHOOK)
    assert delivery.status == DeliveryStatus.SKIPPED
    assert "API_ENDPOINT" in delivery.status_reason


def test_deprovisioned_tenants_are_announced(receiver, committed):
    tenant = TenantFactory(status=TenantStatus.DEPROVISIONING)
    WebhookEndpointFactory(url=receiver.url("/subscriber"), events=[WebhookEventType.TENANT_DEPROVISIONED])
    WebhookEndpointFactory(url=receiver.url("/other"), events=[WebhookEventType.TENANT_DEPLOYED])

    committed(tenant_transition, tenant=tenant, to=TenantStatus.INACTIVE, reason="done")

    assert receiver.paths() == ["/subscriber"]
    assert json.loads(receiver.requests[0].body)["type"] == "tenant.deprovisioned"


def test_activation_outside_the_chain_notifies_once_and_the_chain_does_not_duplicate(
    receiver, committed, run_deployment
):
    # given a subscriber for tenant.deployed
    WebhookEndpointFactory(url=receiver.url("/subscriber"), events=[WebhookEventType.TENANT_DEPLOYED])

    # when a tenant becomes active through the chain
    run_deployment(base=receiver.url(""))

    # then the subscriber was told once (by the chain's last step, not again by the status change)
    assert receiver.paths().count("/subscriber") == 1

    # and when another tenant becomes active some other way (not the chain), it is announced once too
    other = TenantFactory(status=TenantStatus.DEPLOYING)
    committed(tenant_transition, tenant=other, to=TenantStatus.ACTIVE, reason="manual")
    assert receiver.paths().count("/subscriber") == 2


def test_operations_and_deployment_failures_are_announced_to_their_subscribers(receiver, committed):
    # given one subscriber per new event type (and one for tenant.deployed, which none of these is)
    paths = {
        WebhookEventType.TENANT_UPDATED: "/updated",
        WebhookEventType.TENANT_UPDATE_FAILED: "/update-failed",
        WebhookEventType.TENANT_SUSPENDED: "/suspended",
        WebhookEventType.TENANT_RESUMED: "/resumed",
        WebhookEventType.TENANT_DEPLOY_FAILED: "/deploy-failed",
        WebhookEventType.TENANT_DEPLOYED: "/deployed",
    }
    secrets = {
        path: WebhookEndpointFactory(url=receiver.url(path), events=[event_type]).secret.reveal()
        for event_type, path in paths.items()
    }
    tenant = TenantFactory(status=TenantStatus.ACTIVE, plan={"id": "plan-basic", "tier": "BASIC"}, tier="BASIC")

    # when it is updated (failing once), suspended, resumed, and rolled back from a failed update
    for to in (TenantStatus.UPDATING, TenantStatus.UPDATE_FAILED, TenantStatus.UPDATING, TenantStatus.ACTIVE):
        committed(tenant_transition, tenant=tenant, to=to, reason="quota" if to == TenantStatus.UPDATE_FAILED else "")
    for to in (TenantStatus.SUSPENDING, TenantStatus.SUSPENDED, TenantStatus.RESUMING, TenantStatus.ACTIVE):
        committed(tenant_transition, tenant=tenant, to=to)
    for to in (TenantStatus.UPDATING, TenantStatus.UPDATE_FAILED, TenantStatus.ACTIVE):
        committed(tenant_transition, tenant=tenant, to=to)
    # and another tenant's deployment fails
    deploying = TenantFactory(status=TenantStatus.DEPLOYING)
    committed(tenant_transition, tenant=deploying, to=TenantStatus.DEPLOY_FAILED, reason="app plane down")

    # then each subscriber heard exactly its events, signed (Standard Webhooks); tenant.deployed nobody
    assert sorted(receiver.paths()) == sorted(
        ["/updated", "/update-failed", "/update-failed", "/suspended", "/resumed", "/deploy-failed"]
    )
    for request in receiver.requests:
        path = request.path
        assert standard_ok(request.body, request.headers, secrets[path])
        assert json.loads(request.body)["type"] == next(kind for kind, at in paths.items() if at == path)
    (failed_deploy,) = receiver.at("/deploy-failed")
    assert json.loads(failed_deploy.body)["data"]["reason"] == "app plane down"
    assert json.loads(receiver.at("/update-failed")[0].body)["data"]["reason"] == "quota"
