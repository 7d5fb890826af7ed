"""Admin: read-only events with filters/search, masked payload, attempts inline, POST-only Replay."""

import pytest
from django.urls import reverse

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus, OutboxEvent, ReceivedEvent
from events.samples import sample_envelope
from events.services import event_process

from .factories import OutboxEventFactory, ReceivedEventFactory

pytestmark = pytest.mark.django_db


def test_changelist_filters_and_search(admin_client):
    match = ReceivedEventFactory(tenant_id="tenant-findme")
    other = ReceivedEventFactory(tenant_id="someone-else", status=EventStatus.FAILED)
    url = reverse("admin:events_receivedevent_changelist")

    assert admin_client.get(url).status_code == 200
    found = admin_client.get(url, {"q": "findme"}).content.decode()
    assert match.event_id in found
    assert other.event_id not in found
    by_id = admin_client.get(url, {"q": other.event_id}).content.decode()
    assert other.event_id in by_id
    assert match.event_id not in by_id
    failed = admin_client.get(url, {"status__exact": "failed"}).content.decode()
    assert other.event_id in failed
    assert match.event_id not in failed


def test_detail_page_masks_secrets_and_shows_attempts(admin_client, recorder):
    event = ReceivedEventFactory(kind=DetailType.TENANT_PROVISIONING_SUCCESS)
    recorder.errors[DetailType.TENANT_PROVISIONING_SUCCESS] = RuntimeError("webhook said 500")
    event_process(event_pk=event.pk)

    page = admin_client.get(reverse("admin:events_receivedevent_change", args=[event.pk])).content.decode()

    assert "example-hmac-secret-not-real" not in page
    assert "example-client-secret-not-real" not in page
    assert "********" in page
    assert "webhook said 500" in page
    assert "Replay" in page
    assert "&quot;API_ENDPOINT&quot;: &quot;https://control-plane.example/webhook&quot;" in page


def test_events_cannot_be_added_changed_or_deleted(admin_client):
    event = ReceivedEventFactory()

    assert admin_client.get(reverse("admin:events_receivedevent_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:events_receivedevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    admin_client.post(reverse("admin:events_receivedevent_change", args=[event.pk]), {"tenant_id": "changed"})
    assert ReceivedEvent.objects.get(pk=event.pk).tenant_id == event.tenant_id


def test_replay_is_post_only_and_records_the_staff_user(
    admin_client, admin_user, recorder, django_capture_on_commit_callbacks
):
    event = ReceivedEventFactory(status=EventStatus.FAILED, attempts=5, last_error="old failure")
    url = reverse("admin:events_receivedevent_replay", args=[event.pk])

    assert admin_client.get(url).status_code == 405
    assert recorder.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url)

    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED
    attempt = EventAttempt.objects.get(event=event, number=6)
    assert attempt.requested_by == admin_user
    assert recorder.count(event.pk) == 1


def test_replay_twice_is_a_message_not_an_error(admin_client, recorder):
    event = ReceivedEventFactory(status=EventStatus.FAILED, attempts=1)
    url = reverse("admin:events_receivedevent_replay", args=[event.pk])

    admin_client.post(url)  # queued; on_commit never runs in this test, so it stays queued
    response = admin_client.post(url, follow=True)

    assert response.status_code == 200
    assert "Already queued" in response.content.decode()


def test_non_staff_cannot_replay(client, django_user_model):
    user = django_user_model.objects.create_user("plain", password="pw")
    client.force_login(user)
    event = ReceivedEventFactory(status=EventStatus.FAILED)

    response = client.post(reverse("admin:events_receivedevent_replay", args=[event.pk]))

    assert response.status_code == 302  # to the admin login
    assert ReceivedEvent.objects.get(pk=event.pk).status == EventStatus.FAILED


def test_outbox_admin_is_read_only(admin_client):
    entry = OutboxEventFactory(detail={"secret": "outbox-secret-value", "tenant": {"id": "t1"}})

    page = admin_client.get(reverse("admin:events_outboxevent_change", args=[entry.pk]))

    assert page.status_code == 200
    assert "outbox-secret-value" not in page.content.decode()
    assert admin_client.get(reverse("admin:events_outboxevent_add")).status_code == 403
    assert OutboxEvent.objects.count() == 1


def test_an_event_nested_hundreds_of_levels_deep_still_shows(admin_client):
    # Given an event stored before the intake capped nesting (450 levels under its detail)
    deep = {"leaf": "bottom", "secret": "deep-secret"}
    for _ in range(450):
        deep = {"a": deep}
    envelope = {**sample_envelope(DetailType.TENANT_DEPROVISIONING), "nested": deep}
    event = ReceivedEventFactory(envelope=envelope, detail={**envelope["detail"], "nested": deep})

    # When staff open it, then it shows, cut where it is too deep to print, its secret masked
    page = admin_client.get(reverse("admin:events_receivedevent_change", args=[event.pk]))

    assert page.status_code == 200
    assert "nested deeper than 100 levels" in page.content.decode()
    assert "deep-secret" not in page.content.decode()
