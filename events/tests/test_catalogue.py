"""Each detail-type's schema: the sample passes; each required field and rule is enforced with its path."""

import json

import pytest

from events.catalogue import DETAIL_SCHEMAS, DetailType, tenant_id_of
from events.intake.envelope import envelope_validate
from events.samples import all_samples, sample_envelope
from orchestrator.errors import ApplicationError

TENANT_ID = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8e1c0a51"


def field_errors(envelope):
    with pytest.raises(ApplicationError) as caught:
        envelope_validate(envelope)
    assert caught.value.status_code == 400
    return caught.value.fields


def test_there_is_one_sample_per_catalogue_type():
    samples = all_samples()

    assert set(samples) == set(DetailType.ALL) == set(DETAIL_SCHEMAS)
    assert all(body["detail-type"] == name for name, body in samples.items())


@pytest.mark.parametrize("detail_type", DetailType.ALL)
def test_each_sample_is_valid_and_names_its_tenant(detail_type):
    envelope = envelope_validate(sample_envelope(detail_type))

    assert envelope.detail_type == detail_type
    assert envelope.tenant_id == TENANT_ID


@pytest.mark.parametrize(
    ("detail_type", "path", "mutate"),
    [
        (DetailType.TENANT_PROVISIONING, "detail.tenant", lambda d: d.pop("tenant")),
        (DetailType.TENANT_PROVISIONING, "detail.tenant.id", lambda d: d["tenant"].pop("id")),
        (DetailType.TENANT_PROVISIONING, "detail.tenant.key", lambda d: d["tenant"].pop("key")),
        (DetailType.TENANT_PROVISIONING, "detail.tenant.key", lambda d: d["tenant"].update(key="-bad key-")),
        (
            DetailType.TENANT_PROVISIONING,
            "detail.tenant.contacts.0.email",
            lambda d: d["tenant"]["contacts"][0].update(email="nope"),
        ),
        (DetailType.TENANT_PROVISIONING, "detail.planConfig.tier", lambda d: d["planConfig"].pop("tier")),
        (
            DetailType.TENANT_PROVISIONING,
            "detail.planConfig.features.0.key",
            lambda d: d["planConfig"]["features"][0].pop("key"),
        ),
        (DetailType.TENANT_PROVISIONING, "detail.builderConfig.type", lambda d: d["builderConfig"].pop("type")),
        (DetailType.TENANT_PROVISIONING, "detail.builderConfig", lambda d: d.pop("builderConfig")),
        (DetailType.TENANT_DEPROVISIONING, "detail.tenant.id", lambda d: d["tenant"].pop("id")),
        (DetailType.TENANT_PROVISIONING_SUCCESS, "detail.tenant", lambda d: d.update(tenant="{not json")),
        (DetailType.TENANT_PROVISIONING_SUCCESS, "detail.tenant", lambda d: d.update(tenant="[1, 2]")),
        (DetailType.TENANT_PROVISIONING_SUCCESS, "detail.tenant", lambda d: d.pop("tenant")),
        (
            DetailType.TENANT_PROVISIONING_FAILURE,
            "detail.CODEBUILD_BUILD_SUCCEEDING",
            lambda d: d.update(CODEBUILD_BUILD_SUCCEEDING="2"),
        ),
        (DetailType.TENANT_DEPLOYMENT, "detail.tenant.id", lambda d: d.update(tenant=json.dumps({"name": "no id"}))),
        (DetailType.TENANT_DEPLOYMENT_SUCCESS, "detail.tenant", lambda d: d.pop("tenant")),
        (DetailType.TENANT_DEPLOYMENT_FAILURE, "detail.tenant", lambda d: d.update(tenant=17)),
        (DetailType.CODEBUILD_BUILD_STATE_CHANGE, "detail.build-status", lambda d: d.pop("build-status")),
        (
            DetailType.CODEBUILD_BUILD_STATE_CHANGE,
            "detail.build-status",
            lambda d: d.update({"build-status": "EXPLODED"}),
        ),
        (DetailType.CODEBUILD_BUILD_STATE_CHANGE, "detail.project-name", lambda d: d.pop("project-name")),
        (DetailType.CODEBUILD_BUILD_STATE_CHANGE, "detail.build-id", lambda d: d.pop("build-id")),
    ],
)
def test_detail_schema_rules_name_the_field(detail_type, path, mutate):
    envelope = sample_envelope(detail_type)
    mutate(envelope["detail"])

    errors = field_errors(envelope)

    assert path in errors, errors


@pytest.mark.parametrize(
    "detail_type",
    [DetailType.TENANT_PROVISIONING_SUCCESS, DetailType.TENANT_DEPLOYMENT, DetailType.TENANT_DEPLOYMENT_FAILURE],
)
def test_tenant_may_arrive_as_a_json_string_or_an_object(detail_type):
    as_string = sample_envelope(detail_type)
    as_object = sample_envelope(detail_type)
    as_object["detail"]["tenant"] = json.loads(as_string["detail"]["tenant"])

    from_string = envelope_validate(as_string)
    from_object = envelope_validate(as_object)

    assert from_string.detail["tenant"] == from_object.detail["tenant"]
    assert from_string.detail["tenant"]["key"] == "acme"


def test_unknown_detail_fields_are_kept_at_every_level():
    envelope = sample_envelope(DetailType.TENANT_PROVISIONING)
    envelope["detail"]["extra"] = {"nested": [1, 2]}
    envelope["detail"]["planConfig"]["billingCycle"] = "monthly"
    envelope["detail"]["tenant"]["contacts"][0]["phone"] = "+1-555-0100"

    detail = envelope_validate(envelope).detail

    assert detail["extra"] == {"nested": [1, 2]}
    assert detail["planConfig"]["billingCycle"] == "monthly"
    assert detail["tenant"]["contacts"][0]["phone"] == "+1-555-0100"
    assert detail["builderConfig"]["config"]["environmentOverride"]["MAX_USERS"] == "50"


def test_codebuild_detail_keeps_aws_hyphenated_keys():
    detail = envelope_validate(sample_envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE)).detail

    assert detail["build-status"] == "SUCCEEDED"
    assert detail["project-name"] == "orchestrator-basic-provision"
    assert detail["additional-information"]["environment"]["environment-variables"][0]["name"] == "TENANT_ID"


def test_tenant_id_of_a_codebuild_event_falls_back_to_the_tenant_variable():
    detail = sample_envelope(DetailType.CODEBUILD_BUILD_STATE_CHANGE)["detail"]
    variables = detail["additional-information"]["environment"]["environment-variables"]
    variables[:] = [v for v in variables if v["name"] != "TENANT_ID"]

    assert tenant_id_of(DetailType.CODEBUILD_BUILD_STATE_CHANGE, detail) == TENANT_ID
    assert tenant_id_of(DetailType.CODEBUILD_BUILD_STATE_CHANGE, {"build-status": "FAILED"}) == ""


@pytest.mark.parametrize(
    ("detail_type", "detail", "field"),
    [
        ("TENANT_UPDATE", {"tenant": {"id": "t1"}}, "planConfig"),
        ("TENANT_UPDATE", {"tenant": {"id": "t1"}, "planConfig": {"id": "p"}}, "tier"),
        (
            "TENANT_UPDATE",
            {"tenant": {"id": "t1"}, "planConfig": {"tier": "B", "sizeConfig": {"LD_PRELOAD": 1}}},
            "sizeConfig",
        ),
        ("TENANT_SUSPEND", {"reason": "unpaid"}, "tenant"),
        ("TENANT_RESUME", {"tenant": {}}, "id"),
    ],
)
def test_operation_details_missing_what_their_handler_needs_are_refused_with_the_field(detail_type, detail, field):
    schema = DETAIL_SCHEMAS[detail_type](data=detail)

    assert not schema.is_valid()
    assert field in json.dumps(schema.errors)
