"""Signature checks written from the specs, independent of webhooks.signing/webhooks.verify."""

import base64
import hashlib
import hmac


def original_ok(body: bytes, headers: dict[str, str], secret: str, context: str | None = None) -> bool:
    timestamp = headers["x-timestamp"]
    message = body + (context or "").encode() + timestamp.encode()
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-signature"])


def standard_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret[len("whsec_") :])
    digest = hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def standard_ok(body: bytes, headers: dict[str, str], secret: str) -> bool:
    expected = standard_signature(secret, headers["webhook-id"], headers["webhook-timestamp"], body)
    return any(hmac.compare_digest(expected, given) for given in headers["webhook-signature"].split(" "))
