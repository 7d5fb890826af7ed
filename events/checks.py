"""System checks: every catalogue (and dialect) detail-type must have a registered handler; EVENT_DIALECTS
must name known dialects.

A missing handler is a warning in development (the intake still stores such events; processing them
fails with "no handler registered" and they can be replayed once the handler exists) and an error under
``manage.py check --deploy``, so a release without a handler for a catalogue type does not ship.
"""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from events import registry
from events.catalogue import DetailType
from events.dialects import DIALECT_REQUESTS


def _message(name: str) -> str:
    return f"No handler is registered for detail-type {name!r}."


HINT = "Register one with events.registry.register(...) in an app's event_handlers module."
# The catalogue and every dialect's requests (registered whether or not the dialect is on).
ALL_TYPES = tuple(dict.fromkeys([*DetailType.ALL, *(name for names in DIALECT_REQUESTS.values() for name in names)]))


@register("events")
def check_handlers_registered(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Warning(_message(name), hint=HINT, id="events.W001", obj="events.registry")
        for name in registry.missing(ALL_TYPES)
    ]


@register("events", deploy=True)
def check_handlers_registered_for_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Error(_message(name), hint=HINT, id="events.E001", obj="events.registry")
        for name in registry.missing(ALL_TYPES)
    ]


@register("events")
def check_dialects_known(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    unknown = sorted(set(settings.EVENT_DIALECTS) - set(DIALECT_REQUESTS))
    return (
        [
            Error(
                f"EVENT_DIALECTS names unknown dialects: {', '.join(unknown)}.",
                hint=f"Known dialects: {', '.join(DIALECT_REQUESTS)}.",
                id="events.E002",
                obj="settings.EVENT_DIALECTS",
            )
        ]
        if unknown
        else []
    )


INTAKE_AUTH_SCHEMES = ("api_key", "basic", "bearer_jwt", "oauth_client")


@register("events")
def check_intake_auth_schemes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    unknown = sorted(set(settings.INTAKE_AUTH_SCHEMES) - set(INTAKE_AUTH_SCHEMES))
    if unknown:
        messages.append(
            Error(
                f"INTAKE_AUTH_SCHEMES names unknown schemes: {', '.join(unknown)}.",
                hint=f"Known schemes: {', '.join(INTAKE_AUTH_SCHEMES)}.",
                id="events.E003",
                obj="settings.INTAKE_AUTH_SCHEMES",
            )
        )
    if "bearer_jwt" in settings.INTAKE_AUTH_SCHEMES and not (settings.INTAKE_JWKS_URL and settings.INTAKE_JWT_ISSUER):
        messages.append(
            Warning(
                "bearer_jwt is on but INTAKE_JWKS_URL or INTAKE_JWT_ISSUER is empty: every bearer JWT is refused.",
                hint="Set both to your identity provider's JWKS URL and issuer.",
                id="events.W002",
                obj="settings.INTAKE_AUTH_SCHEMES",
            )
        )
    return messages
