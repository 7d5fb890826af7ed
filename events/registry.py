"""The one map from an EventBridge ``detail-type`` to its detail schema and its handler.

Each app registers its own types in its ``event_handlers`` module (imported from ``AppConfig.ready``):

    registry.register(
        DetailType.TENANT_PROVISIONING,
        schema=DETAIL_SCHEMAS[DetailType.TENANT_PROVISIONING],
        handler=handle_tenant_provisioning,
    )

A handler receives the stored event and the validated detail, runs inside a Celery task, must be
idempotent (an event can be re-run after a crash or replayed by staff), and returns a JSON-able result
that is stored on the event. ``EventRejected`` marks the event failed for good (no retry); any other
exception is retried with backoff. A handler's database writes commit together with the event's
``processed`` status (they share one transaction), so only its outside effects need idempotency.

A type may also register a ``preview``: what its handler would do with a detail, computed by the same
functions the handler uses, reading only (no row written, no task queued, no outside call). The dry run
(``events.dry_run``) shows it.

Tests swap handlers with ``registry.override(...)``, which restores the previous registration after.
"""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rest_framework import serializers

if TYPE_CHECKING:
    from events.models import ReceivedEvent

Handler = Callable[["ReceivedEvent", dict[str, Any]], dict[str, Any] | None]
# (detail_type, validated detail) -> what the handler would do, JSON-able, secrets masked.
Preview = Callable[[str, dict[str, Any]], dict[str, Any]]


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
    preview: Preview | None = None


_registry: dict[str, EventType] = {}
_lock = threading.Lock()


def register(
    detail_type: str,
    *,
    schema: type[serializers.Serializer],
    handler: Handler,
    description: str = "",
    preview: Preview | None = None,
) -> EventType:
    """Register the handler of one detail-type; registering a type twice is an error at start-up."""
    event_type = EventType(
        detail_type=detail_type, schema=schema, handler=handler, description=description, preview=preview
    )
    with _lock:
        if detail_type in _registry:
            raise DuplicateRegistration(f"detail-type {detail_type!r} is registered twice")
        _registry[detail_type] = event_type
    return event_type


@contextmanager
def override(
    detail_type: str,
    *,
    handler: Handler,
    schema: type[serializers.Serializer] | None = None,
    description: str = "",
) -> Iterator[EventType]:
    """Temporarily (re)place the handler of ``detail_type``; the previous registration comes back after.

    For tests and for tools that must run one type through a different handler; never at start-up.
    """
    from events.catalogue import DETAIL_SCHEMAS

    with _lock:
        previous = _registry.get(detail_type)
        chosen = schema or (previous.schema if previous else DETAIL_SCHEMAS[detail_type])
        event_type = EventType(detail_type=detail_type, schema=chosen, handler=handler, description=description)
        _registry[detail_type] = event_type
    try:
        yield event_type
    finally:
        with _lock:
            if previous is None:
                _registry.pop(detail_type, None)
            else:
                _registry[detail_type] = previous


def get(detail_type: str) -> EventType | None:
    return _registry.get(detail_type)


def supported() -> list[str]:
    return sorted(_registry)


def missing(detail_types: tuple[str, ...] | list[str]) -> list[str]:
    """The given detail-types that have no handler registered."""
    return [name for name in detail_types if name not in _registry]
