"""What the doctor finds: a finding names its object, why it needs attention, since when, and its fixes."""

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.urls import reverse


@dataclass(frozen=True)
class Fix:
    """A one-click fix: ``action`` (a key of ``portal.doctor.fixes.FIX_ACTIONS``) applied to ``target``."""

    action: str
    target: str


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str  # the rule's name for people
    tenant_id: str  # "" when the object belongs to no tenant (an event naming none)
    object_type: str  # "build", "delivery", "tenant", "event"
    object_id: str
    reason: str  # why it needs attention, with what the rule measured
    since: datetime  # when the situation began: the finding's age is counted from it
    admin_path: str  # the admin page of the object
    fixes: tuple[Fix, ...] = ()

    @property
    def key(self) -> str:
        """Stable while the situation lasts; a new occurrence (a later ``since``) is a new finding."""
        return f"{self.rule}:{self.object_type}:{self.object_id}:{int(self.since.timestamp())}"

    def age_seconds(self, now: datetime) -> int:
        return max(0, int((now - self.since).total_seconds()))


class Rule(ABC):
    """One reason things get stuck. ``generic`` rules only report tenants no specific rule explains."""

    name: ClassVar[str]
    title: ClassVar[str]
    generic: ClassVar[bool] = False
    # Findings per rule at most: the doctor is read on every dashboard view.
    limit: ClassVar[int] = 100

    @abstractmethod
    def findings(self, *, now: datetime) -> Iterable[Finding]: ...

    def finding(self, **fields: Any) -> Finding:
        """A finding of this rule (``fields``: the rest of ``Finding``'s)."""
        return Finding(rule=self.name, title=self.title, **fields)

    def tenant_finding(self, *, tenant_id: str, **fields: Any) -> Finding:
        """A finding about a tenant itself, pointing at its page."""
        admin_path = reverse("admin:tenants_tenant_change", args=[tenant_id])
        return self.finding(
            tenant_id=tenant_id, object_type="tenant", object_id=tenant_id, admin_path=admin_path, **fields
        )
