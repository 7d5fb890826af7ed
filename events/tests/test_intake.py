"""Never lose, never double: stored before the answer, duplicates answered, conflicts refused,
a database outage is a 503 (EventBridge retries it)."""

import pytest
from django.db import connections

from devstack.processes import free_port
from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent


@pytest.mark.django_db
def test_accepted_event_is_stored_then_processed_once(intake, sample, recorder, django_capture_on_commit_callbacks):
    body = sample(DetailType.TENANT_PROVISIONING)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = intake(body)
    # The row exists before anything runs: the task is only queued for after the commit.
    assert response.status_code == 202
    assert response.json() == {"id": body["id"], "status": "accepted"}
    event = ReceivedEvent.objects.get(event_id=body["id"])
    assert event.status == EventStatus.ACCEPTED
    assert recorder.count() == 0
    assert len(callbacks) == 1

    callbacks[0]()

    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    assert event.result == {"handled": DetailType.TENANT_PROVISIONING}
    assert event.tenant_id == "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8e1c0a51"
    assert event.envelope == body
    assert recorder.count(event.pk) == 1
    assert recorder.calls[0][2]["tenant"]["key"] == "acme"


@pytest.mark.django_db
def test_redelivery_is_a_duplicate_and_the_handler_runs_once(
    intake, sample, recorder, django_capture_on_commit_callbacks
):
    body = sample(DetailType.TENANT_DEPROVISIONING)

    with django_capture_on_commit_callbacks(execute=True):
        first = intake(body)
        second = intake(body)
        third = intake(body, url="/orchestrator/events/TENANT_DEPROVISIONING")

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"id": body["id"], "status": "duplicate"}
    assert third.status_code == 200
    assert ReceivedEvent.objects.count() == 1
    assert recorder.count() == 1


@pytest.mark.django_db
def test_key_order_and_whitespace_do_not_make_a_conflict(intake, sample, recorder):
    import json

    body = sample(DetailType.TENANT_DEPROVISIONING)
    assert intake(body).status_code == 202

    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4)

    assert intake(reordered).status_code == 200


@pytest.mark.django_db
def test_same_id_with_another_body_is_409(intake, sample, recorder):
    body = sample(DetailType.TENANT_DEPROVISIONING)
    assert intake(body).status_code == 202
    changed = sample(DetailType.TENANT_DEPROVISIONING)
    changed["detail"]["tenant"]["name"] = "Someone Else"

    response = intake(changed)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "event_id_conflict"
    assert "id" in response.json()["error"]["fields"]
    assert ReceivedEvent.objects.get().detail["tenant"]["name"] == "Acme Corp"


@pytest.mark.django_db(transaction=True)
def test_database_down_is_503_not_500(intake, sample, recorder):
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        # A port nothing listens on: PostgreSQL "refuses connections".
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    else:
        connection.settings_dict["NAME"] = "/nonexistent-directory/orchestrator.sqlite3"
    try:
        response = intake(sample(DetailType.TENANT_DEPROVISIONING))
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] == "database_unavailable"
    assert response["Retry-After"]
    assert "Traceback" not in response.content.decode()
    assert ReceivedEvent.objects.count() == 0


@pytest.mark.django_db
def test_secrets_of_an_event_are_sealed_in_the_database_and_reach_the_handler_plain(
    intake, sample, recorder, django_capture_on_commit_callbacks
):
    body = sample(DetailType.TENANT_PROVISIONING_SUCCESS)
    secret = body["detail"]["secret"]

    with django_capture_on_commit_callbacks(execute=True):
        assert intake(body).status_code == 202

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT detail, envelope FROM events_receivedevent WHERE event_id = %s", [body["id"]])
        stored = " ".join(str(column) for column in cursor.fetchone())
    assert secret not in stored
    assert "sealed:v1:" in stored
    event = ReceivedEvent.objects.get(event_id=body["id"])
    assert event.detail["secret"] == secret
    assert event.envelope == body
    assert recorder.calls[0][2]["secret"] == secret
    assert intake(body).json()["status"] == "duplicate"  # the redelivery still matches what was stored


@pytest.mark.django_db
def test_the_detail_is_stored_once_unless_validation_changed_it(intake, sample, recorder):
    # given one event as the schema wants it, and one whose tenant name validation turns into a string
    plain = sample(DetailType.TENANT_PROVISIONING)
    coerced = sample(DetailType.TENANT_PROVISIONING)
    coerced["id"] += "-coerced"
    coerced["detail"]["tenant"]["name"] = 42

    assert intake(plain).status_code == 202
    assert intake(coerced).status_code == 202

    # then the first keeps its detail only inside the envelope, the second also stores the validated one
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT event_id, detail IS NULL FROM events_receivedevent")
        detail_is_null = dict(cursor.fetchall())
    assert detail_is_null == {plain["id"]: True, coerced["id"]: False}
    stored_plain = ReceivedEvent.objects.get(event_id=plain["id"])
    stored_coerced = ReceivedEvent.objects.get(event_id=coerced["id"])
    assert stored_plain.detail == plain["detail"]
    assert stored_coerced.detail["tenant"]["name"] == "42"  # what the handler is given
    assert stored_coerced.envelope["detail"]["tenant"]["name"] == 42  # as received
