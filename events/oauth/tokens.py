"""Access tokens we issue ourselves: short-lived JWTs signed with HS256.

The signing key is derived from ``DJANGO_SECRET_KEY`` (HKDF, its own label), so nothing else needs
configuring and changing the Django key invalidates every token (EventBridge simply asks for a new one).
Tokens name their client (``sub``); the intake also checks that the client is still active, so revoking a
client stops its tokens at once rather than at their expiry.
"""

import functools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

ISSUER = "orchestrator"
AUDIENCE = "orchestrator-intake"
ALGORITHM = "HS256"
SCOPE = "intake"  # the only scope: sending events to the intake


@functools.cache
def _signing_key_for(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"orchestrator.oauth.access-tokens.v1")
    return hkdf.derive(secret_key.encode())


def _signing_key() -> bytes:
    return _signing_key_for(settings.SECRET_KEY)


def access_token_issue(*, client_id: str, now: datetime | None = None) -> tuple[str, int]:
    """A signed access token for ``client_id`` and its lifetime in seconds."""
    now = now or datetime.now(UTC)
    lifetime = int(settings.OAUTH_TOKEN_TTL_SECONDS)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": client_id,
        "scope": SCOPE,
        "iat": now,
        "exp": now + timedelta(seconds=lifetime),
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, _signing_key(), algorithm=ALGORITHM), lifetime


def is_own_token(header: dict[str, Any], claims: dict[str, Any]) -> bool:
    """Whether an (unverified) token claims to be ours: then only our key may verify it."""
    return header.get("alg") == ALGORITHM and claims.get("iss") == ISSUER


def access_token_verify(token: str) -> dict[str, Any]:
    """The claims of one of our tokens; ``jwt.InvalidTokenError`` when it is not valid."""
    return jwt.decode(
        token,
        _signing_key(),
        algorithms=[ALGORITHM],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "iss", "aud"]},
    )
