"""Publishing from the outbox: PutEvents in batches of 10 against moto_server, failed entries retried
alone, rows sent with EventBridge's EventId, EventBridge outages survived."""

import json
import uuid

import pytest
from django.conf import settings
from django.test import override_settings

from devstack.processes import free_port
from events import publisher
from events.catalogue import DetailType
from events.models import OutboxEvent, OutboxStatus
from events.publisher import outbox_send_batch, outbox_send_pending
from events.services import outbox_publish
from orchestrator.aws import aws_client

from .factories import OutboxEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bus_tap(aws):
    """An SQS queue receiving everything the orchestrator emits on its bus (source saas.orchestrator)."""
    sqs, events = aws_client("sqs"), aws_client("events")
    url = sqs.create_queue(QueueName=f"tap-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="tap", EventBusName=settings.EVENT_BUS_NAME, EventPattern=json.dumps({"source": [settings.EVENT_SOURCE]})
    )
    events.put_targets(Rule="tap", EventBusName=settings.EVENT_BUS_NAME, Targets=[{"Id": "tap", "Arn": arn}])

    def received():
        bodies = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    return received


class CountingClient:
    """The real (moto) client, counting PutEvents calls; optionally failing chosen entries once."""

    def __init__(self, real, fail_first=()):
        self.real = real
        self.calls = []
        self.fail_first = set(fail_first)

    def put_events(self, Entries):
        self.calls.append([json.loads(entry["Detail"])["n"] for entry in Entries])
        if len(self.calls) == 1 and self.fail_first:
            failing = [i for i, e in enumerate(Entries) if json.loads(e["Detail"])["n"] in self.fail_first]
            passing = [e for i, e in enumerate(Entries) if i not in failing]
            sent = iter(self.real.put_events(Entries=passing)["Entries"]) if passing else iter(())
            results = [
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"} if i in failing else next(sent)
                for i in range(len(Entries))
            ]
            return {"FailedEntryCount": len(failing), "Entries": results}
        return self.real.put_events(Entries=Entries)


def test_outbox_publish_sends_after_commit_with_the_eventbridge_id(bus_tap, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        entry = outbox_publish(
            detail_type=DetailType.TENANT_DEPLOYMENT, detail={"tenant": {"id": "t1"}}, tenant_id="t1"
        )

    entry.refresh_from_db()
    assert entry.status == OutboxStatus.SENT
    assert entry.eventbridge_id
    [event] = bus_tap()
    assert event["id"] == entry.eventbridge_id
    assert event["detail-type"] == DetailType.TENANT_DEPLOYMENT
    assert event["detail"] == {"tenant": {"id": "t1"}}


def test_batches_are_at_most_ten_entries(bus_tap, monkeypatch):
    client = CountingClient(aws_client("events"))
    monkeypatch.setattr(publisher, "aws_client", lambda service: client)
    rows = [OutboxEventFactory(detail={"n": n}) for n in range(23)]

    report = outbox_send_batch(outbox_pks=[row.pk for row in rows])

    assert [len(call) for call in client.calls] == [10, 10, 3]
    assert len(report.sent) == 23
    assert OutboxEvent.objects.filter(status=OutboxStatus.SENT).count() == 23
    assert sorted(event["detail"]["n"] for event in bus_tap()) == list(range(23))


@override_settings(OUTBOX_RETRY_BACKOFF_SECONDS=0)
def test_only_failed_entries_are_retried(bus_tap, monkeypatch):
    client = CountingClient(aws_client("events"), fail_first={2, 5})
    monkeypatch.setattr(publisher, "aws_client", lambda service: client)
    rows = [OutboxEventFactory(detail={"n": n}) for n in range(7)]

    outbox_send_batch(outbox_pks=[row.pk for row in rows])

    assert client.calls == [list(range(7)), [2, 5]]
    assert OutboxEvent.objects.filter(status=OutboxStatus.SENT).count() == 7
    received = sorted(event["detail"]["n"] for event in bus_tap())
    assert received == list(range(7))  # each exactly once


def test_a_permanently_refused_entry_fails_without_retry(aws, monkeypatch):
    class Refusing:
        calls = 0

        def put_events(self, Entries):
            Refusing.calls += 1
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "MalformedDetail", "ErrorMessage": "bad"}]}

    monkeypatch.setattr(publisher, "aws_client", lambda service: Refusing())
    row = OutboxEventFactory(detail={"n": 1})

    outbox_send_batch(outbox_pks=[row.pk])

    row.refresh_from_db()
    assert Refusing.calls == 1
    assert row.status == OutboxStatus.FAILED
    assert row.last_error.startswith("MalformedDetail")


@override_settings(OUTBOX_RETRY_BACKOFF_SECONDS=0, OUTBOX_SEND_ATTEMPTS=2)
def test_eventbridge_down_keeps_rows_pending_until_the_beat_resends_them(bus_tap, django_capture_on_commit_callbacks):
    dead = f"http://127.0.0.1:{free_port()}"
    endpoints = {**settings.AWS_SERVICE_ENDPOINT_URLS, "events": dead}
    with (
        override_settings(AWS_SERVICE_ENDPOINT_URLS=endpoints, AWS_CONNECT_TIMEOUT=0.5),
        django_capture_on_commit_callbacks(execute=True),
    ):
        entry = outbox_publish(detail_type=DetailType.TENANT_DEPLOYMENT, detail={"n": 1})
    entry.refresh_from_db()
    assert entry.status == OutboxStatus.PENDING
    assert entry.attempts == 1
    assert "EndpointConnectionError" in entry.last_error

    # EventBridge is back; the beat task picks up pending rows older than the threshold.
    assert outbox_send_pending(older_than_seconds=0) == 1

    entry.refresh_from_db()
    assert entry.status == OutboxStatus.SENT
    assert [event["detail"] for event in bus_tap()] == [{"n": 1}]


def test_the_beat_leaves_young_rows_to_their_own_task(aws):
    OutboxEventFactory()

    assert outbox_send_pending() == 0
