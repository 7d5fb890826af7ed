"""The envelope rules: every field missing or invalid is a 400 naming it; nothing is stored."""

import json

import pytest
from django.test import override_settings

from events.catalogue import DetailType
from events.models import ReceivedEvent

pytestmark = pytest.mark.django_db

ENVELOPE_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")


def assert_refused(response, status, field=None, code=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    if field is not None:
        assert field in error["fields"], error
    if code is not None:
        assert error["code"] == code
    assert ReceivedEvent.objects.count() == 0
    return error


@pytest.mark.parametrize("name", ENVELOPE_FIELDS)
def test_each_missing_envelope_field_is_named(intake, sample, recorder, name):
    body = sample(DetailType.TENANT_PROVISIONING)
    del body[name]

    error = assert_refused(intake(body), 400, field=name)

    assert error["fields"][name] == ["This field is required."]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("version", 0),
        ("id", ""),
        ("id", "   "),
        ("id", 123),
        ("id", "x" * 257),
        ("source", None),
        ("account", "12345"),
        ("account", "12345678901a"),
        ("account", 123456789012),
        ("time", "yesterday"),
        ("time", "2025-01-15T10:30:00"),  # no time zone
        ("time", 1736937000),
        ("region", ["us-east-1"]),
        ("resources", "arn:aws:x"),
        ("resources", [1, 2]),
        ("resources", {"a": 1}),
        ("detail", "not an object"),
        ("detail", ["a"]),
        ("detail", None),
        ("detail-type", 7),
    ],
)
def test_each_invalid_envelope_field_is_named(intake, sample, recorder, name, value):
    body = sample(DetailType.TENANT_PROVISIONING)
    body[name] = value

    assert_refused(intake(body), 400, field=name, code="invalid_event")


def test_unknown_detail_type_lists_the_supported_ones(intake, sample, recorder):
    body = sample(DetailType.TENANT_PROVISIONING)
    body["detail-type"] = "TENANT_EXPLODED"

    error = assert_refused(intake(body), 400, field="detail-type")

    for name in DetailType.ALL:
        assert name in error["message"]
        assert name in error["fields"]["detail-type"][0]


def test_non_empty_resources_and_unknown_fields_are_kept(intake, sample, recorder, django_capture_on_commit_callbacks):
    body = sample(DetailType.TENANT_PROVISIONING)
    body["resources"] = ["arn:aws:events:us-east-1:123456789012:rule/x"]
    body["replay-name"] = "archive-replay-1"
    body["detail"]["tenant"]["billingTier"] = "gold"

    with django_capture_on_commit_callbacks(execute=True):
        response = intake(body)

    assert response.status_code == 202, response.content
    event = ReceivedEvent.objects.get()
    assert event.resources == body["resources"]
    assert event.envelope["replay-name"] == "archive-replay-1"
    assert event.detail["tenant"]["billingTier"] == "gold"


def test_time_with_offset_is_stored_in_utc(intake, sample, recorder):
    body = sample(DetailType.TENANT_DEPROVISIONING)
    body["time"] = "2025-01-15T12:30:00+02:00"

    assert intake(body).status_code == 202

    assert ReceivedEvent.objects.get().time.isoformat() == "2025-01-15T10:30:00+00:00"


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"\xff\xfe{}", b'{"a": NaN}', b"[1e999]", b"[" * 100000 + b"]" * 100000],
    ids=["syntax", "empty", "not-utf8", "nan", "infinite", "deep"],
)
def test_non_json_is_400(intake, raw, recorder):
    assert_refused(intake(raw), 400)


@pytest.mark.parametrize(
    "body",
    [[], "just a string", 42, None],
    ids=["array", "string", "number", "null"],
)
def test_a_body_that_is_not_one_object_is_400(intake, body, recorder):
    assert_refused(intake(json.dumps(body)), 400, field="body")


@pytest.mark.parametrize("text", ["nul\u0000inside", "lone \ud800 surrogate"])
def test_strings_postgres_cannot_store_are_400_not_500(intake, sample, recorder, text):
    body = sample(DetailType.TENANT_DEPROVISIONING)
    body["detail"]["note"] = text

    raw = json.dumps(body)  # escapes both as \\u sequences, as a sender would
    assert_refused(intake(raw), 400, field="detail.note")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(intake, sample, recorder, content_type):
    assert_refused(intake(json.dumps(sample(DetailType.TENANT_DEPROVISIONING)), content_type=content_type), 415)


def test_json_with_charset_and_cloudevents_style_types_are_accepted(intake, sample, recorder):
    first = sample(DetailType.TENANT_DEPROVISIONING)
    second = {**sample(DetailType.TENANT_DEPROVISIONING), "id": "another-id"}

    assert intake(first, content_type="application/json; charset=utf-8").status_code == 202
    assert intake(second, content_type="application/cloudevents+json").status_code == 202


@override_settings(INTAKE_MAX_BODY_BYTES=2048)
def test_body_over_the_limit_is_413(intake, sample, recorder):
    body = sample(DetailType.TENANT_DEPROVISIONING)
    body["detail"]["padding"] = "x" * 4096

    error = assert_refused(intake(body), 413, code="payload_too_large")

    assert "2048" in error["message"]


def test_default_limit_is_256_kib(intake, sample, recorder):
    body = sample(DetailType.TENANT_DEPROVISIONING)
    body["detail"]["padding"] = "x" * (256 * 1024)

    assert_refused(intake(body), 413)


def test_original_path_requires_the_type_to_match(intake, sample, recorder):
    body = sample(DetailType.TENANT_PROVISIONING)

    response = intake(body, url="/orchestrator/events/TENANT_DEPROVISIONING")

    error = assert_refused(response, 400, field="detail-type")
    assert "TENANT_DEPROVISIONING" in error["fields"]["detail-type"][0]


def test_original_path_accepts_a_matching_event(intake, sample, recorder, django_capture_on_commit_callbacks):
    body = sample(DetailType.CODEBUILD_BUILD_STATE_CHANGE)

    with django_capture_on_commit_callbacks(execute=True):
        response = intake(body, url="/orchestrator/events/CodeBuild%20Build%20State%20Change")

    assert response.status_code == 202, response.content
    assert response.json() == {"id": body["id"], "status": "accepted"}
    assert recorder.count() == 1


def nested_body(sample, levels: int) -> bytes:
    """A valid TENANT_DEPROVISIONING envelope (level 1, its detail level 2) whose ``detail.note`` adds
    ``levels`` objects (written by hand: ``json.dumps`` itself recurses once per level)."""
    body = sample(DetailType.TENANT_DEPROVISIONING)
    body["detail"]["note"] = "__DEEP__"
    return json.dumps(body).replace('"__DEEP__"', '{"a":' * levels + '"leaf"' + "}" * levels).encode()


@pytest.mark.parametrize("levels", [63, 500, 900, 1_000, 10_000])
def test_a_body_nested_deeper_than_the_limit_is_400_naming_where(intake, sample, recorder, levels):
    error = assert_refused(intake(nested_body(sample, levels)), 400, code="json_too_deep")

    field, reasons = next(iter(error["fields"].items()))
    assert field in ("body", "detail.note" + ".a" * 62)  # the decoder's own limit, or the first container too deep
    assert reasons == ["Nested deeper than 64 levels (JSON_MAX_DEPTH)."]


def test_the_limit_is_a_setting_and_a_body_nested_exactly_to_it_is_accepted(intake, sample, recorder):
    with override_settings(JSON_MAX_DEPTH=10):
        assert_refused(intake(nested_body(sample, 9)), 400, field="detail.note" + ".a" * 8, code="json_too_deep")

    assert intake(nested_body(sample, 62)).status_code == 202  # 64 levels with the envelope and the detail
    assert ReceivedEvent.objects.get().detail["note"]["a"]["a"]["a"]


@pytest.mark.parametrize(
    ("detail_type", "remove", "field"),
    [
        (DetailType.TENANT_UPDATE, "planConfig", "detail.planConfig"),
        (DetailType.TENANT_SUSPEND, "tenant", "detail.tenant"),
        (DetailType.TENANT_RESUME, "tenant", "detail.tenant"),
    ],
)
def test_an_operation_without_what_it_needs_is_a_400_naming_the_field(
    intake, sample, recorder, detail_type, remove, field
):
    body = sample(detail_type)
    del body["detail"][remove]

    error = assert_refused(intake(body), 400)

    assert any(name.startswith(field) for name in error["fields"]), error
