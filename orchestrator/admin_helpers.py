"""Small pieces every app's admin shares."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html

from orchestrator.redaction import redacted_json


def pretty_json(value: Any) -> str:
    """A JSON value as an indented, secret-masked block for a read-only admin field."""
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", redacted_json(value, indent=2, sort_keys=True))


class ReadOnlyAdminMixin:
    """Rows that are records (events, attempts, history, builds): shown, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def secret_once_page(
    model_admin: admin.ModelAdmin, request: HttpRequest, template: str, **context: Any
) -> TemplateResponse:
    """A page showing secrets that were just made and are never shown again: never cached."""
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **context}
    response = TemplateResponse(request, template, context)
    response["Cache-Control"] = "no-store"
    return response
