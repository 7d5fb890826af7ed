"""Authentication of the intake: the two schemes an EventBridge connection offers.

- API key in a configurable header (``INTAKE_API_KEY_HEADER``, default ``x-api-key``); every key in
  ``INTAKE_API_KEYS`` is accepted, so a new key can be rolled out before the old one is removed.
- HTTP Basic with any ``user:password`` pair in ``INTAKE_BASIC_AUTH``.

Every configured credential is compared (``hmac.compare_digest``) on every request, so the time taken
does not reveal which one matched or how much of a guess was right. With nothing configured every request
is refused (fail closed).
"""

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeSender:
    """The authenticated caller of the intake: a machine (EventBridge), never a Django user."""

    scheme: str  # "api_key" | "basic"
    label: str  # which credential matched: "key#1", "basic:eventbridge"

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __str__(self) -> str:
        return f"intake:{self.label}"


def _matches(candidate: bytes, secrets: list[bytes]) -> int | None:
    """Index of the secret equal to ``candidate``; compares against all of them regardless."""
    found = None
    for index, secret in enumerate(secrets):
        if hmac.compare_digest(candidate, secret) and found is None:
            found = index
    return found


def api_key_header_name() -> str:
    return settings.INTAKE_API_KEY_HEADER


class IntakeAuthentication(authentication.BaseAuthentication):
    """DRF authentication for the intake views: API key header or HTTP Basic; 401 otherwise."""

    www_authenticate_realm = "orchestrator-intake"

    def authenticate(self, request: Request) -> tuple[IntakeSender, str]:
        keys = [key.encode() for key in settings.INTAKE_API_KEYS if key]
        pairs = [pair.encode() for pair in settings.INTAKE_BASIC_AUTH if ":" in pair]
        if not keys and not pairs:
            logger.error("intake refused a request: no INTAKE_API_KEYS or INTAKE_BASIC_AUTH configured")
            raise exceptions.AuthenticationFailed("The intake has no credentials configured.")

        supplied_key = request.headers.get(api_key_header_name())
        if supplied_key is not None:
            index = _matches(supplied_key.encode("utf-8", "surrogateescape"), keys)
            if index is not None:
                return IntakeSender(scheme="api_key", label=f"key#{index + 1}"), "api_key"
            logger.warning("intake refused a request: wrong API key in %s", api_key_header_name())
            raise exceptions.AuthenticationFailed("Invalid API key.")

        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                supplied_pair = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise exceptions.AuthenticationFailed("Malformed Basic credentials.") from None
            index = _matches(supplied_pair, pairs)
            if index is not None:
                user = pairs[index].split(b":", 1)[0].decode()
                return IntakeSender(scheme="basic", label=f"basic:{user}"), "basic"
            logger.warning("intake refused a request: wrong Basic credentials")
            raise exceptions.AuthenticationFailed("Invalid Basic credentials.")

        raise exceptions.NotAuthenticated(
            f"Credentials required: an API key in the {api_key_header_name()} header or HTTP Basic."
        )

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{self.www_authenticate_realm}"'
