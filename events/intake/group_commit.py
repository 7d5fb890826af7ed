"""Group commit for the intake: the events a web process accepts at the same moment share one INSERT
and one COMMIT.

Every accepted event has to be durable before its 202, and one transaction per event costs a round trip,
a WAL flush and the statement's overhead each time. Here request threads hand their row to one writer
thread per process and wait; the writer takes everything queued (up to INTAKE_GROUP_COMMIT_MAX_BATCH),
stores it with ``events_store`` in one statement, wakes each request with its pk, and hands the new pks
to a dispatcher thread that enqueues their processing. There is no waiting for a batch to fill: under
light load a batch is one event (the latency of a plain insert); under heavy load batches grow by
themselves while the previous commit is running.

Failures stay per request: if the batch's database is unreachable, every request in it gets the
database error (503, EventBridge retries); if one row is refused, the batch is retried row by row so
only that request fails. A request is answered only after its own row is committed, or with an error.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

from events.dispatch import events_dispatch
from events.intake.envelope import Envelope
from events.intake.store import events_store
from orchestrator.errors import ApplicationError
from orchestrator.telemetry import trace_carrier

logger = logging.getLogger(__name__)

_CONNECTION_ERRORS = (OperationalError, InterfaceError)


class StoreTimeout(ApplicationError):
    def __init__(self) -> None:
        super().__init__("The event could not be stored in time; retry.", code="store_timeout", status_code=503)


class _Signal:
    """A one-shot ``threading.Event`` for exactly one waiter: a bare lock, held until ``set``. An Event builds
    a Condition and a waiter lock per wait, a noticeable cost at one per accepted event."""

    __slots__ = ("_lock", "_set")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        return self._set or self._lock.acquire(timeout=timeout)


@dataclass
class _Submission:
    envelope: Envelope
    done: _Signal = field(default_factory=_Signal)
    pk: int | None = None
    error: BaseException | None = None
    trace: dict[str, str] | None = field(default_factory=trace_carrier)  # the request's trace, if traced


@dataclass
class _CloseConnections:
    """Asks a writer or dispatcher thread to close its database connections (and says when it has)."""

    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        connections.close_all()
        self.done.set()


class _WriterConnection:
    """The writer's own database connection, kept from one batch to the next (it commits hundreds of times a
    second) and never borrowed from the connection pool that gevent web workers use: a pooled connection
    would go back to the pool after every batch, and after a server restart the pool's idle connections are
    all broken at once. Broken connections are replaced (see ``_commit``)."""

    def __init__(self) -> None:
        self._db: BaseDatabaseWrapper | None = None

    def get(self) -> BaseDatabaseWrapper:
        if self._db is None:
            settings_dict = {**connections.settings[DEFAULT_DB_ALIAS]}
            settings_dict["OPTIONS"] = {
                name: value for name, value in settings_dict["OPTIONS"].items() if name != "pool"
            }
            settings_dict["CONN_MAX_AGE"] = None  # kept until it breaks
            # No health-check query before every batch: a broken connection fails the batch's one statement,
            # which ``_commit`` repeats once on a new connection.
            settings_dict["CONN_HEALTH_CHECKS"] = False
            self._db = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, DEFAULT_DB_ALIAS)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def forget(self) -> None:
        """After a fork: the parent's connection is not this process's to use or close."""
        self._db = None


_writer_db = _WriterConnection()


class GroupCommitWriter:
    """One writer thread per process (started on first use, and again after a fork), plus its dispatcher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = False
        os.register_at_fork(after_in_child=self._forget_threads)
        self._queue: queue.SimpleQueue[_Submission | _CloseConnections] = queue.SimpleQueue()
        self._committed: queue.SimpleQueue[list[int] | _CloseConnections] = queue.SimpleQueue()
        self._traces: dict[int, dict[str, str]] = {}  # committed, not yet dispatched: event pk -> its request's trace

    def store(self, envelope: Envelope) -> int | None:
        """Store the event with the next batch; its pk, or None when its id was already stored."""
        submission = _Submission(envelope)
        if not self._started:
            self._start()
        self._queue.put(submission)
        if not submission.done.wait(settings.INTAKE_STORE_TIMEOUT_SECONDS):
            # It may still be committed later: EventBridge's retry then gets "duplicate", never a loss.
            raise StoreTimeout
        if submission.error is not None:
            raise submission.error
        return submission.pk

    def close_connections(self, *, timeout: float = 10.0) -> None:
        """Have both threads close their database connections, e.g. before a test database is dropped;
        they reconnect when work arrives again."""
        if not self._started:
            return
        requests = [_CloseConnections(), _CloseConnections()]
        self._queue.put(requests[0])
        self._committed.put(requests[1])
        for request in requests:
            request.done.wait(timeout)

    def _start(self) -> None:
        with self._lock:
            if not self._started:
                self._queue, self._committed = queue.SimpleQueue(), queue.SimpleQueue()
                for target, name in ((self._write_forever, "commit"), (self._dispatch_forever, "dispatch")):
                    threading.Thread(target=target, name=f"intake-{name}", daemon=True).start()
                self._started = True

    def _forget_threads(self) -> None:
        """A forked child (a gunicorn worker) has none of its parent's threads: it starts its own."""
        self._lock = threading.Lock()
        self._started = False
        self._traces = {}
        _writer_db.forget()

    def _write_forever(self) -> None:
        while True:
            batch, close = _drain(self._queue, limit=settings.INTAKE_GROUP_COMMIT_MAX_BATCH)
            if batch:
                new = self._write_safely(batch)
                if new:
                    self._committed.put(new)
            if close:
                _writer_db.close()
                close.run()

    def _dispatch_forever(self) -> None:
        """Send processing of committed events to the broker, in its own thread so a publish never delays the
        next commit: at once after a quiet spell, at most once per interval under load, so a busy process
        sends many ids per broker message instead of one message per event."""
        last_dispatch = 0.0
        while True:
            chunks, close = _drain(self._committed, limit=None)
            wait = last_dispatch + settings.EVENT_DISPATCH_INTERVAL_SECONDS - time.monotonic()
            if chunks and not close and wait > 0:
                time.sleep(wait)
                later, close = _drain(self._committed, limit=None, block=False)
                chunks += later
            pks = [pk for chunk in chunks for pk in chunk]
            if pks:
                traces = {pk: self._traces.pop(pk) for pk in pks if pk in self._traces}
                try:
                    events_dispatch(pks, from_intake=True, trace_parents=traces)
                except Exception:  # the rows are committed: the sweeper dispatches them later
                    logger.exception("dispatching accepted events failed")
                last_dispatch = time.monotonic()
            if close:
                close.run()

    def _write_safely(self, batch: list[_Submission]) -> list[int]:
        try:
            return self._write(batch)
        except BaseException as error:  # never leave a request waiting, whatever happened
            logger.exception("group commit failed unexpectedly")
            _fail([submission for submission in batch if not submission.done.is_set()], error)
            return []

    def _write(self, batch: list[_Submission]) -> list[int]:
        """Commit the batch and wake its requests; the pks of the new rows."""
        try:
            pks = _commit([submission.envelope for submission in batch])
        except _CONNECTION_ERRORS as error:
            _fail(batch, error)
            return []
        except DatabaseError as error:
            if len(batch) == 1:
                _fail(batch, error)
                return []
            # One refused row must not fail the others: each alone.
            return [pk for submission in batch for pk in self._write([submission])]
        for submission, pk in zip(batch, pks, strict=True):
            submission.pk = pk
            if submission.trace and pk is not None:
                self._traces[pk] = submission.trace
            submission.done.set()
        return [pk for pk in pks if pk is not None]


Item = TypeVar("Item")


def _drain(
    items: queue.SimpleQueue[Item | _CloseConnections], *, limit: int | None, block: bool = True
) -> tuple[list[Item], _CloseConnections | None]:
    """Take what is queued (waiting for a first item if ``block``), up to ``limit``, stopping at a close
    request."""
    taken: list[Item] = []
    try:
        item = items.get(block=block)
        while True:
            if isinstance(item, _CloseConnections):
                return taken, item
            taken.append(item)
            if limit is not None and len(taken) >= limit:
                return taken, None
            item = items.get_nowait()
    except queue.Empty:
        return taken, None


def _fail(batch: list[_Submission], error: BaseException) -> None:
    for submission in batch:
        # Each waiting request raises its own copy: one exception object must not be raised in many threads.
        submission.error = error if len(batch) == 1 else error.__class__(*error.args)
        submission.done.set()


def _commit(envelopes: list[Envelope]) -> list[int | None]:
    """Store in one statement (autocommit: its own transaction, one round trip); once more on a new
    connection if the kept one was broken (the server restarted since the last batch). Repeating a commit
    whose answer was lost is harmless: its rows come back as already stored, and their requests answer
    "duplicate"."""
    db = _writer_db.get()
    db.close_if_unusable_or_obsolete()  # a connection that raised errors is checked, and dropped if broken
    try:
        return events_store(envelopes, db=db)
    except _CONNECTION_ERRORS:
        db.close()
    try:
        return events_store(envelopes, db=db)
    except _CONNECTION_ERRORS:
        db.close()
        raise


intake_writer = GroupCommitWriter()
