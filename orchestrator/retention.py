"""Retention: old rows go in small batches, each its own short transaction, never in one long delete.

Each app says what it keeps how long by registering ``RetentionRule``s in its ``AppConfig.ready``; the beat
task ``orchestrator.retention_purge`` runs them all (``retention_run``) within ``RETENTION_MAX_SECONDS``, and
the next run carries on where it stopped. A rule's days come from its setting; ``0`` keeps rows forever.

``rows_purge`` is how a rule deletes: it takes at most ``batch_size`` ids of the rows a query selects
(oldest ids first, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so it never waits for a row a worker holds),
deletes them and what belongs to them, and commits, batch after batch. What belongs to a row follows its
model's relations as Django's own delete would, but without loading rows into Python:

- rows of the same app that cascade from it (an event's attempts) are deleted first, in the same batch;
- references from other apps that Django would set to NULL (a build's event) are set to NULL;
- a row that another app's rows would cascade from, or are protected by, is kept: retention never deletes
  another app's records through a cascade (a deployment keeps its event; the tenant purge removes both).
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from orchestrator.model_columns import column_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionRule:
    """``purge(cutoff=..., deadline=...)`` removes what is older than ``cutoff`` and returns how many rows it
    changed; it stops early at ``deadline`` (``time.monotonic()``)."""

    name: str  # what goes, for logs and the task's result
    days_setting: str  # the setting holding how many days rows are kept (0: forever)
    purge: Callable[..., int]


_rules: dict[str, RetentionRule] = {}


def retention_rule_register(rule: RetentionRule) -> None:
    _rules[rule.name] = rule


def retention_rules() -> list[RetentionRule]:
    return list(_rules.values())


def retention_run(*, now: datetime | None = None, max_seconds: float | None = None) -> dict[str, int]:
    """Run every registered rule whose days are set; rows changed per rule. Stops at the time budget."""
    now = now or timezone.now()
    budget = settings.RETENTION_MAX_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + budget
    done: dict[str, int] = {}
    for rule in retention_rules():
        days = getattr(settings, rule.days_setting)
        if not days or time.monotonic() >= deadline:
            continue
        done[rule.name] = count = rule.purge(cutoff=now - timedelta(days=days), deadline=deadline)
        if count:
            logger.info("retention: %s: %d rows older than %d days purged", rule.name, count, days)
    return done


# --- Batched deletes --------------------------------------------------------------------------------


def rows_purge(rows: models.QuerySet, *, deadline: float | None = None, batch_size: int | None = None) -> int:
    """Delete the rows ``rows`` selects (and what belongs to them, see the module docstring) in batches of
    ``batch_size`` (``RETENTION_BATCH_SIZE``), one short transaction each, until none is left or the
    deadline passes. Rows deleted."""
    batches = in_batches(_without_rows_others_need(rows), deadline=deadline, batch_size=batch_size)
    return sum(_delete(rows.model, ids) for ids in batches)


def in_batches(
    rows: models.QuerySet, *, deadline: float | None = None, batch_size: int | None = None
) -> Iterator[list]:
    """The ids of ``rows``, oldest first, ``batch_size`` at a time, each list inside its own transaction that
    commits when the caller asks for the next one (the rows locked, skipping rows someone else holds)."""
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    candidates = rows.order_by("pk").values_list("pk", flat=True)
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    after = None
    while deadline is None or time.monotonic() < deadline:
        # Each batch starts after the last id of the one before (keyset), not at the first candidate: the
        # rows just deleted stay in the indexes as dead entries until vacuum, and scanning them again every
        # batch would make a large purge quadratic.
        batch = candidates if after is None else candidates.filter(pk__gt=after)
        with transaction.atomic():
            ids = list(batch[:batch_size])
            if ids:
                yield ids
        if len(ids) < batch_size:
            return
        after = ids[-1]


def _incoming(model: type[models.Model]) -> Iterable[models.ForeignObjectRel]:
    """Relations whose foreign key points at ``model`` (reverse one-to-one and many-to-one)."""
    return (relation for relation in model._meta.related_objects if relation.field.concrete)


def _same_app(relation: models.ForeignObjectRel, model: type[models.Model]) -> bool:
    return relation.related_model._meta.app_label == model._meta.app_label


def _without_rows_others_need(rows: models.QuerySet) -> models.QuerySet:
    """``rows`` less those another app's rows would be deleted with (CASCADE) or are protected by."""
    model = rows.model
    for relation in _incoming(model):
        if _same_app(relation, model) or relation.on_delete in (models.SET_NULL, models.DO_NOTHING):
            continue
        referrers = relation.related_model._base_manager.filter(**{relation.field.name: OuterRef("pk")})
        rows = rows.exclude(Exists(referrers))
    return rows


def _delete(model: type[models.Model], ids: list) -> int:
    """Delete these rows of ``model``: their own app's cascading rows first, other apps' references set to
    NULL. Raw statements: nothing is loaded into Python, no signals."""
    for relation in _incoming(model):
        children = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": ids})
        if relation.on_delete is models.SET_NULL:
            children.update(**{relation.field.name: None})
        elif relation.on_delete is models.CASCADE and _same_app(relation, model):
            child_ids = list(children.values_list("pk", flat=True))
            if child_ids:
                _delete(relation.related_model, child_ids)
    table, pk = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(column_name(model._meta.pk))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one array parameter: cheaper to send and plan than N of them
            cursor.execute(f"DELETE FROM {table} WHERE {pk} = ANY(%s)", [ids])  # noqa: S608
        else:
            cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({', '.join(['%s'] * len(ids))})", ids)  # noqa: S608
        return cursor.rowcount
