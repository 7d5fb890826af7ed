"""Small pieces every app's admin shares."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db import router, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from orchestrator.errors import ApplicationError
from orchestrator.redaction import redacted_json

if TYPE_CHECKING:  # django-stubs' names for what admin options accept
    from django.contrib.admin.options import _FieldGroups, _FieldsetSpec


def pretty_json(value: Any) -> str:
    """A JSON value as an indented, secret-masked block for a read-only admin field."""
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", redacted_json(value, indent=2, sort_keys=True))


# For ``readonly_fields`` of admins that show every field read-only: derived, the two lists cannot drift apart.
def field_names(fields: "_FieldGroups") -> list[str]:
    """The fields an admin ``fields`` option names (those grouped on one line included)."""
    return [name for entry in fields for name in ([entry] if isinstance(entry, str) else entry)]


def fieldset_fields(fieldsets: "_FieldsetSpec") -> list[str]:
    """The fields ``fieldsets`` show."""
    return [name for _title, options in fieldsets for name in field_names(options["fields"])]


class ReadOnlyAdminMixin:
    """Rows that are records (events, attempts, history, builds): shown, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def form_errors_add(form: forms.BaseForm, error: ApplicationError) -> None:
    """A service's refusal shown on the form: each field's reasons next to the field, the rest on top."""
    for field, reasons in (error.fields or {"__all__": [error.message]}).items():
        for reason in reasons:
            form.add_error(field if field in form.fields else None, reason)


class ServiceWritesAdmin(admin.ModelAdmin):
    """A ModelAdmin whose ``save_*``/``delete_*`` call services: a refusal (``ApplicationError``) raised while
    saving, on the delete page or by an action such as the bulk "Delete selected" becomes an error message
    instead of a 500, and changes nothing: the view's transaction, log entries included, is rolled back.
    (Forms run the services' checks first; this is for what only the write itself can know.)"""

    def _refusal_as_message(self, request: HttpRequest, view: Callable[[], Any], redirect_to: str) -> Any:
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                return view()
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(redirect_to)

    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        view = super().changeform_view
        return self._refusal_as_message(
            request, lambda: view(request, object_id, form_url, extra_context), request.get_full_path()
        )

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        view = super().delete_view
        opts = self.model._meta
        change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
        return self._refusal_as_message(request, lambda: view(request, object_id, extra_context), change_url)

    # ``*args``: Django 6 adds an ``action_location`` argument (django-stubs 6.x describes it; we run 5.2).
    def response_action(self, request: HttpRequest, queryset: QuerySet, *args: Any) -> HttpResponse | None:
        view = super().response_action
        return self._refusal_as_message(request, lambda: view(request, queryset, *args), request.get_full_path())


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
    "UPDATING": "blue",
    "SUSPENDING": "blue",
    "RESUMING": "blue",
    "SUSPENDED": "amber",
    "UPDATE_FAILED": "red",
    "SUSPEND_FAILED": "red",
    "RESUME_FAILED": "red",
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


def secret_once_page(
    model_admin: admin.ModelAdmin, request: HttpRequest, template: str, **context: Any
) -> TemplateResponse:
    """A page showing secrets that were just made and are never shown again: never cached."""
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **context}
    response = TemplateResponse(request, template, context)
    response["Cache-Control"] = "no-store"
    return response
