"""Pipeline steps the webhooks app plugs in (``callback``, ``notify``), end to end: the LOCAL build's outcome
comes back through the real intake, the callback goes to a real receiver on 127.0.0.1, signed as the
original signs it."""

import json

import pytest

from devstack.receivers import Reply
from orchestrator.errors import ConflictError
from tenants.models import Build, PipelineRun, PipelineRunStatus, StepRunStatus, TenantStatus, TierVariable
from tenants.services.pipeline_actions import pipeline_run_redrive, step_approve
from tenants.tests.conftest import live_intake, local_tier  # noqa: F401 (fixtures shared with the tenants tests)
from tenants.tests.factories import PipelineStepFactory, local_build_step, pipeline_operator
from tenants.tests.test_pipeline_runs import provision
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import WebhookEndpointFactory
from webhooks.tests.independent import original_ok, standard_ok

# LOCAL builds post their outcomes to the intake served on a real port.
pytestmark = pytest.mark.usefixtures("live_intake")

SECRET, CONTEXT = "hmac-secret-value", "ctx-123"  # the provisioning request's environment overrides


@pytest.fixture
def three_steps(local_tier, receiver):  # noqa: F811
    """build (LOCAL, its callbacks pointed at the receiver) -> approval -> the control-plane webhook."""
    TierVariable.objects.filter(tier=local_tier, name="DEMO_RECEIVER_URL").update(value=receiver.url(""))
    local_build_step(tier=local_tier, position=1)
    PipelineStepFactory(tier=local_tier, position=2, name="approve", kind="approval")
    PipelineStepFactory(
        tier=local_tier,
        position=3,
        name="tell-control-plane",
        kind="callback",
        config={"callback": "control_plane_webhook"},
    )
    return local_tier


def test_build_approval_callback_runs_to_the_end_and_activates_the_tenant(three_steps, client, receiver):
    # given a run waiting at its approval after the LOCAL build
    tenant = provision(client)
    run = PipelineRun.objects.get(tenant=tenant)
    assert receiver.paths() == []

    # when an operator approves
    step_approve(step_run_id=run.step_runs.get(name="approve").pk, actor_user=pipeline_operator())

    # then the control-plane webhook arrived once, signed as the original signs it, with the build's outputs
    (webhook,) = receiver.at("/webhook")
    assert original_ok(webhook.body, webhook.headers, SECRET, context=CONTEXT)
    body = json.loads(webhook.body)
    assert (body["initiatorId"], body["data"]["status"]) == (tenant.pk, 1)
    # and the run succeeded and the tenant is active
    run.refresh_from_db()
    tenant.refresh_from_db()
    assert run.status == PipelineRunStatus.SUCCEEDED
    assert [step.status for step in run.step_runs.order_by("position")] == [StepRunStatus.SUCCEEDED] * 3
    assert tenant.status == TenantStatus.ACTIVE


def test_redrive_from_a_failed_callback_keeps_the_build_and_sends_the_same_message(three_steps, client, receiver):
    # given the control plane refuses the callback, so the run and the provisioning fail
    receiver.script("/webhook", Reply(status=400))
    tenant = provision(client)
    run = PipelineRun.objects.get(tenant=tenant)
    step_approve(step_run_id=run.step_runs.get(name="approve").pk, actor_user=pipeline_operator())
    run.refresh_from_db()
    tenant.refresh_from_db()
    assert run.status == PipelineRunStatus.FAILED
    assert "HTTP 400" in run.status_reason
    assert tenant.status == TenantStatus.PROVISION_FAILED
    build_step = run.step_runs.get(name="build")
    outputs_before = build_step.outputs

    # when an operator redrives it (the control plane now takes it)
    result = pipeline_run_redrive(run_id=run.pk, actor_user=pipeline_operator())

    # then only the callback ran again: the same delivery (same webhook-id, same bytes), no second build
    assert result.changed
    first, second = receiver.at("/webhook")
    assert first.body == second.body
    delivery = WebhookDelivery.objects.get(
        tenant=tenant, step="control_plane_webhook", dedupe_key__startswith="pipeline"
    )
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 2)
    assert Build.objects.filter(tenant=tenant).count() == 1
    build_step.refresh_from_db()
    assert build_step.outputs == outputs_before
    assert build_step.attempts == 1
    run.refresh_from_db()
    tenant.refresh_from_db()
    assert run.status == PipelineRunStatus.SUCCEEDED
    assert tenant.status == TenantStatus.ACTIVE

    # and a redrive of the succeeded run is refused
    with pytest.raises(ConflictError):
        pipeline_run_redrive(run_id=run.pk, actor_user=pipeline_operator())


def test_notify_sends_a_standard_webhooks_event_to_subscribers(local_tier, client, receiver):  # noqa: F811
    # given a pipeline that only notifies subscribers of tenant.deployed
    endpoint = WebhookEndpointFactory(url=receiver.url("/subscriber"), events=["tenant.deployed"])
    PipelineStepFactory(
        tier=local_tier, position=1, name="announce", kind="notify", config={"event_type": "tenant.deployed"}
    )

    # when a tenant is provisioned
    tenant = provision(client)

    # then the subscriber got the step's event, then the one of the tenant's activation, both signed
    first, second = receiver.at("/subscriber")
    assert standard_ok(first.body, first.headers, endpoint.secret.reveal())
    assert json.loads(first.body)["data"]["step"] == "announce"
    assert first.headers["webhook-id"] != second.headers["webhook-id"]
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
