"""Offboarding and audits: a tenant's full record as JSON Lines, and the purge of deprovisioned tenants.

The record (``tenant_record_lines``) is a header line, then one line per row: the tenant (document, plan,
configs), its history, its builds, the events received and emitted for it with their attempts (events app),
and whatever the apps above add through ``tenant_record_requested`` (webhooks: deployments, deliveries and
attempts). Secrets are masked (``orchestrator.exports``).

A tenant that has been INACTIVE for ``TENANT_PURGE_AFTER_DAYS`` is purged (``tenant_purge``): its record is
exported first and kept (``export_store``: S3 or ``TENANT_EXPORT_DIR``), then its item leaves DynamoDB, the
apps above delete their rows (``tenant_purging``), then its events, history, builds and the tenant itself go,
each in batches. Nothing is deleted unless the export was stored.
"""

import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError
from django.contrib.auth.models import User
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from events.retention import tenant_event_lines, tenant_events_purge
from orchestrator.errors import ConflictError, ServiceUnavailableError
from orchestrator.exports import export_store, header_line, record_line
from orchestrator.retention import rows_purge
from tenants.models import Build, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.history import history_record
from tenants.services.sync import tenant_item_delete
from tenants.signals import tenant_purging, tenant_record_requested

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "orchestrator.tenant-export/1"


class TextSink(Protocol):
    """Where an export is written: a text file, a command's stdout or a streaming HTTP response."""

    def write(self, text: str, /) -> object: ...


def tenant_record_lines(*, tenant: Tenant) -> Iterator[str]:
    """The tenant's full record, one JSON line per row (see the module docstring)."""
    yield header_line(format=EXPORT_FORMAT, tenant_id=tenant.pk, tenant_key=tenant.key, exported_at=timezone.now())
    yield record_line("tenant", tenant)
    for entry in TenantHistory.objects.filter(tenant=tenant).order_by("at", "pk").iterator():
        yield record_line("history", entry)
    for build in Build.objects.filter(tenant=tenant).order_by("pk").iterator():
        yield record_line("build", build)
    yield from tenant_event_lines(tenant_id=tenant.pk)
    for _receiver, lines in tenant_record_requested.send(sender=Tenant, tenant=tenant):
        # Each receiver returns its lines (tenants.signals); django-stubs types every response ``str | None``.
        yield from cast("Iterable[str]", lines)


def tenant_export(*, tenant: Tenant, stream: TextSink, actor_user: User | None = None, via: str) -> int:
    """Write the tenant's record to ``stream`` and note on its timeline who exported it, and how (``via``).
    Lines written."""
    written = 0
    for line in tenant_record_lines(tenant=tenant):
        stream.write(line)
        written += 1
    history_record(
        tenant=tenant,
        kind=HistoryKind.STAFF_ACTION if actor_user is not None else HistoryKind.NOTE,
        summary=f"Full record exported ({via}, {written} lines)",
        actor_user=actor_user,
    )
    return written


def tenant_purge(*, tenant: Tenant) -> str:
    """Export a deprovisioned tenant's record, keep it, then delete the tenant and everything of it.
    Returns where the export is kept. Refused for a tenant that is not INACTIVE."""
    if tenant.status != TenantStatus.INACTIVE:
        raise ConflictError(f"Only deprovisioned (INACTIVE) tenants are purged; {tenant.pk} is {tenant.status}.")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    location = export_store(name=f"{tenant.key}-{tenant.pk}-{stamp}.jsonl", lines=tenant_record_lines(tenant=tenant))
    tenant_item_delete(tenant_id=tenant.pk)
    tenant_purging.send(sender=Tenant, tenant=tenant)
    tenant_events_purge(tenant_id=tenant.pk)
    rows_purge(TenantHistory.objects.filter(tenant=tenant))
    rows_purge(Build.objects.filter(tenant=tenant))
    if not rows_purge(Tenant.objects.filter(pk=tenant.pk)):
        raise ConflictError(f"Tenant {tenant.pk} is still referenced by rows no app removed; it was not purged.")
    logger.info("tenant %s (%s) purged; its record is kept at %s", tenant.pk, tenant.key, location)
    return location


def tenants_purge_deprovisioned(*, cutoff: datetime, deadline: float | None = None) -> int:
    """Purge tenants INACTIVE since before ``cutoff`` (their last status change). A tenant whose export or
    DynamoDB delete fails stays for the next run. Tenants purged."""
    became_inactive = (
        TenantHistory.objects.filter(tenant=OuterRef("pk"), kind=HistoryKind.TRANSITION).order_by("-at").values("at")
    )
    due = (
        Tenant.objects.filter(status=TenantStatus.INACTIVE)
        .annotate(inactive_since=Subquery(became_inactive[:1]))
        .filter(inactive_since__lt=cutoff)
        .order_by("inactive_since")
    )
    purged = 0
    for tenant in due:
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            tenant_purge(tenant=tenant)
        except (OSError, ClientError, BotoCoreError, ServiceUnavailableError) as error:
            logger.warning("tenant %s not purged this time: %s", tenant.pk, error)
            continue
        purged += 1
    return purged
