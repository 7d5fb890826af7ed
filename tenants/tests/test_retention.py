"""Retention in the tenants app: old build output leaves the history entries, which stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.models import HistoryKind, TenantHistory
from tenants.services.retention import build_logs_purge
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def build_entry(tenant, *, age_days: int) -> TenantHistory:
    entry = TenantHistory.objects.create(
        tenant=tenant,
        kind=HistoryKind.BUILD,
        summary="Local provision command finished: succeeded",
        details={"exit_code": 0, "seconds": 1.5, "log_tail": ["step 1", "step 2"]},
    )
    TenantHistory.objects.filter(pk=entry.pk).update(at=timezone.now() - timedelta(days=age_days))
    return entry


def test_old_build_output_is_dropped_and_every_history_entry_stays(settings):
    settings.RETENTION_BATCH_SIZE = 1
    tenant = TenantFactory()
    old = [build_entry(tenant, age_days=100) for _ in range(2)]
    recent = build_entry(tenant, age_days=10)
    note = TenantHistory.objects.create(tenant=tenant, kind=HistoryKind.NOTE, summary="kept", details={"a": 1})

    changed = build_logs_purge(cutoff=timezone.now() - timedelta(days=90))

    assert changed == 2
    assert TenantHistory.objects.filter(tenant=tenant).count() == 4
    for entry in old:
        entry.refresh_from_db()
        assert entry.details == {"exit_code": 0, "seconds": 1.5, "log_purged": True}
    recent.refresh_from_db()
    note.refresh_from_db()
    assert recent.details["log_tail"] == ["step 1", "step 2"]
    assert note.details == {"a": 1}
