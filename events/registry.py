"""The one map from an EventBridge ``detail-type`` to its detail schema and its handler.

Each app registers its own types in its ``event_handlers`` module (imported from ``AppConfig.ready``):

    registry.register(
        DetailType.TENANT_PROVISIONING, schema=ProvisioningDetail, handler=handle_tenant_provisioning
    )

A handler receives the stored event and the validated detail, runs inside a Celery task, must be
idempotent (an event can be re-run after a crash or replayed by staff), and returns a JSON-able result
that is stored on the event. ``EventRejected`` marks the event failed for good (no retry); any other
exception is retried with backoff.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

if TYPE_CHECKING:
    from events.models import ReceivedEvent

Handler = Callable[["ReceivedEvent", dict[str, Any]], dict[str, Any] | None]


class EventRejected(Exception):
    """The event is valid but cannot be applied (e.g. a tenant already active); recorded, not retried."""


class DuplicateRegistration(Exception):
    pass


@dataclass(frozen=True)
class EventType:
    detail_type: str
    schema: type[serializers.Serializer]
    handler: Handler
    description: str = ""


_registry: dict[str, EventType] = {}


def register(
    detail_type: str,
    *,
    schema: type[serializers.Serializer],
    handler: Handler,
    description: str = "",
) -> EventType:
    if detail_type in _registry:
        raise DuplicateRegistration(f"detail-type {detail_type!r} is registered twice")
    event_type = EventType(detail_type=detail_type, schema=schema, handler=handler, description=description)
    _registry[detail_type] = event_type
    return event_type


def get(detail_type: str) -> EventType | None:
    return _registry.get(detail_type)


def supported() -> list[str]:
    return sorted(_registry)


def all_types() -> list[EventType]:
    return [_registry[name] for name in supported()]
