"""Bearer tokens of an external issuer: JWTs checked against the issuer's JWKS (PyJWT's ``PyJWKClient``).

The key set is fetched once and cached for ``INTAKE_JWKS_CACHE_SECONDS``. A token signed with a key id the
cache does not hold (the issuer rotated its keys) fetches the set again, at most once per
``INTAKE_JWKS_MIN_REFRESH_SECONDS`` (PyJWT's cooldown), so a flood of made-up key ids cannot turn into a
flood of requests to the issuer. A key the issuer removed stops verifying once the cached set expires.
Only the configured asymmetric algorithms are accepted: a token cannot pick HS256 and have the public key
used as an HMAC secret.
"""

import threading
from typing import Any

import jwt
from django.conf import settings

_clients: dict[tuple[Any, ...], jwt.PyJWKClient] = {}
_lock = threading.Lock()


def _jwks_client() -> jwt.PyJWKClient:
    """One client (one key cache) per process and configuration."""
    config = (
        settings.INTAKE_JWKS_URL,
        max(int(settings.INTAKE_JWKS_CACHE_SECONDS), 1),
        max(int(settings.INTAKE_JWKS_MIN_REFRESH_SECONDS), 0),
        float(settings.INTAKE_JWKS_TIMEOUT_SECONDS),
    )
    with _lock:
        client = _clients.get(config)
        if client is None:
            url, lifespan, cooldown, timeout = config
            client = _clients[config] = jwt.PyJWKClient(
                url, cache_jwk_set=True, lifespan=lifespan, cooldown_duration=cooldown, timeout=timeout
            )
        return client


def external_token_verify(token: str) -> dict[str, Any]:
    """The claims of a token of the configured issuer; ``jwt.PyJWTError`` when it is not valid.

    Fails closed: without a JWKS URL or an issuer configured no token is accepted.
    """
    if not settings.INTAKE_JWKS_URL or not settings.INTAKE_JWT_ISSUER:
        raise jwt.InvalidTokenError("INTAKE_JWKS_URL and INTAKE_JWT_ISSUER must be configured for bearer_jwt")
    signing_key = _jwks_client().get_signing_key_from_jwt(token)
    audience = settings.INTAKE_JWT_AUDIENCE or None
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=[name for name in settings.INTAKE_JWT_ALGORITHMS if not name.upper().startswith("HS")],
        issuer=settings.INTAKE_JWT_ISSUER,
        audience=audience,
        leeway=int(settings.INTAKE_JWT_LEEWAY_SECONDS),
        options={"require": ["exp", "iss"], "verify_aud": audience is not None},
    )
