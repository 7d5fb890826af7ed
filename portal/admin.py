"""The tenant page of the staff portal: the tenants app's admin, plus what needs the other apps.

``TenantPageAdmin`` extends ``tenants.admin.TenantAdmin`` (and replaces its registration) with the tenant's
unified timeline (events, builds, callback deliveries) and the "Retry failed callbacks" action, which sends
the tenant's failed deliveries again through the webhooks app, exactly as the API's ``/retry/`` does.
"""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from orchestrator.errors import ApplicationError
from orchestrator.permissions import acting_user
from orchestrator.staff import PERM_RETRY_DELIVERY
from portal.doctor.base import Fix
from portal.doctor.service import doctor_fix
from portal.timeline import tenant_timeline
from tenants.admin import PortalAction, TenantAdmin
from tenants.models import Tenant
from webhooks.admin import delivery_retry_reported
from webhooks.models import DeliveryStatus, WebhookDelivery


class TenantPageAdmin(TenantAdmin):
    change_form_template = "admin/tenants/tenant/change_form.html"

    def has_retry_callbacks_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_RETRY_DELIVERY)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("doctor/fix/", self.admin_site.admin_view(self.doctor_fix_view), name="tenants_tenant_doctor_fix"),
            self.tenant_view_url("retry_callbacks", self.retry_callbacks_view),
            *super().get_urls(),
        ]

    def available_actions(self, request: HttpRequest, tenant: Tenant) -> list[PortalAction]:
        actions = super().available_actions(request, tenant)
        if self.has_retry_callbacks_permission(request):
            failed = WebhookDelivery.objects.filter(tenant_id=tenant.pk, status=DeliveryStatus.FAILED).count()
            if failed:
                label = f"Retry failed callback{'s' if failed > 1 else ''} ({failed})"
                url = reverse("admin:tenants_tenant_retry_callbacks", args=[tenant.pk])
                actions.insert(0, PortalAction("retry_callbacks", label, url))
        return actions

    def can_act(self, request: HttpRequest) -> bool:
        return self.has_retry_callbacks_permission(request) or super().can_act(request)

    def page_context(self, request: HttpRequest, tenant: Tenant) -> dict[str, Any]:
        return {**super().page_context(request, tenant), "timeline": tenant_timeline(tenant_id=tenant.pk)}

    def retry_callbacks_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Send the tenant's failed deliveries again (``delivery_retry``, as the API's ``/retry/``)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        tenant = self._action_target(request, object_id, self.has_retry_callbacks_permission(request))
        failed = WebhookDelivery.objects.filter(tenant_id=tenant.pk, status=DeliveryStatus.FAILED)
        deliveries = list(failed.order_by("deployment_id", "position", "id"))
        if not deliveries:
            self.message_user(request, f"{tenant.key}: no failed callbacks to retry.", messages.INFO)
        for delivery in deliveries:
            delivery_retry_reported(self, request, delivery)
        return self._back(tenant)

    def doctor_fix_view(self, request: HttpRequest) -> HttpResponse:
        """A "Needs attention" button on the dashboard: one fix of a finding (``doctor_fix``, as the API's
        ``/api/doctor/fixes/``), with that fix's permission; back to the dashboard with what it did."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        fix = Fix(action=request.POST.get("action", ""), target=request.POST.get("target", ""))
        try:
            result = doctor_fix(fix=fix, user=acting_user(request.user))
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, result.message, messages.SUCCESS if result.changed else messages.INFO)
        return HttpResponseRedirect(reverse("admin:index"))


admin.site.unregister(Tenant)
admin.site.register(Tenant, TenantPageAdmin)
