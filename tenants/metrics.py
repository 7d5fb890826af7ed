"""The tenants' metrics: onboarding time per tier (recorded when a tenant becomes ACTIVE), and the tenants and
builds by status read from the database."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.dispatch import receiver
from django.utils import timezone
from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from orchestrator.metrics import DatabaseCollector, database_collector_register
from tenants.models import Build, Tenant, TenantStatus
from tenants.selectors import tenant_provisioning_requested_at
from tenants.signals import TenantStatusChange, tenant_status_changed

PROVISIONING_SECONDS = Histogram(
    "orchestrator_tenant_provisioning_duration_seconds",
    "Time from the provisioning event's arrival to the tenant becoming ACTIVE, by tier.",
    ["tier"],
    buckets=(30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400, 43200, 86400),
)


@receiver(tenant_status_changed, dispatch_uid="tenants.metrics.provisioning_duration")
def provisioning_duration_observe(sender: type, *, change: TenantStatusChange, **_: Any) -> None:
    """A tenant became ACTIVE: record how long it took, once the change is committed."""
    if change.to_status != TenantStatus.ACTIVE:
        return
    tenant = change.tenant
    requested_at, tier = tenant_provisioning_requested_at(tenant=tenant), tenant.tier

    def observe() -> None:
        seconds = (timezone.now() - requested_at).total_seconds()
        PROVISIONING_SECONDS.labels(tier=tier).observe(max(0.0, seconds))

    transaction.on_commit(observe)


class TenantsCollector(DatabaseCollector):
    """Tenants by status and tier, builds by purpose and status: one GROUP BY each, at most every
    METRICS_DATABASE_REFRESH_SECONDS (raise it for very large tables)."""

    def read(self) -> dict[str, list[Mapping[str, Any]]]:
        return {
            "tenants": list(Tenant.objects.order_by().values("status", "tier").annotate(count=Count("pk"))),
            "builds": list(Build.objects.order_by().values("purpose", "status").annotate(count=Count("pk"))),
        }

    def metrics(self, data: dict[str, list[dict[str, Any]]], *, now: float) -> Iterable[Metric]:
        tenants = GaugeMetricFamily("orchestrator_tenants", "Tenants by status and tier.", labels=["status", "tier"])
        for row in data["tenants"]:
            tenants.add_metric([row["status"], row["tier"]], row["count"])
        yield tenants
        builds = GaugeMetricFamily("orchestrator_builds", "Builds by purpose and status.", labels=["purpose", "status"])
        for row in data["builds"]:
            builds.add_metric([row["purpose"], row["status"]], row["count"])
        yield builds


database_collector_register(TenantsCollector())
