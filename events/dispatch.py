"""Stored events to the broker: processing is enqueued by id, a few ids per message, and a broker outage
pauses publishing instead of slowing every request (the rows stay; the sweeper enqueues them later)."""

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


class _BrokerBreaker:
    """After a failed publish, skip publishing for a short while instead of waiting on a dead broker.

    Without it every request would spend the broker's connect timeouts (about 2 s) before answering 202
    during an outage; the rows are stored either way and the sweeper enqueues them once the broker is back.
    """

    def __init__(self) -> None:
        self.open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self) -> None:
        self.open_until = time.monotonic() + settings.EVENT_PUBLISH_PAUSE_SECONDS

    def reset(self) -> None:
        self.open_until = 0.0


broker_breaker = _BrokerBreaker()


def _publish(send: Callable[[], Any], *, from_intake: bool, what: str) -> None:
    """Publish to the broker; an outage is logged, not raised (the rows stay as they are and the sweeper
    re-enqueues them later: accepting never depends on the broker). The intake (``from_intake``) also
    respects the broker breaker; the sweeper always tries."""
    if from_intake and broker_breaker.is_open():
        return
    try:
        send()
    except Exception as error:  # broker down: the sweeper will pick the events up
        broker_breaker.trip()
        logger.warning("could not enqueue %s; the sweeper will retry: %s", what, error.__class__.__name__)


def events_dispatch(
    event_pks: Sequence[int], *, from_intake: bool = False, trace_parents: dict[int, dict[str, str]] | None = None
) -> None:
    """Enqueue processing of committed events, EVENT_DISPATCH_BATCH ids per message.

    One message per few events keeps the broker's per-message cost off the intake's hot path, while
    separate messages still let several workers share a burst. ``trace_parents``: the trace of the request that
    accepted each event, when they were stored by another thread (group commit); each event's processing
    continues its own trace.
    """
    from events.tasks import process_events

    size = max(1, settings.EVENT_DISPATCH_BATCH)
    for start in range(0, len(event_pks), size):
        chunk = list(event_pks[start : start + size])
        kwargs: dict[str, Any] = {"event_pks": chunk}
        if trace_parents:
            kwargs["trace_parents"] = {str(pk): trace_parents[pk] for pk in chunk if pk in trace_parents}
        _publish(
            partial(process_events.apply_async, kwargs=kwargs),
            from_intake=from_intake,
            what=f"processing of events {chunk}",
        )


def event_enqueue(*, event_pk: int, countdown: float | None = None) -> None:
    """Enqueue processing of one event after the current transaction commits (retries, replays)."""
    from events.tasks import process_event

    transaction.on_commit(
        lambda: _publish(
            lambda: process_event.apply_async(kwargs={"event_pk": event_pk}, countdown=countdown),
            from_intake=False,
            what=f"processing of event {event_pk}",
        )
    )
