"""Writes for OAuth clients (create, rotate, revoke) and the client credentials grant itself."""

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from events.oauth import tokens
from events.oauth.models import OAuthClient

logger = logging.getLogger(__name__)

# Compared against when the client id is unknown, so an unknown id costs the same time as a wrong secret.
_NO_SECRET = hashlib.sha256(b"no such client").hexdigest()


class OAuthError(Exception):
    """An error of the token endpoint, in RFC 6749 section 5.2 terms (``error`` code, HTTP status)."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def oauth_client_create(*, name: str) -> tuple[OAuthClient, str]:
    """A new client with a generated id and secret; the secret is returned once and stored only hashed."""
    secret = _new_secret()
    client = OAuthClient.objects.create(
        client_id=f"oc-{secrets.token_hex(12)}", name=name.strip(), secret_sha256=_digest(secret)
    )
    logger.info("oauth client created", extra={"client_id": client.client_id})
    return client, secret


def oauth_client_rotate_secret(*, client: OAuthClient) -> str:
    """A new secret for ``client`` (returned once); the previous one keeps working for the grace period."""
    secret = _new_secret()
    now = timezone.now()
    with transaction.atomic():
        locked = OAuthClient.objects.select_for_update().get(pk=client.pk)
        locked.previous_secret_sha256 = locked.secret_sha256
        locked.previous_secret_valid_until = now + timedelta(seconds=settings.OAUTH_CLIENT_SECRET_GRACE_SECONDS)
        locked.secret_sha256 = _digest(secret)
        locked.secret_rotated_at = now
        locked.save(
            update_fields=[
                "previous_secret_sha256",
                "previous_secret_valid_until",
                "secret_sha256",
                "secret_rotated_at",
            ]
        )
    logger.info("oauth client secret rotated", extra={"client_id": locked.client_id})
    return secret


def oauth_client_revoke(*, client: OAuthClient) -> bool:
    """Revoke ``client``: no new tokens, and the tokens it holds stop working. False if already revoked."""
    revoked = OAuthClient.objects.filter(pk=client.pk, is_active=True).update(
        is_active=False, revoked_at=timezone.now(), previous_secret_sha256="", previous_secret_valid_until=None
    )
    if revoked:
        logger.info("oauth client revoked", extra={"client_id": client.client_id})
    return bool(revoked)


def _secret_matches(client: OAuthClient | None, secret: str) -> bool:
    """Constant-time comparison with the current and (during its grace period) the previous secret."""
    digest = _digest(secret)
    current = client.secret_sha256 if client else _NO_SECRET
    matched = hmac.compare_digest(digest, current)
    previous = client.previous_secret_sha256 if client else ""
    if (
        previous
        and client
        and client.previous_secret_valid_until
        and client.previous_secret_valid_until > timezone.now()
    ):
        matched = hmac.compare_digest(digest, previous) or matched
    return matched


def oauth_token_issue(*, grant_type: str, client_id: str, client_secret: str, scope: str = "") -> IssuedToken:
    """The client credentials grant: an access token for a valid, active client (``OAuthError`` otherwise).

    A wrong id, a wrong secret and a revoked client all answer ``invalid_client`` alike.
    """
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "Only the client_credentials grant is supported.")
    requested = scope.split()
    if any(item != tokens.SCOPE for item in requested):
        raise OAuthError("invalid_scope", f"The only scope is {tokens.SCOPE!r}.")
    client = OAuthClient.objects.filter(client_id=client_id).first() if client_id else None
    if not _secret_matches(client, client_secret) or client is None or not client.is_active:
        logger.warning("token endpoint refused client credentials", extra={"client_id": client_id[:64]})
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    token, lifetime = tokens.access_token_issue(client_id=client.client_id)
    OAuthClient.objects.filter(pk=client.pk).update(last_token_at=timezone.now())
    return IssuedToken(access_token=token, expires_in=lifetime, scope=tokens.SCOPE)
