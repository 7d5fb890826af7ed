"""Admin for webhooks: endpoints (write-only secrets, rotation), deliveries (read-only, staff retry).

Actions are POST-only (Django admin actions are form posts), permission-checked and call the same
services as the API. Secrets are never rendered except once, right after they were created or rotated.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse

from orchestrator.admin_helpers import ServiceWritesAdmin, form_errors_add, pretty_json, secret_once_page
from orchestrator.errors import ApplicationError
from orchestrator.permissions import acting_user
from orchestrator.redaction import redact
from webhooks import circuit
from webhooks.delivery import request_headers_masked
from webhooks.models import (
    DeliveryAttempt,
    DeliveryStatus,
    Deployment,
    SigningScheme,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from webhooks.serializers import masked_headers
from webhooks.services.endpoints import (
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_update,
    endpoint_validate,
    endpoints_circuit_close,
    secret_validate,
)
from webhooks.services.retry import delivery_retry

if TYPE_CHECKING:  # django-stubs' name for what the admin's ``fields`` option accepts
    from django.contrib.admin.options import _FieldGroups

ENDPOINT_FIELDS = ("url", "description", "events", "signing_scheme", "custom_headers", "is_active")
ENDPOINT_STATE_FIELDS = (
    "secret_status",
    "circuit_status",
    "disabled_reason",
    "disabled_at",
    "created_at",
    "updated_at",
)
# Deliveries a staff retry can send again now (``delivery_retry`` explains a refusal for the others).
RETRYABLE_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.RETRYING, DeliveryStatus.CANCELLED)


def delivery_retry_reported(model_admin: admin.ModelAdmin, request: HttpRequest, delivery: WebhookDelivery) -> None:
    """Staff retry of one delivery (``delivery_retry``), its outcome shown as an admin message."""
    try:
        result = delivery_retry(delivery=delivery, actor_user=acting_user(request.user))
    except ApplicationError as error:
        model_admin.message_user(request, f"Delivery #{delivery.pk}: {error.message}", messages.WARNING)
        return
    level = messages.SUCCESS if result.queued else messages.INFO
    label = f"Delivery #{delivery.pk} ({delivery.get_step_display()})"
    model_admin.message_user(request, f"{label}: {result.message}.", level)


class MaskedHeadersField(forms.JSONField):
    """Custom headers as a JSON object whose values are shown masked (they are write-only); a value left
    masked keeps the stored one (``endpoint_update``)."""

    def prepare_value(self, value: Any) -> Any:
        return super().prepare_value(masked_headers(value) if isinstance(value, dict) else value)

    def to_python(self, value: Any) -> Any:
        try:
            headers = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("A JSON object of header names to string values.") from None
        return {} if headers is None else headers


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2048, assume_scheme="https")
    custom_headers = MaskedHeadersField(
        required=False,
        help_text='A JSON object, e.g. {"Authorization": "Bearer ..."}. Values are write-only: shown as '
        "********, and a value left as ******** keeps the stored one.",
    )
    events = forms.MultipleChoiceField(choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple)
    new_secret = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        label="New secret",
        help_text="Write-only. Leave empty to generate one on creation (or keep the current one). "
        "Setting it on an existing endpoint rotates the secret (the old one signs during the grace period).",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ENDPOINT_FIELDS

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean returns (typed optional: an override may return None)
        headers = cleaned.get("custom_headers")
        if headers is not None and not isinstance(headers, dict):
            self.add_error("custom_headers", "A JSON object of header names to string values.")
            return cleaned
        try:
            endpoint_validate(url=cleaned.get("url"), events=cleaned.get("events"), custom_headers=headers or {})
            scheme = cleaned.get("signing_scheme") or SigningScheme.STANDARD
            if cleaned.get("new_secret"):
                secret_validate(secret=cleaned["new_secret"], scheme=scheme)
            elif self.instance.pk and scheme != self.instance.signing_scheme:
                try:
                    secret_validate(secret=self.instance.secret.reveal(), scheme=scheme)
                except ApplicationError:
                    self.add_error("new_secret", "Set a new secret to switch the signing scheme.")
        except ApplicationError as error:
            form_errors_add(self, error)
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ServiceWritesAdmin):
    form = WebhookEndpointForm
    list_display = (
        "id",
        "url",
        "signing_scheme",
        "events_display",
        "is_active",
        "disabled_reason",
        "circuit_status",
        "secret_status",
    )
    list_filter = ("is_active", "signing_scheme")
    search_fields = ("url", "description")
    readonly_fields = (*ENDPOINT_STATE_FIELDS, "custom_headers_masked")
    actions = ["rotate_secrets", "close_circuits"]

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> "_FieldGroups":
        if obj is None:
            return [*ENDPOINT_FIELDS, "new_secret"]
        if not self.has_change_permission(request, obj):
            # Shown read-only: the model field would be rendered as stored (opened), so a masked copy instead.
            shown = ["custom_headers_masked" if name == "custom_headers" else name for name in ENDPOINT_FIELDS]
            return [*shown, *ENDPOINT_STATE_FIELDS]
        return [*ENDPOINT_FIELDS, "new_secret", *ENDPOINT_STATE_FIELDS]

    @admin.display(description="Custom headers")
    def custom_headers_masked(self, endpoint: WebhookEndpoint) -> str:
        return pretty_json(masked_headers(endpoint.custom_headers))

    @admin.display(description="Events")
    def events_display(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events or [])

    @admin.display(description="Secret")
    def secret_status(self, endpoint: WebhookEndpoint) -> str:
        if not endpoint.secret:
            return "not set"
        state = "set (write-only)"
        if endpoint.secret_rotated_at:
            state += f", rotated {endpoint.secret_rotated_at:%Y-%m-%d %H:%M}"
        if len(endpoint.signing_secrets()) > 1:
            state += f"; previous secret signs until {endpoint.previous_secret_expires_at:%Y-%m-%d %H:%M}"
        return state

    @admin.display(description="Circuit")
    def circuit_status(self, endpoint: WebhookEndpoint) -> str:
        state = circuit.circuit_state(endpoint)
        if state == "closed":
            failures = endpoint.consecutive_failures
            return f"closed ({failures} failure{'s' if failures != 1 else ''} in a row)" if failures else "closed"
        since = (
            f"{endpoint.consecutive_failures} failures in a row, open since {endpoint.circuit_opened_at:%Y-%m-%d %H:%M}"
        )
        if state == "open":
            return f"open until {endpoint.circuit_open_until:%H:%M:%S} ({since}); deliveries wait"
        return f"half-open ({since}): the next delivery is a probe"

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.Form, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in ENDPOINT_FIELDS}
        new_secret = form.cleaned_data.get("new_secret") or None
        if change:
            if new_secret:
                endpoint_rotate_secret(endpoint=obj, secret=new_secret, signing_scheme=data.pop("signing_scheme"))
                messages.success(request, "The secret was rotated; the previous one signs during the grace period.")
            endpoint_update(endpoint=obj, **data)
            return
        endpoint, secret = endpoint_create(**data, secret=new_secret)
        obj.pk = endpoint.pk
        obj.refresh_from_db()
        if new_secret is None:
            request._webhook_new_secrets = [{"endpoint": endpoint, "secret": secret}]  # type: ignore[attr-defined]

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        endpoint_delete(endpoint=obj)  # as the API does: what still waited to be sent to it is cancelled

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint_delete(endpoint=endpoint)

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue: str | None = None) -> Any:
        shown = getattr(request, "_webhook_new_secrets", None)
        if shown:
            return self._secrets_page(request, shown, title="Endpoint created: its signing secret")
        return super().response_add(request, obj, post_url_continue)

    def _secrets_page(self, request: HttpRequest, secrets: list[dict], *, title: str) -> HttpResponse:
        return secret_once_page(
            self,
            request,
            "admin/webhooks/webhookendpoint/secret_once.html",
            title=title,
            secrets=secrets,
            grace_hours=round(settings.WEBHOOK_SECRET_GRACE_SECONDS / 3600, 1),
        )

    @admin.action(description="Rotate the signing secret of selected endpoints", permissions=["change"])
    def rotate_secrets(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> HttpResponse | None:
        shown: list[dict[str, Any]] = [  # the page's context
            {"endpoint": endpoint, "secret": endpoint_rotate_secret(endpoint=endpoint)} for endpoint in queryset
        ]
        for item in shown:
            item["endpoint"].refresh_from_db()
        return self._secrets_page(request, shown, title="New signing secrets")

    @admin.action(description="Close the circuit: send what waits for selected endpoints now", permissions=["change"])
    def close_circuits(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        released = endpoints_circuit_close(endpoints=queryset)
        messages.success(request, f"Circuits closed; {released} waiting deliveries released.")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = (
        "number",
        "outcome",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_body",
        "retry_at",
        "headers_display",
    )
    readonly_fields = fields
    ordering = ("number",)

    @admin.display(description="Request headers")
    def headers_display(self, attempt: DeliveryAttempt) -> str:
        return pretty_json(request_headers_masked(attempt.request_headers))

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TenantFilter(admin.SimpleListFilter):
    title = "deployment"
    parameter_name = "deployment"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("chain", "Deployment chain steps"), ("other", "Status-change notifications")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "chain":
            return queryset.filter(deployment__isnull=False)
        if self.value() == "other":
            return queryset.filter(deployment__isnull=True)
        return queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "tenant",
        "step",
        "event_type",
        "url",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "step", "event_type", TenantFilter, "endpoint")
    search_fields = ("tenant__id", "tenant__key", "url", "message_id")
    list_select_related = ("tenant",)
    date_hierarchy = "created_at"
    inlines = [DeliveryAttemptInline]
    actions = ["retry_selected"]
    change_form_template = "admin/webhooks/webhookdelivery/change_form.html"
    fields = (
        "message_id",
        "tenant",
        "event",
        "deployment",
        "position",
        "step",
        "event_type",
        "endpoint",
        "url",
        "signing_scheme",
        "status",
        "status_reason",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "last_attempt_at",
        "created_at",
        "finished_at",
        "payload_display",
    )
    readonly_fields = fields

    @admin.display(description="Payload (secrets masked)")
    def payload_display(self, delivery: WebhookDelivery) -> str:
        return pretty_json(redact(delivery.payload))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webhooks.retry_webhookdelivery")

    # --- one delivery's page: a Retry button (POST, permission-checked), same service as the API

    def get_urls(self) -> list[URLPattern]:
        retry = path(
            "<path:object_id>/retry/",
            self.admin_site.admin_view(self.retry_view),
            name="webhooks_webhookdelivery_retry",
        )
        return [retry, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        delivery = WebhookDelivery.objects.filter(pk=object_id).only("status").first()
        retry_url = None
        if delivery is not None and delivery.status in RETRYABLE_STATUSES and self.has_retry_permission(request):
            retry_url = reverse("admin:webhooks_webhookdelivery_retry", args=[delivery.pk])
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "retry_url": retry_url})

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_retry_permission(request):
            raise PermissionDenied
        delivery = get_object_or_404(WebhookDelivery, pk=object_id)
        delivery_retry_reported(self, request, delivery)
        return HttpResponseRedirect(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))

    @admin.action(description="Retry selected deliveries", permissions=["retry"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        queued, unchanged, refused = 0, 0, []
        for delivery in queryset.order_by("position", "id"):
            try:
                result = delivery_retry(delivery=delivery, actor_user=acting_user(request.user))
            except ApplicationError as error:
                refused.append(f"#{delivery.pk}: {error.message}")
                continue
            if result.queued:
                queued += 1
            else:
                unchanged += 1
        if queued:
            self.message_user(request, f"{queued} delivery(ies) queued for another attempt.", messages.SUCCESS)
        if unchanged:
            self.message_user(request, f"{unchanged} delivery(ies) were already queued.", messages.INFO)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)


class DeploymentDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fk_name = "deployment"
    extra = 0
    can_delete = False
    fields = ("position", "step", "url", "status", "status_reason", "attempts", "last_status_code")
    readonly_fields = fields
    ordering = ("position", "id")
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    list_display = ("id", "tenant", "status", "status_reason", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("tenant__id", "tenant__key")
    fields = ("tenant", "event", "status", "status_reason", "build_succeeded", "created_at", "finished_at")
    readonly_fields = fields
    inlines = [DeploymentDeliveryInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
