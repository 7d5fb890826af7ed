"""Authentication of the intake: the schemes an EventBridge connection offers, as ``INTAKE_AUTH_SCHEMES``
switches them on (default ``api_key,basic``).

- ``api_key``: an API key in a configurable header (``INTAKE_API_KEY_HEADER``, default ``x-api-key``); every
  key in ``INTAKE_API_KEYS`` is accepted, so a new key can be rolled out before the old one is removed.
- ``basic``: HTTP Basic with any ``user:password`` pair in ``INTAKE_BASIC_AUTH``.
- ``bearer_jwt``: ``Authorization: Bearer <JWT>`` of an external issuer, checked against its JWKS
  (``events.oauth.jwks``).
- ``oauth_client``: ``Authorization: Bearer <token>`` issued by our own ``POST /oauth/token``
  (``events.oauth``), to a client that is still active.

Every configured key and Basic pair is compared (``hmac.compare_digest``) on every request, so the time
taken does not reveal which one matched or how much of a guess was right. With nothing configured every
request is refused (fail closed). A 401 names the scheme that failed (its message and, once a bearer scheme
is on, its ``WWW-Authenticate`` challenge) but never why: the reason is only logged. With only ``api_key``
and ``basic`` on, every answer is exactly what it was before bearer tokens existed.
"""

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass

import jwt
from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from events.oauth import tokens
from events.oauth.jwks import external_token_verify
from events.oauth.selectors import oauth_client_is_active
from orchestrator.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

BEARER_SCHEMES = frozenset({"bearer_jwt", "oauth_client"})
REALM = "orchestrator-intake"
# Where ``authenticate`` leaves the scheme whose credentials it refused, for ``authenticate_header`` (an
# attribute of the request that DRF's ``Request`` does not declare).
FAILED_SCHEME_ATTRIBUTE = "intake_failed_scheme"


@dataclass(frozen=True)
class IntakeSender:
    """The authenticated caller of the intake: a machine (EventBridge), never a Django user."""

    scheme: str  # "api_key" | "basic" | "bearer_jwt" | "oauth_client"
    label: str  # which credential matched: "key#1", "basic:eventbridge", "oauth:oc-...", "jwt:<client>"

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
    """DRF authentication for the intake views: the schemes of INTAKE_AUTH_SCHEMES; 401 otherwise."""

    www_authenticate_realm = REALM

    def authenticate(self, request: Request) -> tuple[IntakeSender, str]:
        schemes = frozenset(settings.INTAKE_AUTH_SCHEMES)
        bearer = schemes & BEARER_SCHEMES
        keys = [key.encode() for key in settings.INTAKE_API_KEYS if key] if "api_key" in schemes else []
        pairs = [pair.encode() for pair in settings.INTAKE_BASIC_AUTH if ":" in pair] if "basic" in schemes else []
        if not keys and not pairs and not bearer:
            logger.error("intake refused a request: no INTAKE_API_KEYS or INTAKE_BASIC_AUTH configured")
            raise exceptions.AuthenticationFailed("The intake has no credentials configured.")

        supplied_key = request.headers.get(api_key_header_name()) if "api_key" in schemes else None
        if supplied_key is not None:
            index = _matches(supplied_key.encode("utf-8", "surrogateescape"), keys)
            if index is not None:
                return IntakeSender(scheme="api_key", label=f"key#{index + 1}"), "api_key"
            logger.warning("intake refused a request: wrong API key in %s", api_key_header_name())
            setattr(request, FAILED_SCHEME_ATTRIBUTE, "api_key")
            raise exceptions.AuthenticationFailed("Invalid API key.")

        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if "basic" in schemes and scheme.lower() == "basic" and encoded:
            setattr(request, FAILED_SCHEME_ATTRIBUTE, "basic")
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

        if bearer and scheme.lower() == "bearer" and encoded.strip():
            setattr(request, FAILED_SCHEME_ATTRIBUTE, "bearer")
            sender = _bearer_sender(encoded.strip(), bearer)
            return sender, sender.scheme

        if not bearer:
            raise exceptions.NotAuthenticated(
                f"Credentials required: an API key in the {api_key_header_name()} header or HTTP Basic."
            )
        accepted = [name for name in ("api_key", "basic") if name in schemes] + ["bearer"]
        labels = {
            "api_key": f"an API key in the {api_key_header_name()} header",
            "basic": "HTTP Basic",
            "bearer": "a bearer token",
        }
        raise exceptions.NotAuthenticated(f"Credentials required: {' or '.join(labels[name] for name in accepted)}.")

    def authenticate_header(self, request: Request) -> str:
        schemes = frozenset(settings.INTAKE_AUTH_SCHEMES)
        if not schemes & BEARER_SCHEMES:
            return f'Basic realm="{self.www_authenticate_realm}"'
        challenges = {
            "api_key": f'ApiKey realm="{REALM}", header="{api_key_header_name()}"',
            "basic": f'Basic realm="{REALM}"',
            "bearer": f'Bearer realm="{REALM}"',
        }
        failed = getattr(request, FAILED_SCHEME_ATTRIBUTE, "")
        if failed == "bearer":
            return f'Bearer realm="{REALM}", error="invalid_token"'
        if failed:
            return challenges[failed]
        return ", ".join(challenges[name] for name in ("bearer", "basic") if name == "bearer" or name in schemes)


def _invalid_token(reason: str) -> exceptions.AuthenticationFailed:
    logger.warning("intake refused a request with a bearer JWT (%s)", reason)
    return exceptions.AuthenticationFailed("Invalid bearer token.")


def _bearer_sender(token: str, enabled: frozenset[str]) -> IntakeSender:
    """The sender a bearer token stands for: one of our tokens, or one of the configured issuer's."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise _invalid_token(f"not a JWT, {error.__class__.__name__}") from None
    if tokens.is_own_token(header, unverified):
        if "oauth_client" not in enabled:
            raise _invalid_token("issued by us, but oauth_client is off")
        try:
            claims = tokens.access_token_verify(token)
        except jwt.PyJWTError as error:
            raise _invalid_token(f"issued by us, {error.__class__.__name__}: {error}") from None
        if not oauth_client_is_active(client_id=str(claims["sub"])):
            raise _invalid_token(f"issued by us to client {claims['sub']}, which is revoked or deleted")
        return IntakeSender(scheme="oauth_client", label=f"oauth:{claims['sub']}")
    if "bearer_jwt" not in enabled:
        raise _invalid_token("not issued by us, and bearer_jwt is off")
    try:
        claims = external_token_verify(token)
    except jwt.PyJWKClientConnectionError as error:
        # The issuer's keys could not be fetched: not the sender's fault; EventBridge retries a 503.
        logger.warning("intake: the JWKS at INTAKE_JWKS_URL is unreachable: %s", error)
        raise ServiceUnavailableError("The token issuer's keys cannot be fetched right now.") from None
    except jwt.PyJWTError as error:
        raise _invalid_token(f"external issuer, {error.__class__.__name__}: {error}") from None
    who = claims.get("client_id") or claims.get("azp") or claims.get("sub") or "?"
    return IntakeSender(scheme="bearer_jwt", label=f"jwt:{str(who)[:64]}")
