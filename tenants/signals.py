"""Signals other apps subscribe to, so the lifecycle does not import its listeners (webhooks)."""

from django.dispatch import Signal

# Sent inside the transaction that changed the status, after the change is saved.
# kwargs: tenant (Tenant), from_status (str), to_status (str), reason (str), context (dict)
# Receivers that do I/O must defer it with transaction.on_commit.
tenant_status_changed = Signal()
