"""Small pieces every app's admin shares."""

import json
from typing import Any

from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.redaction import redact


def pretty_json(value: Any) -> str:
    """A JSON value as an indented, secret-masked block for a read-only admin field."""
    return format_html(
        "<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(redact(value), indent=2, sort_keys=True)
    )


class ReadOnlyAdminMixin:
    """Rows that are records (events, attempts, history, builds): shown, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


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
