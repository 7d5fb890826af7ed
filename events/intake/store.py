"""The intake's row store: new events inserted with one statement per batch, whatever the batch size.

Used by ``event_receive`` (one event) and by the group-commit writer (``events.intake.group_commit``, the
events a web process accepts at the same moment).
"""

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from events.intake.envelope import Envelope
from events.models import ReceivedEvent
from orchestrator.model_columns import column_name, concrete_field
from orchestrator.sealing import seal

logger = logging.getLogger(__name__)


# What the intake writes from the envelope; every other column of ReceivedEvent takes its default.
_ENVELOPE_COLUMNS = (
    "event_id",
    "detail_type",
    "source",
    "account",
    "region",
    "time",
    "resources",
    "detail_override",
    "envelope",
    "body_sha256",
    "tenant_id",
)


def _verbatim(text: str) -> str:
    return text


def _json_text_param(db: BaseDatabaseWrapper, text: str) -> Any:
    """A JSON column's parameter from text that is already JSON (no second encoding)."""
    if db.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(text, dumps=_verbatim)
    return text


def _event_values(envelope: Envelope, db: BaseDatabaseWrapper) -> list[Any]:
    """The ``_ENVELOPE_COLUMNS`` of one event, ready to be parameters, secrets sealed as the model's
    ``SealedJSONField`` would (this insert does not go through the fields). The validated detail is stored
    only when it differs from the envelope's (``ReceivedEvent.detail_override``)."""
    json_param = db.ops.adapt_json_value
    time_field = ReceivedEvent._meta.get_field("time")
    sealed_envelope = seal(envelope.raw)
    if sealed_envelope is envelope.raw:  # nothing secret: store the canonical text already encoded
        stored_envelope = _json_text_param(db, envelope.canonical_json)
    else:
        stored_envelope = _json_text_param(db, json.dumps(sealed_envelope, separators=(",", ":"), ensure_ascii=False))
    override = None if envelope.detail == envelope.raw.get("detail") else json_param(seal(envelope.detail), None)
    return [
        envelope.event_id,
        envelope.detail_type,
        envelope.source,
        envelope.account,
        envelope.region,
        time_field.get_db_prep_save(envelope.time, db),
        json_param(envelope.resources, None),
        override,
        stored_envelope,
        envelope.body_sha256,
        envelope.tenant_id,
    ]


def detail_as_stored(detail: dict[str, Any]) -> dict[str, Any]:
    """``detail`` as a handler reads it back from the events table, for the dry run: PostgreSQL's jsonb keeps
    no key order (it orders keys by length, then bytes), and the payloads built from a detail keep the order
    they find. Reads only (a ``SELECT`` of the parameter); other databases keep the order as it is."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        return json.loads(json.dumps(detail))
    with db.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb", [db.ops.adapt_json_value(detail, None)])
        (value,) = cursor.fetchone()
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class _InsertPlan:
    """How the intake inserts events on one kind of database, worked out once per process: the statement's
    fixed text, and the value of every column the envelope does not give (the model's defaults; the
    ``auto_now`` timestamps are the only ones that change, and are filled in per batch)."""

    head: str
    tail: str
    native_placeholders: bool  # PostgreSQL: ``$n`` on a raw cursor (see ``_insert_rows``)
    defaults: tuple[Any, ...]
    timestamp_positions: tuple[int, ...]  # which of ``defaults`` are "now"

    def defaults_now(self, db: BaseDatabaseWrapper) -> list[Any]:
        values = list(self.defaults)
        if self.timestamp_positions:
            now = ReceivedEvent._meta.get_field("received_at").get_db_prep_save(timezone.now(), db)
            for position in self.timestamp_positions:
                values[position] = now
        return values


_insert_plans: dict[str, _InsertPlan] = {}


def _insert_plan(db: BaseDatabaseWrapper) -> _InsertPlan:
    plan = _insert_plans.get(db.vendor)
    if plan is None:
        meta = ReceivedEvent._meta
        defaulted = [
            field for field in meta.concrete_fields if not field.primary_key and field.name not in _ENVELOPE_COLUMNS
        ]
        is_timestamp = [
            getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) for field in defaulted
        ]
        quote = db.ops.quote_name
        columns = [column_name(concrete_field(ReceivedEvent, name)) for name in _ENVELOPE_COLUMNS] + [
            column_name(field) for field in defaulted
        ]
        event_id_column = quote(column_name(concrete_field(ReceivedEvent, "event_id")))
        pk_column = quote(column_name(meta.pk))
        # Identifiers come from the model's metadata, values are parameters: nothing user-supplied is spliced.
        plan = _insert_plans[db.vendor] = _InsertPlan(
            head=f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(column) for column in columns)}) VALUES ",  # noqa: S608
            tail=f" ON CONFLICT ({event_id_column}) DO NOTHING RETURNING {pk_column}, {event_id_column}",
            native_placeholders=db.vendor == "postgresql",
            defaults=tuple(
                None if timestamp else field.get_db_prep_save(field.get_default(), db)
                for field, timestamp in zip(defaulted, is_timestamp, strict=True)
            ),
            timestamp_positions=tuple(index for index, timestamp in enumerate(is_timestamp) if timestamp),
        )
    return plan


@functools.lru_cache(maxsize=512)
def _values_clause(rows: int, width: int, native: bool) -> str:
    """``(p, p, ...), (p, ...)`` for ``rows`` rows of ``width`` parameters (``$n`` or ``%s``)."""
    if native:
        numbers = iter(range(1, width * rows + 1))
        return ", ".join("(" + ", ".join(f"${next(numbers)}" for _ in range(width)) + ")" for _ in range(rows))
    return ", ".join([f"({', '.join(['%s'] * width)})"] * rows)


def _insert_rows(db: BaseDatabaseWrapper, plan: _InsertPlan, rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """Run the plan's ``INSERT ... VALUES (row), (row), ... ON CONFLICT ...`` and return what it returns.

    On PostgreSQL with native ``$n`` placeholders on a raw cursor: psycopg then neither escapes every
    parameter in Python (Django's default client-side binding) nor parses the statement (which it cannot
    cache beyond 50 parameters); those two were most of the cost of storing a batch of large JSON events.
    """
    db.ensure_connection()
    if plan.native_placeholders:
        import psycopg

        # What ``db.make_cursor(raw)`` returns (Django's wrapper without debug logging), built here because
        # django-stubs types make_cursor's argument as the wrapper instead of the driver's cursor.
        cursor = CursorWrapper(psycopg.RawCursor(db.connection), db)
    else:
        cursor = db.cursor()
    sql = plan.head + _values_clause(len(rows), len(rows[0]), plan.native_placeholders) + plan.tail
    with cursor:
        cursor.execute(sql, [value for row in rows for value in row])
        return cursor.fetchall()


def events_store(envelopes: Sequence[Envelope], *, db: BaseDatabaseWrapper | None = None) -> list[int | None]:
    """Insert new events with one ``INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING``.

    Returns, per envelope, the new row's pk, or None when its id is already stored (or repeats an earlier
    envelope of the same batch): the caller then decides between duplicate and conflict. Racing inserts of
    one id are decided by the unique index. One statement for a whole batch is what makes group commit
    cheap; the columns the envelope does not give take their model defaults (``_InsertPlan``).
    ``db``: the connection to use (the group-commit writer passes its own); the thread's default otherwise.
    """
    first_of_id: dict[str, int] = {}
    for index, envelope in enumerate(envelopes):
        first_of_id.setdefault(envelope.event_id, index)
    if db is None:
        db = connections[DEFAULT_DB_ALIAS]  # the thread's connection itself: the proxy costs a lookup per use
    plan = _insert_plan(db)
    defaults = plan.defaults_now(db)
    rows = [_event_values(envelopes[index], db) + defaults for index in first_of_id.values()]
    pk_of_id = {event_id: pk for pk, event_id in _insert_rows(db, plan, rows)}
    pks: list[int | None] = [None] * len(envelopes)
    for event_id, index in first_of_id.items():
        pks[index] = pk_of_id.get(event_id)
    if pk_of_id:  # one line per batch: under load a line per event costs more than storing it
        logger.info(
            "events accepted",
            extra={"events": [{"event_id": event_id, "event_pk": pk} for event_id, pk in pk_of_id.items()]},
        )
    return pks
