"""Template helpers for the staff portal: the dashboard's data and status badges."""

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from portal.dashboard import Dashboard, dashboard_get

register = template.Library()

# Status value -> badge colour (CSS class ``badge-<colour>``), shared by tenants, builds, deliveries, events.
BADGE_COLOURS = {
    # tenants
    "PENDING_PROVISION": "grey",
    "PROVISIONING": "blue",
    "DEPLOYING": "blue",
    "DEPROVISIONING": "blue",
    "ACTIVE": "green",
    "INACTIVE": "grey",
    "PROVISION_FAILED": "red",
    "DEPLOY_FAILED": "red",
    "DEPROVISION_FAILED": "red",
    # builds
    "IN_PROGRESS": "blue",
    "SUCCEEDED": "green",
    "FAILED": "red",
    "FAULT": "red",
    "TIMED_OUT": "red",
    "STOPPED": "amber",
    # deliveries, events, attempts
    "waiting": "grey",
    "blocked": "amber",
    "pending": "blue",
    "retrying": "amber",
    "succeeded": "green",
    "failed": "red",
    "skipped": "grey",
    "cancelled": "grey",
    "accepted": "blue",
    "processing": "blue",
    "processed": "green",
    "running": "blue",
    "rejected": "red",
    # history kinds
    "event": "purple",
    "transition": "blue",
    "transition_refused": "amber",
    "build": "teal",
    "callback": "indigo",
    "staff_action": "brown",
    "sync": "grey",
    "note": "grey",
}


def badge_html(value: str, label: str | None = None) -> SafeString:
    colour = BADGE_COLOURS.get(str(value), "grey")
    return format_html('<span class="badge badge-{}" data-status="{}">{}</span>', colour, value, label or value)


@register.simple_tag
def badge(value: str, label: str | None = None) -> SafeString:
    return badge_html(value, label)


@register.simple_tag(takes_context=True)
def portal_dashboard(context: dict[str, Any]) -> Dashboard | None:
    """The dashboard for staff who may view tenants; nothing for the others."""
    request = context.get("request")
    if request is None or not request.user.has_perm("tenants.view_tenant"):
        return None
    return dashboard_get()
