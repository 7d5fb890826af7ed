"""Staff API: list with filters, detail with attempts (secrets masked), replay as a new attempt."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus, ReceivedEvent
from events.services import event_process
from orchestrator.tests.factories import UserFactory

from .factories import OperatorFactory, ReceivedEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client():
    client = APIClient()
    client.force_authenticate(OperatorFactory())
    return client


def test_list_and_filters(staff_client):
    tenant_a = ReceivedEventFactory(tenant_id="a", kind=DetailType.TENANT_PROVISIONING)
    failed = ReceivedEventFactory(tenant_id="b", status=EventStatus.FAILED)
    old = ReceivedEventFactory(tenant_id="b")
    ReceivedEvent.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=3))

    def ids(**params):
        response = staff_client.get("/api/events/", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids() == {tenant_a.pk, failed.pk, old.pk}
    assert ids(tenant_id="a") == {tenant_a.pk}
    assert ids(status="failed") == {failed.pk}
    assert ids(detail_type=DetailType.TENANT_PROVISIONING) == {tenant_a.pk}
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert ids(received_after=cutoff) == {tenant_a.pk, failed.pk}
    assert ids(received_before=cutoff) == {old.pk}


def test_invalid_filter_is_400_in_the_standard_shape(staff_client):
    response = staff_client.get("/api/events/", {"status": "bogus", "received_after": "nope"})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"status", "received_after"}


def test_detail_shows_attempts_and_masks_secrets(staff_client, recorder):
    event = ReceivedEventFactory(kind=DetailType.TENANT_PROVISIONING_SUCCESS)
    recorder.errors[DetailType.TENANT_PROVISIONING_SUCCESS] = RuntimeError("boom password=hunter2")
    event_process(event_pk=event.pk)

    response = staff_client.get(f"/api/events/{event.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "retrying"
    assert body["attempt_log"][0]["outcome"] == "failed"
    assert "hunter2" not in response.content.decode()
    assert body["detail"]["secret"] == "********"
    assert body["detail"]["CLIENT_SECRET"] == "********"
    assert "example-hmac-secret-not-real" not in response.content.decode()
    assert body["detail"]["API_ENDPOINT"] == "https://control-plane.example/webhook"


def test_missing_event_is_404(staff_client):
    assert staff_client.get("/api/events/999999/").json()["error"]["code"] == "not_found"


def test_replay_runs_the_handler_again_as_a_new_attempt_by_the_user(recorder, django_capture_on_commit_callbacks):
    staff = OperatorFactory()
    client = APIClient()
    client.force_authenticate(staff)
    recorder.errors[DetailType.TENANT_DEPROVISIONING] = RuntimeError("down")
    event = ReceivedEventFactory()
    with override_max_attempts(1):
        event_process(event_pk=event.pk)
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    recorder.errors.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/events/{event.pk}/replay/")

    assert response.status_code == 202, response.content
    assert response.json()["queued"] is True
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    second = EventAttempt.objects.get(event=event, number=2)
    assert second.requested_by == staff
    assert second.outcome == "succeeded"
    assert recorder.count(event.pk) == 2


def test_replay_of_an_event_waiting_to_run_is_idempotent(staff_client, recorder):
    event = ReceivedEventFactory()

    response = staff_client.post(f"/api/events/{event.pk}/replay/")

    assert response.status_code == 202
    assert response.json()["queued"] is False
    assert recorder.count() == 0


def test_replay_while_running_is_409(staff_client):
    event = ReceivedEventFactory(status=EventStatus.PROCESSING, started_at=timezone.now(), attempts=1)

    response = staff_client.post(f"/api/events/{event.pk}/replay/")

    assert response.status_code == 409


@pytest.mark.parametrize("method", ["get_list", "get_detail", "replay"])
def test_staff_only(method):
    event = ReceivedEventFactory()
    calls = {
        "get_list": lambda c: c.get("/api/events/"),
        "get_detail": lambda c: c.get(f"/api/events/{event.pk}/"),
        "replay": lambda c: c.post(f"/api/events/{event.pk}/replay/"),
    }
    anonymous = APIClient()
    regular = APIClient()
    regular.force_authenticate(UserFactory())
    intake_key = APIClient(HTTP_X_API_KEY="test-intake-key")

    assert calls[method](anonymous).status_code in (401, 403)
    assert calls[method](regular).status_code == 403
    assert calls[method](intake_key).status_code in (401, 403)
    assert ReceivedEvent.objects.get(pk=event.pk).status == EventStatus.ACCEPTED


def test_drf_token_authentication_works():
    token = Token.objects.create(user=OperatorFactory())
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.get("/api/events/").status_code == 200


def test_list_query_budget(staff_client, django_assert_max_num_queries):
    ReceivedEventFactory.create_batch(20)

    with django_assert_max_num_queries(4):
        assert staff_client.get("/api/events/").status_code == 200


def override_max_attempts(n):
    from django.test import override_settings

    return override_settings(EVENT_MAX_ATTEMPTS=n)
