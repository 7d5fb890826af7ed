"""The tenant page of the staff portal: the tenants app's admin, plus what needs the other apps.

``TenantPageAdmin`` extends ``tenants.admin.TenantAdmin`` (and replaces its registration) with the tenant's
unified timeline (events, builds, callback deliveries) and the "Retry failed callbacks" action, which sends
the tenant's failed deliveries again through the webhooks app, exactly as the API's ``/retry/`` does.
"""

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import URLPattern, reverse

from orchestrator.staff import PERM_RETRY_DELIVERY
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
        return [self.tenant_view_url("retry_callbacks", self.retry_callbacks_view), *super().get_urls()]

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


admin.site.unregister(Tenant)
admin.site.register(Tenant, TenantPageAdmin)
