"""The two signing schemes, applied to exactly the bytes that are sent.

Original scheme (existing receivers of the service we replace):
    x-timestamp: epoch milliseconds (decimal string)
    x-signature: hex HMAC-SHA256(secret, body + timestamp)              service callbacks (bootstraps)
                 hex HMAC-SHA256(secret, body + context + timestamp)    control-plane webhook
Standard Webhooks (https://www.standardwebhooks.com/), for subscribers:
    webhook-id, webhook-timestamp (epoch seconds), webhook-signature: "v1,<base64 HMAC-SHA256(key, id.ts.body)>"
    with the key being the base64-decoded part of the ``whsec_`` secret; one signature per valid secret,
    space separated, while a secret is being rotated. Signed with the ``standardwebhooks`` package.

Signature headers are applied after any custom headers, so an endpoint's custom headers can never
replace them (names are compared case-insensitively).
"""

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

ORIGINAL_SIGNATURE_HEADERS = ("x-signature", "x-timestamp")
STANDARD_SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
SIGNATURE_HEADERS = frozenset(ORIGINAL_SIGNATURE_HEADERS + STANDARD_SIGNATURE_HEADERS)
# Headers the engine sets itself, and those that belong to the connection (hop-by-hop, RFC 9110 7.6.1):
# custom headers cannot replace these either.
RESERVED_HEADERS = SIGNATURE_HEADERS | {
    "content-type",
    "content-length",
    "user-agent",
    "host",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
}


def original_signature(*, body: bytes, secret: str, timestamp_ms: int, context: str | None = None) -> str:
    """Hex HMAC-SHA256 over ``body + context + timestamp`` (``context`` None: ``body + timestamp``)."""
    message = body + (context.encode() if context is not None else b"") + str(timestamp_ms).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def original_headers(*, body: bytes, secret: str, timestamp_ms: int, context: str | None = None) -> dict[str, str]:
    return {
        "x-timestamp": str(timestamp_ms),
        "x-signature": original_signature(body=body, secret=secret, timestamp_ms=timestamp_ms, context=context),
    }


def standard_signature(*, msg_id: str, timestamp_s: int, body: bytes, secrets: Sequence[str]) -> str:
    """``v1,<base64>`` for each secret, space separated (several while a secret is being rotated)."""
    if not secrets:
        raise ValueError("at least one secret is needed to sign")
    when = datetime.fromtimestamp(timestamp_s, tz=UTC)
    data = body.decode("utf-8")
    return " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=data) for secret in secrets)


def standard_headers(*, msg_id: str, timestamp_s: int, body: bytes, secrets: Sequence[str]) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": standard_signature(msg_id=msg_id, timestamp_s=timestamp_s, body=body, secrets=secrets),
    }


def headers_merge(*, custom: Mapping[str, str] | None, base: Mapping[str, str], signature: Mapping[str, str]) -> dict:
    """Custom headers first (reserved names dropped), then the engine's, then the signature headers last."""
    merged: dict[str, str] = {}
    for name, value in (custom or {}).items():
        if name.lower() not in RESERVED_HEADERS:
            merged[name.lower()] = str(value)
    for name, value in base.items():
        merged[name.lower()] = value
    for name, value in signature.items():
        merged[name.lower()] = value
    return merged
