"""The delivery engine's pure parts: payload bytes, signed requests, answer classification, backoff.

No database writes here (``webhooks.services`` owns those); everything is a function of its inputs so
it can be tested alone.
"""

import email.utils
import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from orchestrator.http import OutboundError, OutboundRefused, OutboundResponse
from orchestrator.redaction import MASK, redact_text
from webhooks.headers import custom_headers_unsendable
from webhooks.models import SigningScheme, WebhookDelivery
from webhooks.signing import headers_merge, original_headers, standard_headers

USER_AGENT = "orchestrator-webhooks/1.0"
# Answers worth another try (plus every 5xx and every network error or timeout).
RETRYABLE_STATUSES = frozenset({408, 425, 429})
GONE = 410
# Request headers the engine sets whose values are no secret. Every other value an attempt stores or
# shows is masked: the signatures, and an endpoint's custom headers (credentials under any name).
PUBLIC_REQUEST_HEADERS = frozenset(
    {"content-type", "user-agent", "bypass-tunnel-reminder", "webhook-id", "webhook-timestamp", "x-timestamp"}
)


def request_headers_masked(
    headers: Mapping[str, Any] | None, *, public: frozenset[str] = PUBLIC_REQUEST_HEADERS
) -> dict:
    """Request headers for people to read: values masked but those of ``public`` names (lower case)."""
    return {
        name: value if str(name).lower() in public or value in (None, "") else MASK
        for name, value in (headers or {}).items()
    }


def payload_bytes(payload: Any) -> bytes:
    """Compact JSON as the original's ``JSON.stringify`` writes it (key order kept, no spaces)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class SignedRequest:
    url: str
    body: bytes
    headers: dict[str, str]
    # Names whose value the engine itself set (not a custom header's): those of them that are public are
    # shown on the attempt.
    engine_headers: frozenset[str] = frozenset()

    def headers_for_display(self) -> dict[str, str]:
        """Headers as stored on the attempt: signatures and every custom header's value masked."""
        return request_headers_masked(self.headers, public=PUBLIC_REQUEST_HEADERS & self.engine_headers)


def request_build(*, delivery: WebhookDelivery, now: datetime | None = None) -> SignedRequest:
    """The exact request for one attempt: stored body, fresh timestamp, signature over those bytes."""
    now = now or timezone.now()
    if (endpoint := delivery.endpoint) is not None:  # None without a query when there is no endpoint
        return request_sign(
            url=delivery.url,
            body=delivery.body.reveal().encode(),
            scheme=endpoint.signing_scheme,
            secrets=endpoint.signing_secrets(now=now),
            custom=endpoint.custom_headers or {},
            msg_id=delivery.message_id,
            now=now,
        )
    return request_sign(
        url=delivery.url,
        body=delivery.body.reveal().encode(),
        scheme=delivery.signing_scheme,
        secrets=[delivery.signing_secret.reveal()] if delivery.signing_secret else [],
        custom={},
        msg_id=delivery.message_id,
        context=delivery.signing_context.reveal() if delivery.sign_with_context else None,
        now=now,
    )


def request_sign(
    *,
    url: str,
    body: bytes,
    scheme: str,
    secrets: list[str],
    custom: Mapping[str, str],
    msg_id: str,
    now: datetime,
    context: str | None = None,
) -> SignedRequest:
    """The request for ``body``: custom headers, the engine's, then the signature of ``scheme`` at ``now``
    (pure: the delivery engine and the dry run share it). ``OutboundRefused`` when it cannot be signed or a
    custom header cannot be sent."""
    base = {"content-type": "application/json", "user-agent": USER_AGENT}
    if unsendable := custom_headers_unsendable(custom):  # saved before headers were checked
        raise OutboundRefused(f"custom header {unsendable}")
    if not secrets:
        raise OutboundRefused("no signing secret is configured for this delivery")
    if scheme == SigningScheme.STANDARD:
        signature = standard_headers(msg_id=msg_id, timestamp_s=int(now.timestamp()), body=body, secrets=secrets)
    else:
        base["bypass-tunnel-reminder"] = "true"  # the original always sent it (localtunnel)
        # The original scheme carries one signature; during a rotation the newest secret signs.
        signature = original_headers(
            body=body, secret=secrets[0], timestamp_ms=int(now.timestamp() * 1000), context=context
        )
    return SignedRequest(
        url=url,
        body=body,
        headers=headers_merge(custom=custom, base=base, signature=signature),
        engine_headers=frozenset(base) | frozenset(signature),
    )


@dataclass(frozen=True)
class Verdict:
    """What an attempt's result means: ``succeeded``, ``retry`` (maybe after ``retry_after``), ``failed``, ``gone``."""

    kind: str
    reason: str
    retry_after: float | None = None


def retry_after_parse(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def verdict_for_response(response: OutboundResponse) -> Verdict:
    status = response.status
    if 200 <= status < 300:
        return Verdict("succeeded", f"HTTP {status}")
    if status == GONE:
        return Verdict("gone", "HTTP 410 Gone: the receiver asked not to be called again")
    if status in RETRYABLE_STATUSES or status >= 500:
        retry_after = retry_after_parse(response.headers.get("retry-after")) if status in (429, 503) else None
        return Verdict("retry", f"HTTP {status}", retry_after=retry_after)
    if 300 <= status < 400:
        location = response.headers.get("location", "")
        return Verdict(
            "failed", f"HTTP {status}: redirects are not followed" + (f" (to {location})" if location else "")
        )
    return Verdict("failed", f"HTTP {status}: not retried")


def verdict_for_error(error: Exception) -> Verdict:
    if isinstance(error, OutboundRefused):
        return Verdict("failed", f"refused: {error}")
    if isinstance(error, OutboundError):
        return Verdict("retry", str(error))
    return Verdict("retry", f"{error.__class__.__name__}: {error}")


def retry_schedule() -> list[int]:
    """Nominal delays: the configured schedule, then the interval until the window is used up."""
    schedule = [int(s) for s in settings.WEBHOOK_RETRY_SCHEDULE]
    total = sum(schedule)
    interval = max(1, int(settings.WEBHOOK_RETRY_INTERVAL))
    while total + interval <= settings.WEBHOOK_RETRY_WINDOW:
        schedule.append(interval)
        total += interval
    return schedule


def retry_delay(*, failures: int, retry_after: float | None = None, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after ``failures`` failed attempts in this round; None: give up.

    Full jitter: a uniform draw in [0, nominal]. A receiver's ``Retry-After`` is a floor (capped at
    ``WEBHOOK_MAX_RETRY_AFTER``).
    """
    schedule = retry_schedule()
    if failures < 1 or failures > len(schedule):
        return None
    nominal = schedule[failures - 1]
    delay = (rng or random).uniform(0, nominal)
    if retry_after is not None:
        delay = max(delay, min(retry_after, float(settings.WEBHOOK_MAX_RETRY_AFTER)))
    return delay


def response_text(response: OutboundResponse, *, secrets: list[str]) -> str:
    """The stored (truncated, secret-masked) copy of a receiver's answer."""
    text = response.body.decode("utf-8", errors="replace")[: settings.WEBHOOK_STORED_RESPONSE_CHARS]
    return redact_text(text, secrets)
