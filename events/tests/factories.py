import uuid
from datetime import timedelta

import factory
from django.conf import settings
from django.utils import timezone

from events.catalogue import DetailType
from events.intake.envelope import canonical_sha256
from events.models import EventAttempt, EventStatus, OutboxEvent, ReceivedEvent
from events.samples import sample_envelope
from orchestrator.tests.factories import StaffFactory


class OperatorFactory(StaffFactory):
    """Staff allowed to read and replay events (what the "Operators" group grants)."""

    @factory.post_generation
    def event_permissions(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            from django.contrib.auth.models import Permission

            self.user_permissions.add(
                *Permission.objects.filter(codename__in=["view_receivedevent", "replay_receivedevent"])
            )


class ReceivedEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReceivedEvent

    class Params:
        kind = DetailType.TENANT_DEPROVISIONING

    event_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    detail_type = factory.SelfAttribute("kind")
    source = "saas.tenant-management"
    account = "123456789012"
    region = "us-east-1"
    time = factory.LazyFunction(timezone.now)
    resources = factory.LazyFunction(list)
    detail = factory.LazyAttribute(lambda o: sample_envelope(o.kind)["detail"])
    envelope = factory.LazyAttribute(lambda o: {**sample_envelope(o.kind), "id": o.event_id})
    body_sha256 = factory.LazyAttribute(lambda o: canonical_sha256(o.envelope))
    tenant_id = "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8e1c0a51"
    status = EventStatus.ACCEPTED


class OutboxEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutboxEvent

    detail_type = DetailType.TENANT_DEPLOYMENT
    source = "saas.orchestrator"
    detail = factory.Sequence(lambda n: {"tenant": {"id": f"t{n}"}, "n": n})
    event_bus = factory.LazyFunction(lambda: settings.EVENT_BUS_NAME)
    tenant_id = factory.Sequence(lambda n: f"t{n}")


def failed_event(
    kind: str, *, detail: dict, tenant_id: str, outcome: str = EventAttempt.Outcome.FAILED
) -> ReceivedEvent:
    """An event whose handler failed on its fifth and last attempt (the worker lost its database, say); with
    ``outcome=REJECTED``, one its handler refused."""
    event = ReceivedEventFactory(
        kind=kind,
        detail=detail,
        tenant_id=tenant_id,
        status=EventStatus.FAILED,
        attempts=5,
        last_error="OperationalError: the connection was lost",
        finished_at=timezone.now() - timedelta(minutes=40),
    )
    EventAttempt.objects.create(event=event, number=5, outcome=outcome, error=event.last_error)
    return event
