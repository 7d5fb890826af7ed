"""Sending the requests of several delivery attempts at once, results handed back as they come in.

A delivery task takes up to WEBHOOK_DELIVERY_BATCH deliveries (``webhooks.services.attempts.deliveries_attempt``):
their attempts are recorded together, their requests go out in parallel on this process's sender threads,
and the answers are recorded in groups as they arrive. So one slow receiver in a batch delays only its own
record, and a batch costs a few statements and commits instead of a few per delivery.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from dataclasses import dataclass

from django.conf import settings

from orchestrator.http import OutboundError, OutboundRefused, OutboundResponse, http_post
from webhooks.concurrency import slot_release
from webhooks.delivery import SignedRequest
from webhooks.models import DeliveryAttempt, WebhookDelivery

logger = logging.getLogger(__name__)

# How long answers that arrive close together are gathered before they are recorded as one group.
GATHER_SECONDS = 0.05


@dataclass
class InFlight:
    """An attempt recorded as started, whose request (if it could be built) is about to be sent."""

    delivery: WebhookDelivery
    attempt: DeliveryAttempt
    request: SignedRequest | None
    refusal: OutboundRefused | None
    secrets: list[str]

    def slot_free(self) -> None:
        """Give back the endpoint slot taken for it (every delivery to an endpoint takes one)."""
        if self.delivery.endpoint_id is not None:
            slot_release(endpoint_id=self.delivery.endpoint_id, delivery_id=self.delivery.pk)


@dataclass
class Sent:
    flight: InFlight
    response: OutboundResponse | None
    error: Exception | None


def send(flight: InFlight) -> Sent:
    """Send one request; never raises: whatever went wrong is the attempt's result."""
    response = None
    error: Exception | None = flight.refusal
    try:
        if flight.request is not None:
            request = flight.request
            response = http_post(request.url, body=request.body, headers=request.headers)
    except (OutboundRefused, OutboundError) as failure:
        error = failure
    except Exception as failure:  # an unexpected client bug must still be recorded, then retried
        logger.exception("delivery %s: unexpected error while sending", flight.delivery.pk)
        error = failure
    finally:
        flight.slot_free()
    return Sent(flight, response, error)


class _Senders:
    """This process's sender threads (created on first use, again after a fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        if self._pid != os.getpid() or self._pool is None:
            with self._lock:
                if self._pid != os.getpid() or self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        max_workers=settings.WEBHOOK_SEND_THREADS, thread_name_prefix="webhook-send"
                    )
                    self._pid = os.getpid()
        return self._pool


senders = _Senders()


def sent_in_groups(flights: list[InFlight]) -> Iterator[list[Sent]]:
    """Send every flight; yield the results in groups as they arrive (one group when all answer quickly)."""
    if len(flights) == 1:  # nothing to overlap: no hand-off to another thread
        yield [send(flights[0])]
        return
    # Each request runs in the caller's context (its trace), not the sender thread's.
    pending: set[Future[Sent]] = {senders.pool().submit(copy_context().run, send, flight) for flight in flights}
    while pending:
        done, pending = wait(pending, timeout=GATHER_SECONDS, return_when=ALL_COMPLETED)
        if not done:  # only slow receivers left: wake up for the next answer, not on a timer
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield [future.result() for future in done]
