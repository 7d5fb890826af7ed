"""The tenant page's operations (``TenantAdmin`` mixes this in): update the plan, retry or roll back a failed
update, suspend, resume. POST-only, permission-checked (``update_tenant``, ``suspend_tenant``), calling the
same services as the API (``tenants.services.operations``), which record them on the tenant's timeline.

"Update plan…" is a POST that first shows the plan form (the current or pending plan as JSON, secrets masked,
validated as the ``TENANT_UPDATE`` event's ``planConfig``); the form posts it back with ``plan``. A value
left masked keeps the one it stands for (secrets are never shown, nor lost by an edit).
"""

import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import reverse

from events.catalogue import PlanConfigSchema
from orchestrator.redaction import MASK, redact
from orchestrator.staff import PERM_SUSPEND, PERM_UPDATE
from tenants.models import Tenant, TenantStatus
from tenants.services.operations import (
    STARTS_FROM,
    tenant_resume,
    tenant_suspend,
    tenant_update,
    tenant_update_roll_back,
)

# (view name, label, style, the statuses that show the button, the permission it needs: "update" or "suspend")
_BUTTONS: tuple[tuple[str, str, str, frozenset[str], str], ...] = (
    ("update_plan", "Update plan…", "", frozenset({TenantStatus.ACTIVE}), "update"),
    ("retry_update", "Retry update", "", frozenset({TenantStatus.UPDATE_FAILED}), "update"),
    ("roll_back_update", "Roll back update", "secondary", frozenset({TenantStatus.UPDATE_FAILED}), "update"),
    ("suspend", "Suspend", "danger", STARTS_FROM["suspend"], "suspend"),
    ("resume", "Resume", "", STARTS_FROM["resume"], "suspend"),
)


class TenantOperationsAdmin:
    """Views, URLs and buttons of the operations; ``TenantAdmin`` provides the helpers declared here."""

    _single: Callable[..., HttpResponse]
    _action_target: Callable[..., Tenant]
    _back: Callable[..., HttpResponse]
    tenant_view_url: Callable[..., Any]
    admin_site: Any
    model: type[Tenant]
    message_user: Callable[..., None]

    def has_update_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_UPDATE)

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_SUSPEND)

    def operation_urls(self) -> list[Any]:
        return [
            self.tenant_view_url("update_plan", self.update_plan_view),
            self.tenant_view_url("retry_update", self.retry_update_view),
            self.tenant_view_url("roll_back_update", self.roll_back_update_view),
            self.tenant_view_url("suspend", self.suspend_view),
            self.tenant_view_url("resume", self.resume_view),
        ]

    def operation_buttons(self, request: HttpRequest, tenant: Tenant) -> list[tuple[str, str, str, str]]:
        """``(name, label, url, style)`` of the operations that fit the tenant's status and the user."""
        allowed = {"update": self.has_update_permission(request), "suspend": self.has_suspend_permission(request)}
        return [
            (name, label, reverse(f"admin:tenants_tenant_{name}", args=[tenant.pk]), style)
            for name, label, style, statuses, permission in _BUTTONS
            if tenant.status in statuses and allowed[permission]
        ]

    def update_plan_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST without ``plan``: the plan form; with ``plan`` (JSON): the update, or the form again with why not."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        tenant = self._action_target(request, object_id, self.has_update_permission(request))
        shown = tenant.pending_plan or tenant.plan
        if "plan" not in request.POST:
            return self._plan_form(request, tenant, text=json.dumps(redact(shown), indent=2))
        text = request.POST["plan"]
        plan, problem = _plan_parse(text)
        plan = _masked_kept(plan, shown)
        if problem:
            return self._plan_form(request, tenant, text=text, problem=problem)
        return self._single(request, object_id, True, lambda **kwargs: tenant_update(plan=plan, **kwargs))

    def retry_update_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._single(request, object_id, self.has_update_permission(request), tenant_update)

    def roll_back_update_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._single(request, object_id, self.has_update_permission(request), tenant_update_roll_back)

    def suspend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._single(request, object_id, self.has_suspend_permission(request), tenant_suspend)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._single(request, object_id, self.has_suspend_permission(request), tenant_resume)

    def _plan_form(self, request: HttpRequest, tenant: Tenant, *, text: str, problem: str = "") -> TemplateResponse:
        if problem:
            self.message_user(request, f"{tenant.key}: {problem}", messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Update {tenant.key}'s plan",
            "tenant": tenant,
            "plan_text": text,
            "form_action": reverse("admin:tenants_tenant_update_plan", args=[tenant.pk]),
            "cancel_url": reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        }
        return TemplateResponse(request, "admin/tenants/tenant/update_plan.html", context)


def _masked_kept(value: Any, shown: Any) -> Any:
    """``value`` with each masked entry replaced by what it masked in ``shown`` (the plan the form showed)."""
    if isinstance(value, dict) and isinstance(shown, dict):
        return {
            key: shown[key] if item == MASK and key in shown else _masked_kept(item, shown.get(key))
            for key, item in value.items()
        }
    return value


def _plan_parse(text: str) -> tuple[dict[str, Any], str]:
    """The plan the form carries, validated as the event's ``planConfig``; or why it is not one."""
    try:
        value = json.loads(text)
    except ValueError as error:
        return {}, f"The plan is not JSON: {error}."
    schema = PlanConfigSchema(data=value)
    if not schema.is_valid():
        fields = "; ".join(f"{field}: {' '.join(map(str, errors))}" for field, errors in schema.errors.items())
        return {}, f"The plan is invalid ({fields})."
    return dict(schema.validated_data), ""
