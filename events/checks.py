"""System checks: every catalogue detail-type must have a registered handler.

A missing handler is a warning in development (the intake still stores such events; processing them
fails with "no handler registered" and they can be replayed once the handler exists) and an error under
``manage.py check --deploy``, so a release without a handler for a catalogue type does not ship.
"""

from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register

from events import registry
from events.catalogue import DetailType


def _message(name: str) -> str:
    return f"No handler is registered for detail-type {name!r}."


HINT = "Register one with events.registry.register(...) in an app's event_handlers module."


@register("events")
def check_handlers_registered(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Warning(_message(name), hint=HINT, id="events.W001", obj="events.registry")
        for name in registry.missing(DetailType.ALL)
    ]


@register("events", deploy=True)
def check_handlers_registered_for_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Error(_message(name), hint=HINT, id="events.E001", obj="events.registry")
        for name in registry.missing(DetailType.ALL)
    ]
