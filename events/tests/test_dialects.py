"""Dialects: which control planes' requests the intake accepts (EVENT_DIALECTS), sbt-aws's request schemas,
and the EventBridge rules bootstrap_aws creates for them (moto_server over HTTP)."""

import json
from contextlib import ExitStack

import pytest
from django.core import checks

from events import registry
from events.catalogue import DetailType, tenant_id_of
from events.dialects.sbt import SbtDetailType
from events.models import ReceivedEvent
from events.samples import sample_envelope
from events.wiring import ensure_intake_wiring, resource_names
from orchestrator.aws import aws_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def sbt_recorder(recorder):
    """The recorder also handles sbt-aws's requests."""
    with ExitStack() as stack:
        for detail_type in SbtDetailType.REQUESTS:
            stack.enter_context(registry.override(detail_type, handler=recorder.handler_for(detail_type)))
        yield recorder


def test_sbt_requests_are_refused_while_the_dialect_is_off(intake, sbt_recorder):
    response = intake(sample_envelope(SbtDetailType.ONBOARDING_REQUEST))

    assert response.status_code == 400
    assert "Unsupported detail-type" in response.json()["error"]["message"]
    assert "sbt_aws_onboardingRequest" not in response.json()["error"]["message"].split("supported:")[1]
    assert ReceivedEvent.objects.count() == 0


@pytest.mark.parametrize("detail_type", SbtDetailType.REQUESTS)
def test_sbt_requests_are_accepted_with_the_dialect_on(intake, sbt_recorder, settings, detail_type):
    settings.EVENT_DIALECTS = ["original", "sbt"]

    response = intake(sample_envelope(detail_type))

    assert response.status_code == 202, response.content
    event = ReceivedEvent.objects.get()
    assert event.tenant_id == "5f5c5d0e-8a4b-4c1e-9d2f-3b6a7c8d9e01"  # detail.tenantId


def test_with_only_sbt_on_the_original_requests_are_refused_but_build_outcomes_are_not(intake, recorder, settings):
    settings.EVENT_DIALECTS = ["sbt"]

    assert intake(sample_envelope(DetailType.TENANT_PROVISIONING)).status_code == 400
    assert intake(sample_envelope(DetailType.TENANT_DEPROVISIONING)).status_code == 400
    assert intake(sample_envelope(DetailType.TENANT_PROVISIONING_SUCCESS)).status_code == 202
    assert intake(sample_envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE)).status_code == 202


@pytest.mark.parametrize(
    ("detail_type", "change", "field"),
    [
        (SbtDetailType.ONBOARDING_REQUEST, lambda d: d.pop("tenantRegistrationId"), "detail.tenantRegistrationId"),
        (SbtDetailType.ONBOARDING_REQUEST, lambda d: d.pop("tenantId"), "detail.tenantId"),
        (SbtDetailType.ONBOARDING_REQUEST, lambda d: d.update(tenantId="no spaces/slashes"), "detail.tenantId"),
        (SbtDetailType.OFFBOARDING_REQUEST, lambda d: d.pop("tenantRegistrationId"), "detail.tenantRegistrationId"),
        (SbtDetailType.ACTIVATE_REQUEST, lambda d: d.pop("tenantId"), "detail.tenantId"),
    ],
)
def test_invalid_sbt_requests_name_the_field(intake, sbt_recorder, settings, detail_type, change, field):
    settings.EVENT_DIALECTS = ["sbt"]
    body = sample_envelope(detail_type)
    change(body["detail"])

    response = intake(body)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_a_request_without_a_tier_is_accepted_so_its_failure_can_be_answered(intake, sbt_recorder, settings):
    settings.EVENT_DIALECTS = ["sbt"]
    body = sample_envelope(SbtDetailType.ONBOARDING_REQUEST)
    del body["detail"]["tier"]

    assert intake(body).status_code == 202


def test_tenant_id_of_reads_sbt_tenant_ids():
    detail = sample_envelope(SbtDetailType.OFFBOARDING_REQUEST)["detail"]

    assert tenant_id_of(SbtDetailType.OFFBOARDING_REQUEST, detail) == detail["tenantId"]
    assert tenant_id_of(SbtDetailType.OFFBOARDING_REQUEST, {"tenantId": ["not", "an", "id"]}) == ""


def test_an_unknown_dialect_is_a_start_up_error(settings):
    settings.EVENT_DIALECTS = ["original", "sbt-aws"]

    messages = checks.run_checks(tags=["events"])

    assert [message.id for message in messages] == ["events.E002"]
    assert "sbt-aws" in messages[0].msg


def test_every_sbt_request_has_a_handler():
    assert checks.run_checks(tags=["events"], include_deployment_checks=True) == []


def rule_on(bus, name):
    events = aws_client("events")
    rule = events.describe_rule(Name=name, EventBusName=bus)
    return json.loads(rule["EventPattern"]), events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]


def test_bootstrap_wires_the_sbt_bus_while_the_dialect_is_on(aws, settings):
    settings.EVENT_DIALECTS = ["original", "sbt"]
    settings.SBT_EVENT_BUS_NAME = "sbt-control-plane-bus"
    settings.SBT_CONTROL_PLANE_SOURCE = "com.example.controlplane"
    names = resource_names()

    created = ensure_intake_wiring()

    assert "event bus sbt-control-plane-bus" in created
    assert f"rule {names['sbt_rule']} on sbt-control-plane-bus" in created
    pattern, [target] = rule_on("sbt-control-plane-bus", names["sbt_rule"])
    assert pattern == {
        "source": ["com.example.controlplane"],
        "detail-type": [
            "sbt_aws_onboardingRequest",
            "sbt_aws_offboardingRequest",
            "sbt_aws_activateRequest",
            "sbt_aws_deactivateRequest",
        ],
    }
    main_pattern, [main_target] = rule_on(settings.EVENT_BUS_NAME, names["rule"])
    assert target["Arn"] == main_target["Arn"]  # the same way into the intake
    assert DetailType.TENANT_PROVISIONING in main_pattern["detail-type"]
    assert ensure_intake_wiring() == []  # idempotent

    settings.EVENT_DIALECTS = ["sbt"]
    ensure_intake_wiring()
    main_pattern, _ = rule_on(settings.EVENT_BUS_NAME, names["rule"])
    assert DetailType.TENANT_PROVISIONING not in main_pattern["detail-type"]
    assert DetailType.TENANT_PROVISIONING_SUCCESS in main_pattern["detail-type"]

    settings.EVENT_DIALECTS = ["original"]
    ensure_intake_wiring()
    names_left = [
        rule["Name"] for rule in aws_client("events").list_rules(EventBusName="sbt-control-plane-bus")["Rules"]
    ]
    assert names["sbt_rule"] not in names_left
