"""Template helpers for the staff portal: the dashboard's data (status badges: ``orchestrator.templatetags.badges``)."""

from typing import Any

from django import template

from portal.dashboard import Dashboard, dashboard_get

register = template.Library()


@register.simple_tag(takes_context=True)
def portal_dashboard(context: dict[str, Any]) -> Dashboard | None:
    """The dashboard for staff who may view tenants; nothing for the others."""
    request = context.get("request")
    if request is None or not request.user.has_perm("tenants.view_tenant"):
        return None
    return dashboard_get()
