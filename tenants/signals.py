"""Signals other apps subscribe to, so the lifecycle does not import its listeners (webhooks)."""

from django.dispatch import Signal

# Sent inside the transaction that changed the status, after the change is saved.
# kwargs: tenant (Tenant), from_status (str), to_status (str), reason (str), context (dict)
# Receivers that do I/O must defer it with transaction.on_commit.
tenant_status_changed = Signal()

# Sent while a tenant's full record is exported (tenants.services.offboarding); each receiver returns an
# iterable of JSON lines (orchestrator.exports.record_line) for its own app's rows of the tenant.
# kwargs: tenant (Tenant)
tenant_record_requested = Signal()

# Sent before a tenant is purged, outside any transaction; each receiver deletes its own app's rows of the
# tenant (in batches, orchestrator.retention.rows_purge) so the tenant's row can go.
# kwargs: tenant (Tenant)
tenant_purging = Signal()
