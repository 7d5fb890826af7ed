"""Receiver-side verification of the orchestrator's signed calls. Standard library only: copy this file.

Two schemes (see docs/webhooks.md):

``verify_original`` — the original service's scheme, used for the app-plane and feature-service bootstraps
and the control-plane webhook::

    x-timestamp: <epoch milliseconds>
    x-signature: hex(HMAC-SHA256(secret, body [+ context] + x-timestamp))

``verify_standard`` — Standard Webhooks, used for subscriber endpoints::

    webhook-id, webhook-timestamp (epoch seconds),
    webhook-signature: "v1,<base64(HMAC-SHA256(base64decode(secret without whsec_), id.timestamp.body))>" ...

Both compare in constant time, refuse timestamps further than ``tolerance`` seconds from now (either way)
and, given a ``ReplayGuard``, refuse a message presented twice within its window. Retries of a delivery
keep their ``webhook-id`` but carry a fresh timestamp and signature, so they are not replays: de-duplicate
on ``webhook-id`` in your own processing if the effect must happen once.

Usage::

    guard = ReplayGuard(window=600)
    try:
        payload = verify_standard(body=raw_body, headers=request_headers, secrets=["whsec_..."], replay_guard=guard)
    except VerificationError as error:
        return 401, str(error)
"""

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

DEFAULT_TOLERANCE_SECONDS = 300
STANDARD_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
# Epoch seconds or milliseconds have 10 to 13 digits for centuries; a longer "timestamp" is garbage, and
# int() of thousands of digits raises ValueError (Python's digit limit) instead of being refused cleanly.
MAX_TIMESTAMP_DIGITS = 20


class VerificationError(Exception):
    """The message is not authentic, too old/new, or a replay. The message is safe to show the sender."""


class ReplayGuard:
    """Remembers signatures seen in the last ``window`` seconds (thread-safe, in memory).

    Use one per process; with several processes use a shared store implementing ``check_and_remember``.
    """

    def __init__(self, window: float = 2 * DEFAULT_TOLERANCE_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check_and_remember(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            for old in [k for k, at in self._seen.items() if now - at > self.window]:
                del self._seen[old]
            if key in self._seen:
                raise VerificationError("replayed message")
            self._seen[key] = now


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}


def _parse_timestamp(value: str, *, header: str, unit: str) -> int:
    """The header's value as an integer, or ``VerificationError``: ASCII digits only (``str.isdigit`` also
    accepts "²", which ``int`` then refuses with a ``ValueError``, and other scripts' digits), no sign, no
    fraction, no exponent."""
    if not (value.isascii() and value.isdigit() and len(value) <= MAX_TIMESTAMP_DIGITS):
        raise VerificationError(f"{header} must be epoch {unit}")
    return int(value)


def _check_time(sent_at_seconds: float, tolerance: float, now: float | None) -> None:
    now = time.time() if now is None else now
    if sent_at_seconds < now - tolerance:
        raise VerificationError("timestamp too old")
    if sent_at_seconds > now + tolerance:
        raise VerificationError("timestamp too new")


def verify_original(
    *,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    context: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
    replay_guard: ReplayGuard | None = None,
) -> None:
    """Check ``x-signature``/``x-timestamp``. Pass ``context`` for the control-plane webhook, None for callbacks.

    ``body`` must be the raw request bytes (not re-serialised JSON).
    """
    if not secret:
        raise VerificationError("no secret configured")
    lowered = _lower(headers)
    timestamp = lowered.get("x-timestamp", "").strip()
    signature = lowered.get("x-signature", "").strip().lower()
    if not timestamp or not signature:
        raise VerificationError("missing x-timestamp or x-signature")
    sent_at_ms = _parse_timestamp(timestamp, header="x-timestamp", unit="milliseconds")
    _check_time(sent_at_ms / 1000, tolerance, now)
    message = body + (context.encode() if context is not None else b"") + timestamp.encode()
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise VerificationError("signature mismatch")
    if replay_guard is not None:
        replay_guard.check_and_remember(f"original:{timestamp}:{signature}")


def _standard_key(secret: str) -> bytes:
    if secret.startswith(STANDARD_SECRET_PREFIX):
        secret = secret[len(STANDARD_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(secret + "==")
    except (binascii.Error, ValueError):
        raise VerificationError("the configured secret is not valid base64") from None
    if not key:
        raise VerificationError("no secret configured")
    return key


def verify_standard(
    *,
    body: bytes,
    headers: Mapping[str, str],
    secrets: str | Sequence[str],
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
    replay_guard: ReplayGuard | None = None,
    parse_json: bool = True,
) -> Any:
    """Check Standard Webhooks headers against any of ``secrets`` (several while you rotate); return the payload.

    Accepts the message when any ``v1`` signature in ``webhook-signature`` matches any secret.
    """
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    keys = [_standard_key(secret) for secret in candidates if secret]
    if not keys:
        raise VerificationError("no secret configured")
    lowered = _lower(headers)
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "").strip()
    signature_header = lowered.get("webhook-signature", "")
    if not msg_id or not timestamp or not signature_header:
        raise VerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    _check_time(_parse_timestamp(timestamp, header="webhook-timestamp", unit="seconds"), tolerance, now)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in keys]
    matched = False
    for item in signature_header.split():
        version, _, encoded = item.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        for digest in expected:
            # Every comparison runs (no early exit) so timing says nothing about which one matched.
            matched |= hmac.compare_digest(digest, given)
    if not matched:
        raise VerificationError("no matching signature")
    if replay_guard is not None:
        replay_guard.check_and_remember(f"standard:{msg_id}:{timestamp}")
    return json.loads(body) if parse_json else None
