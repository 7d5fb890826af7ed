"""What the tenants app keeps how long: the log tails LOCAL builds leave in a tenant's history (the entries
themselves stay while the tenant exists), and deprovisioned tenants (``tenants.services.offboarding``).
Registered with orchestrator.retention in ``TenantsConfig.ready``."""

from datetime import datetime

from orchestrator.retention import RetentionRule, in_batches
from tenants.models import HistoryKind, TenantHistory
from tenants.services.offboarding import tenants_purge_deprovisioned

LOG_KEY = "log_tail"


def build_logs_purge(*, cutoff: datetime, deadline: float | None = None) -> int:
    """Drop the build output kept in history entries older than ``cutoff``; the entry (what ran, the exit
    code, how long it took) stays. Entries changed."""
    rows = TenantHistory.objects.filter(kind=HistoryKind.BUILD, at__lt=cutoff, details__has_key=LOG_KEY)
    changed = 0
    for ids in in_batches(rows, deadline=deadline):
        entries = list(TenantHistory.objects.filter(pk__in=ids).only("pk", "details"))
        for entry in entries:
            entry.details.pop(LOG_KEY, None)
            entry.details["log_purged"] = True
        changed += TenantHistory.objects.bulk_update(entries, ["details"])
    return changed


RULES = (
    RetentionRule(name="build logs", days_setting="BUILD_LOG_RETENTION_DAYS", purge=build_logs_purge),
    RetentionRule(
        name="deprovisioned tenants", days_setting="TENANT_PURGE_AFTER_DAYS", purge=tenants_purge_deprovisioned
    ),
)
