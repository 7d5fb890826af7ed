"""Template helpers for the staff portal: the dashboard's data and the doctor's "needs attention" (status badges:
``orchestrator.templatetags.badges``)."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from portal.charts import dashboard_charts
from portal.dashboard import Dashboard, dashboard_get
from portal.doctor.base import Finding
from portal.doctor.fixes import FIX_ACTIONS
from portal.doctor.service import doctor_findings
from portal.svg import Bar, Line, bar_chart, duration_text, line_chart

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


@register.simple_tag(takes_context=True)
def portal_charts(context: dict[str, Any]) -> dict[str, SafeString] | None:
    """The dashboard's charts as inline SVG (``portal.charts`` reads, ``portal.svg`` draws); staff who may view
    tenants only."""
    request = context.get("request")
    if request is None or not request.user.has_perm("tenants.view_tenant"):
        return None
    charts = dashboard_charts()
    events = charts.events
    end = events.start + timedelta(minutes=events.minutes - 1)
    onboarding = [
        Bar(
            key=f"{row.tier}-{name}",
            label=f"{row.tier} {name}",
            value=seconds,
            shown=duration_text(seconds),
            group=row.tier,
        )
        for row in charts.onboarding
        for name, seconds in (("p50", row.p50_seconds), ("p95", row.p95_seconds))
    ]
    return {
        "events": line_chart(
            chart_id="chart-events",
            title="Events per minute by outcome, last hour",
            lines=[Line(series.name, series.label, series.values) for series in events.series],
            x_labels=(f"{events.start:%H:%M}", f"{end:%H:%M} UTC"),
        ),
        "onboarding": bar_chart(
            chart_id="chart-onboarding",
            title=f"Onboarding time per tier (creation to active), p50 and p95, last {charts.window_hours} h",
            bars=onboarding,
            empty="No tenant became active in the window."
            if charts.onboarding_supported
            else "Needs PostgreSQL (percentile_cont).",
        ),
        "deliveries": bar_chart(
            chart_id="chart-deliveries",
            title=f"Deliveries by outcome, created in the last {charts.window_hours} h",
            bars=[
                Bar(key=status, label=label, value=count, shown=str(count))
                for status, label, count in charts.deliveries
            ],
        ),
    }
