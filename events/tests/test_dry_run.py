"""The dry run's edge: staff only, validated exactly as the intake validates (the same 400s), the intake's
answer read from what is stored, the handler named; nothing stored."""

import json

import pytest
from rest_framework.test import APIClient

from events.catalogue import DetailType
from events.models import ReceivedEvent
from events.samples import sample_envelope
from events.tests.conftest import post_event
from events.tests.factories import OperatorFactory
from orchestrator.tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/events/dry-run/"


@pytest.fixture
def staff_api():
    client = APIClient()
    client.force_authenticate(OperatorFactory())
    return client


def dry_run(client, body, **kwargs):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(URL, data=data, content_type=kwargs.pop("content_type", "application/json"), **kwargs)


@pytest.mark.parametrize(
    "change",
    [
        lambda body: body.pop("detail"),
        lambda body: body.update({"account": "12"}),
        lambda body: body.update({"detail-type": "NOT_A_TYPE"}),
        lambda body: body["detail"].pop("tenant"),
        lambda body: body.update({"time": "yesterday"}),
    ],
    ids=["no detail", "bad account", "unknown type", "detail without tenant", "bad time"],
)
def test_an_invalid_event_gets_the_intakes_400(client, staff_api, change):
    # Given an envelope the intake refuses
    body = sample_envelope(DetailType.TENANT_PROVISIONING)
    change(body)
    intake = post_event(client, body)
    assert intake.status_code == 400

    # When staff dry-run it
    response = dry_run(staff_api, body)

    # Then the answer is the intake's own 400, field by field, and nothing is stored
    assert response.status_code == 400
    assert response.json() == intake.json()
    assert response.json()["error"]["fields"]
    assert not ReceivedEvent.objects.exists()


def test_malformed_json_and_wrong_content_type_are_refused_in_the_standard_shape(staff_api):
    malformed = dry_run(staff_api, "{not json")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"

    wrong_type = dry_run(staff_api, "a=b", content_type="application/x-www-form-urlencoded")
    assert wrong_type.status_code == 415
    assert "error" in wrong_type.json()


@pytest.mark.parametrize(
    ("user_factory", "allowed"), [(UserFactory, False), (StaffFactory, False), (OperatorFactory, True)]
)
def test_only_staff_allowed_to_read_events_may_dry_run(user_factory, allowed):
    client = APIClient()
    client.force_authenticate(user_factory())

    response = dry_run(client, sample_envelope(DetailType.TENANT_DEPLOYMENT_SUCCESS))

    assert response.status_code == (200 if allowed else 403)


def test_anonymous_callers_are_refused(client):
    response = dry_run(client, sample_envelope(DetailType.TENANT_DEPLOYMENT_SUCCESS))

    assert response.status_code in (401, 403)
    assert "error" in response.json()


def test_the_intakes_answer_is_read_from_what_is_stored(client, staff_api):
    # Given an event already received
    body = sample_envelope(DetailType.TENANT_DEPLOYMENT_SUCCESS)
    assert post_event(client, body).status_code == 202
    stored = ReceivedEvent.objects.get(event_id=body["id"])

    # When the same body is dry-run, then it is a duplicate the handler would not run again
    same = dry_run(staff_api, body).json()["intake"]
    assert (same["status"], same["answer"], same["stored_pk"]) == (200, "duplicate", stored.pk)

    # When another body comes with the same id, then it would be refused as a conflict
    body["detail"]["note"] = "changed"
    other = dry_run(staff_api, body).json()["intake"]
    assert (other["status"], other["answer"]) == (409, "conflict")
    assert ReceivedEvent.objects.count() == 1


def test_a_type_without_a_preview_names_its_handler_and_shows_no_effect(staff_api):
    body = sample_envelope(DetailType.TENANT_DEPLOYMENT_SUCCESS)

    answer = dry_run(staff_api, body).json()

    assert answer["event"]["id"] == body["id"]
    assert answer["event"]["detail_type"] == DetailType.TENANT_DEPLOYMENT_SUCCESS
    assert answer["intake"]["answer"] == "accepted"
    assert answer["handler"]["name"] == "tenants.services.outcomes.deployment_outcome_record"
    assert answer["effect"] is None


# --- The admin form -------------------------------------------------------------------------------------

FORM_URL = "/admin/events/receivedevent/dry-run/"


@pytest.fixture
def operator_browser(client):
    client.force_login(OperatorFactory())
    return client


def test_the_events_admin_links_to_a_form_prefilled_with_a_sample(operator_browser):
    changelist = operator_browser.get("/admin/events/receivedevent/")
    assert FORM_URL in changelist.content.decode()

    page = operator_browser.get(FORM_URL, {"type": DetailType.TENANT_DEPROVISIONING})

    assert page.status_code == 200
    assert json.loads(page.context["form"].initial["event"])["detail-type"] == DetailType.TENANT_DEPROVISIONING


def test_the_form_shows_what_the_api_answers_and_stores_nothing(operator_browser, staff_api):
    # Given an event the intake would accept
    body = sample_envelope(DetailType.TENANT_DEPLOYMENT_SUCCESS)

    # When staff submit it in the admin form
    page = operator_browser.post(FORM_URL, {"event": json.dumps(body)})

    # Then the page shows the API's answer, and nothing is stored
    assert page.status_code == 200
    assert page.context["result"] == dry_run(staff_api, body).json()
    html = page.content.decode()
    assert 'data-intake="accepted"' in html
    assert "tenants.services.outcomes.deployment_outcome_record" in html
    assert not ReceivedEvent.objects.exists()


def test_the_form_shows_the_intakes_field_errors(operator_browser):
    body = sample_envelope(DetailType.TENANT_PROVISIONING)
    body["account"] = "12"

    page = operator_browser.post(FORM_URL, {"event": json.dumps(body)})

    assert page.status_code == 400
    assert 'data-field="account"' in page.content.decode()
    malformed = operator_browser.post(FORM_URL, {"event": "{oops"})
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.content.decode()


def test_staff_without_the_view_permission_cannot_open_the_form(client):
    client.force_login(StaffFactory())

    assert client.get(FORM_URL).status_code == 403
