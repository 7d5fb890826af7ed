"""What the lifecycle tells apps it must not know (webhooks): a tenant's status changed, and why."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.dispatch import Signal

from tenants.models import Tenant


@dataclass(frozen=True)
class TransitionCause:
    """What made a tenant's status change: recorded with the change on the tenant's timeline, and handed to
    the receivers of ``tenant_status_changed``."""

    event_pk: int | None = None  # the received event that caused it
    build_pk: int | None = None  # the build whose result caused it
    build_id: str | None = None  # that build's id at its builder (CodeBuild's names the build, not the event)
    source: str | None = None  # who reported it (a build state's source) or made it (e.g. "webhooks.deployment")
    details: Mapping[str, Any] = field(default_factory=dict)  # more for the timeline only (attempt, deployment, ...)

    def timeline_details(self) -> dict[str, Any]:
        named = {"event_pk": self.event_pk, "build_pk": self.build_pk, "build_id": self.build_id, "source": self.source}
        return {**{key: value for key, value in named.items() if value is not None}, **self.details}


@dataclass(frozen=True)
class TenantStatusChange:
    tenant: Tenant  # as saved, with its new status and version
    from_status: str
    to_status: str
    reason: str
    actor_user: User | None
    cause: TransitionCause


# Sent as ``send(sender=Tenant, change=TenantStatusChange(...))`` inside the transaction that changed the
# status, after the change is saved. Receivers that do I/O must defer it with transaction.on_commit.
tenant_status_changed = Signal()

# Sent while a tenant's full record is exported (tenants.services.offboarding); each receiver returns an
# iterable of JSON lines (orchestrator.exports.record_line) for its own app's rows of the tenant.
# kwargs: tenant (Tenant)
tenant_record_requested = Signal()

# Sent before a tenant is purged, outside any transaction; each receiver deletes its own app's rows of the
# tenant (in batches, orchestrator.retention.rows_purge) so the tenant's row can go.
# kwargs: tenant (Tenant)
tenant_purging = Signal()
