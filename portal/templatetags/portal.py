"""Template helpers for the staff portal: the dashboard's data and the doctor's "needs attention" (status badges:
``orchestrator.templatetags.badges``)."""

from dataclasses import dataclass
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone

from portal.dashboard import Dashboard, dashboard_get
from portal.doctor.base import Finding
from portal.doctor.fixes import FIX_ACTIONS
from portal.doctor.service import doctor_findings

register = template.Library()


@register.simple_tag(takes_context=True)
def portal_dashboard(context: dict[str, Any]) -> Dashboard | None:
    """The dashboard for staff who may view tenants; nothing for the others."""
    request = context.get("request")
    if request is None or not request.user.has_perm("tenants.view_tenant"):
        return None
    return dashboard_get()


@dataclass(frozen=True)
class FixButton:
    action: str
    target: str
    label: str


@dataclass(frozen=True)
class AttentionRow:
    finding: Finding
    age_minutes: int
    tenant_url: str
    fixes: list[FixButton]


@register.simple_tag(takes_context=True)
def needs_attention(context: dict[str, Any]) -> list[AttentionRow] | None:
    """The doctor's findings with the fixes this user may apply; nothing for staff who may not view tenants."""
    request = context.get("request")
    if request is None or not request.user.has_perm("tenants.view_tenant"):
        return None
    now = timezone.now()
    rows = []
    for finding in doctor_findings(now=now):
        fixes = [
            FixButton(fix.action, fix.target, FIX_ACTIONS[fix.action].label)
            for fix in finding.fixes
            if request.user.has_perm(FIX_ACTIONS[fix.action].permission)
        ]
        tenant_url = reverse("admin:tenants_tenant_change", args=[finding.tenant_id]) if finding.tenant_id else ""
        rows.append(AttentionRow(finding, finding.age_seconds(now) // 60, tenant_url, fixes))
    return rows
