"""Admin for the tenant lifecycle: tenants (read-only, POST-only staff actions), tiers (changed by
superusers, written through to DynamoDB), builds and the history (read-only). The tenant page's timeline and
the actions that need other apps (retry failed callbacks) are added by ``portal.admin``.

Staff actions call the same services as the API, check the same permissions (``orchestrator.staff``),
are idempotent ("already provisioning" is a message) and are recorded in the tenant's history with the
staff user by those services.
"""

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import construct_change_message
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.forms.formsets import BaseFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from orchestrator.admin_helpers import (
    ReadOnlyAdminMixin,
    ServiceWritesAdmin,
    badge_html,
    field_names,
    fieldset_fields,
    pretty_json,
)
from orchestrator.errors import ApplicationError
from orchestrator.permissions import acting_user
from orchestrator.redaction import MASK
from orchestrator.staff import PERM_DEPROVISION, PERM_RESYNC, PERM_RETRY_PROVISIONING
from tenants.admin_operations import TenantOperationsAdmin
from tenants.admin_pipelines import PipelineStepInline, pipelines_save
from tenants.forms import TIER_FIELDS, TierForm, TierVariableFormSet
from tenants.models import FAILED_TENANT_STATUSES, Build, Tenant, TenantHistory, TenantStatus, Tier, TierVariable
from tenants.selectors import tenant_search
from tenants.services.deprovisioning import DEPROVISIONABLE, tenant_deprovision
from tenants.services.environment import is_plaintext_secret
from tenants.services.offboarding import tenant_export
from tenants.services.provisioning import PROVISIONABLE, tenant_retry_provisioning
from tenants.services.sync import tenant_resync
from tenants.services.tiers import tier_create, tier_delete, tier_update

if TYPE_CHECKING:  # django-stubs' names for what admin options accept
    from django.contrib.admin.options import _FieldGroups, _FieldsetSpec

# --- A changelist that stays fast on big tables ------------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Counts exactly while that is cheap; on PostgreSQL, a big unfiltered table is counted from the
    planner's statistics (``pg_class.reltuples``) and a filtered one from ``EXPLAIN``'s row estimate once a
    quick exact count runs out of time. Either way one query, whatever the table size."""

    EXACT_BELOW = 10_000
    COUNT_TIMEOUT_MS = 200

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connection.vendor != "postgresql" or not isinstance(queryset, QuerySet):
            return super().count
        if not queryset.query.where:
            estimate = self._reltuples(queryset.model._meta.db_table)
            if estimate >= self.EXACT_BELOW:
                return estimate
            return super().count
        try:
            # A savepoint rolled back afterwards: SET LOCAL ends with it, even inside a longer transaction.
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL statement_timeout = %s", [int(self.COUNT_TIMEOUT_MS)])
                count = queryset.count()
                transaction.set_rollback(True)
            return count
        except DatabaseError:  # statement timeout: fall back to the planner's estimate
            return self._explain_rows(queryset)

    @staticmethod
    def _reltuples(table: str) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
            row = cursor.fetchone()
        return max(int(row[0]), 0) if row and row[0] is not None else 0

    @staticmethod
    def _explain_rows(queryset: QuerySet) -> int:
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        return int(plan[0]["Plan"]["Plan Rows"])


class TierFilter(admin.SimpleListFilter):
    """Tier names from the tier mapping (a small table), not ``SELECT DISTINCT`` over every tenant."""

    title = "tier"
    parameter_name = "tier"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(name, name) for name in Tier.objects.order_by("name").values_list("name", flat=True)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(tier=self.value()) if self.value() else queryset


# --- Tenants -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalAction:
    name: str
    label: str
    url: str
    style: str = ""


TENANT_FIELDSETS: "_FieldsetSpec" = [
    (
        "Tenant",
        {
            "fields": [
                "id",
                "key",
                "name",
                "contact",
                "status_badge",
                "status_reason",
                "tier",
                "last_event_at",
                "created_at",
                "updated_at",
            ]
        },
    ),
    (
        "Plan",
        {"fields": ["plan_pretty", "pending_tier", "pending_plan_pretty", "previous_tier", "previous_plan_pretty"]},
    ),
    (
        "Lifecycle and DynamoDB mirror",
        {
            "classes": ["collapse"],
            "fields": [
                "provisioning_attempt",
                "deprovisioning_attempt",
                "operation_attempt",
                "version",
                "synced_version",
            ],
        },
    ),
    (
        "Documents (secrets masked)",
        {"classes": ["collapse"], "fields": ["document_pretty", "builder_config_pretty", "app_config_pretty"]},
    ),
]


@admin.register(Tenant)
class TenantAdmin(TenantOperationsAdmin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "name", "status_badge", "tier", "plan_name", "last_event_at", "created_at", "updated_at"]
    list_display_links = ["key", "name"]
    list_filter = ["status", TierFilter]
    search_fields = ["id", "key", "name"]
    search_help_text = "Tenant id, key or name (contains), or a contact's email."
    list_select_related = False  # no foreign keys: one query per page
    list_per_page = 50
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-created_at"]
    actions = ["retry_provisioning", "deprovision", "resync", "export_record"]
    fieldsets = TENANT_FIELDSETS
    readonly_fields = fieldset_fields(TENANT_FIELDSETS)

    # --- columns and fields

    @admin.display(description="status", ordering="status")
    def status_badge(self, tenant: Tenant) -> str:
        return badge_html(tenant.status, tenant.get_status_display())

    @admin.display(description="plan")
    def plan_name(self, tenant: Tenant) -> str:
        plan = tenant.plan if isinstance(tenant.plan, dict) else {}
        return str(plan.get("name") or plan.get("id") or "—")

    @admin.display(description="primary contact")
    def contact(self, tenant: Tenant) -> str:
        contact = tenant.primary_contact
        name = " ".join(str(contact.get(key, "")) for key in ("firstName", "lastName")).strip()
        return f"{name} <{contact.get('email', '')}>".strip() if contact else "—"

    @admin.display(description="plan")
    def plan_pretty(self, tenant: Tenant) -> str:
        return pretty_json(tenant.plan)

    @admin.display(description="pending plan (an update's, current once it succeeds)")
    def pending_plan_pretty(self, tenant: Tenant) -> str:
        return pretty_json(tenant.pending_plan) if tenant.pending_plan else "—"

    @admin.display(description="previous plan (replaced by the last update)")
    def previous_plan_pretty(self, tenant: Tenant) -> str:
        return pretty_json(tenant.previous_plan) if tenant.previous_plan else "—"

    @admin.display(description="tenant document")
    def document_pretty(self, tenant: Tenant) -> str:
        return pretty_json(tenant.document)

    @admin.display(description="builder config")
    def builder_config_pretty(self, tenant: Tenant) -> str:
        return pretty_json(tenant.builder_config)

    @admin.display(description="app config")
    def app_config_pretty(self, tenant: Tenant) -> str:
        return pretty_json(tenant.app_config)

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        return tenant_search(queryset, search_term), False

    # --- permissions

    def has_retry_provisioning_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_RETRY_PROVISIONING)

    def has_deprovision_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_DEPROVISION)

    def has_resync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_RESYNC)

    # --- the tenant page (``portal.admin`` adds the timeline and the actions of other apps)

    def tenant_view_url(self, name: str, view: Callable) -> URLPattern:
        """``<tenant>/<name>/``, named ``admin:tenants_tenant_<name>``: a POST-only action on one tenant."""
        return path(
            f"<path:object_id>/{name.replace('_', '-')}/",
            self.admin_site.admin_view(view),
            name=f"tenants_tenant_{name}",
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            self.tenant_view_url("retry_provisioning", self.retry_provisioning_view),
            self.tenant_view_url("deprovision", self.deprovision_view),
            self.tenant_view_url("resync", self.resync_view),
            *self.operation_urls(),
            *super().get_urls(),
        ]

    def available_actions(self, request: HttpRequest, tenant: Tenant) -> list[PortalAction]:
        """The buttons that fit the tenant's status and the user's permissions."""

        def url(name: str) -> str:
            return reverse(f"admin:tenants_tenant_{name}", args=[tenant.pk])

        actions = []
        if tenant.status in PROVISIONABLE and self.has_retry_provisioning_permission(request):
            actions.append(PortalAction("retry_provisioning", "Retry provisioning", url("retry_provisioning")))
        if tenant.status in DEPROVISIONABLE and self.has_deprovision_permission(request):
            label = "Retry deprovisioning" if tenant.status == TenantStatus.DEPROVISION_FAILED else "Deprovision…"
            actions.append(PortalAction("deprovision", label, url("deprovision"), "danger"))
        actions.extend(PortalAction(*button) for button in self.operation_buttons(request, tenant))
        if self.has_resync_permission(request):
            actions.append(PortalAction("resync", "Resync to DynamoDB", url("resync"), "secondary"))
        return actions

    def can_act(self, request: HttpRequest) -> bool:
        return any(
            check(request)
            for check in (
                self.has_retry_provisioning_permission,
                self.has_deprovision_permission,
                self.has_resync_permission,
                self.has_update_permission,
                self.has_suspend_permission,
            )
        )

    def page_context(self, request: HttpRequest, tenant: Tenant) -> dict[str, Any]:
        """What the tenant page shows around the form (the template's ``portal``): facts and buttons."""
        plan = tenant.plan if isinstance(tenant.plan, dict) else {}
        return {
            "actions": self.available_actions(request, tenant),
            "can_act": self.can_act(request),
            "plan_name": plan.get("name") or plan.get("id") or "",
            "contact_email": tenant.primary_contact.get("email", ""),
            "in_sync": tenant.synced_version >= tenant.version,
            "failed": tenant.status in FAILED_TENANT_STATUSES,
        }

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        tenant = Tenant.objects.filter(pk=object_id).first()
        portal = None
        if tenant is not None and self.has_view_permission(request, tenant):
            portal = self.page_context(request, tenant)
        extra_context = {**(extra_context or {}), "portal": portal}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- POST-only action views (one tenant)

    def _action_target(self, request: HttpRequest, object_id: str, allowed: bool) -> Tenant:
        tenant = get_object_or_404(Tenant, pk=object_id)
        if not allowed:
            raise PermissionDenied
        return tenant

    def _back(self, tenant: Tenant) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:tenants_tenant_change", args=[tenant.pk]))

    def _report(self, request: HttpRequest, result: Any) -> None:
        if isinstance(result, str):
            self.message_user(request, result, messages.SUCCESS)
        else:
            self.message_user(request, result.message, messages.SUCCESS if result.changed else messages.INFO)

    def _single(self, request: HttpRequest, object_id: str, allowed: bool, service: Callable) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        tenant = self._action_target(request, object_id, allowed)
        try:
            self._report(request, service(tenant=tenant, actor_user=acting_user(request.user)))
        except ApplicationError as error:
            self.message_user(request, f"{tenant.key}: {error.message}", messages.ERROR)
        return self._back(tenant)

    def retry_provisioning_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        allowed = self.has_retry_provisioning_permission(request)
        return self._single(request, object_id, allowed, tenant_retry_provisioning)

    def resync_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._single(request, object_id, self.has_resync_permission(request), tenant_resync)

    def deprovision_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST without ``confirm`` shows the confirmation page; POST with ``confirm=yes`` deprovisions."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        tenant = self._action_target(request, object_id, self.has_deprovision_permission(request))
        if request.POST.get("confirm") != "yes":
            return self._confirmation(
                request,
                [tenant],
                form_action=reverse("admin:tenants_tenant_deprovision", args=[tenant.pk]),
                hidden_fields=[],
                cancel_url=reverse("admin:tenants_tenant_change", args=[tenant.pk]),
            )
        return self._single(request, object_id, True, tenant_deprovision)

    def _confirmation(
        self,
        request: HttpRequest,
        tenants: list[Tenant],
        *,
        form_action: str,
        hidden_fields: list[tuple[str, str]],
        cancel_url: str,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Deprovision tenants?" if len(tenants) > 1 else f"Deprovision {tenants[0].key}?",
            "tenants": tenants,
            "form_action": form_action,
            "hidden_fields": hidden_fields,
            "cancel_url": cancel_url,
        }
        return TemplateResponse(request, "admin/tenants/tenant/deprovision_confirmation.html", context)

    # --- bulk actions on the changelist (same services, same permissions)

    def _run(self, request: HttpRequest, tenants: Iterable[Tenant], action: Callable) -> None:
        for tenant in tenants:
            try:
                result = action(tenant=tenant, actor_user=acting_user(request.user))
            except ApplicationError as error:
                self.message_user(request, f"{tenant.key}: {error.message}", messages.ERROR)
                continue
            self._report(request, result)

    @admin.action(description="Retry provisioning (new attempt, new build)", permissions=["retry_provisioning"])
    def retry_provisioning(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._run(request, queryset, tenant_retry_provisioning)

    @admin.action(description="Deprovision (or retry a failed deprovisioning)…", permissions=["deprovision"])
    def deprovision(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> HttpResponse | None:
        tenants = list(queryset)
        # Ask first when something would really be deprovisioned; refusals need no confirmation.
        if request.POST.get("confirm") != "yes" and any(t.status in DEPROVISIONABLE for t in tenants):
            hidden = [("action", "deprovision")] + [(ACTION_CHECKBOX_NAME, t.pk) for t in tenants]
            return self._confirmation(
                request,
                tenants,
                form_action=reverse("admin:tenants_tenant_changelist"),
                hidden_fields=hidden,
                cancel_url=reverse("admin:tenants_tenant_changelist"),
            )
        self._run(request, tenants, tenant_deprovision)
        return None

    @admin.action(description="Resync to DynamoDB", permissions=["resync"])
    def resync(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._run(request, queryset, tenant_resync)

    @admin.action(description="Export full record (JSON Lines, secrets masked)", permissions=["deprovision"])
    def export_record(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> HttpResponse:
        """A download of the selected tenants' records, one after the other (each starts with its header).
        Offboarding goes with deprovisioning: the same staff may do both (read-only staff have no bulk action)."""
        tenants = list(queryset.order_by("pk"))
        name = f"tenant-{tenants[0].key}.jsonl" if len(tenants) == 1 else f"tenants-{len(tenants)}.jsonl"
        response = HttpResponse(content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        for tenant in tenants:
            tenant_export(tenant=tenant, stream=response, actor_user=acting_user(request.user), via="admin")
        return response


# --- Tiers -------------------------------------------------------------------------------------------


class TierVariableForm(forms.ModelForm):
    """A plain-text secret's value is shown masked and is write-only: left as ``********``, it is kept."""

    class Meta:
        model = TierVariable
        fields = ["name", "value", "type"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        variable = self.instance
        if variable.pk and is_plaintext_secret(name=variable.name, value=variable.value, type=variable.type):
            self.initial["value"] = MASK

    def clean_value(self) -> str:
        value = self.cleaned_data["value"]
        return self.instance.value if value == MASK and self.instance.pk else value


class TierVariableInline(admin.TabularInline):
    model = TierVariable
    form = TierVariableForm
    formset = TierVariableFormSet
    extra = 1
    fields = ["name", "value", "type"]
    readonly_fields = ["value_masked"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> "_FieldGroups":
        if not self.has_change_permission(request, obj):  # shown read-only: the masked copy, not the field
            return ["name", "value_masked", "type"]
        return super().get_fields(request, obj)  # ``fields``

    @admin.display(description="value")
    def value_masked(self, variable: TierVariable) -> str:
        secret = is_plaintext_secret(name=variable.name, value=variable.value, type=variable.type)
        return MASK if secret else variable.value

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


@admin.register(Tier)
class TierAdmin(ServiceWritesAdmin):
    """Superusers change the tier mapping through the tier services, as the API does (renaming and deleting
    a tier in use are refused); saving writes through to DynamoDB. Other staff with the view permission see
    it read-only."""

    form = TierForm
    list_display = [
        "name",
        "provision_project",
        "deprovision_project",
        "builders",
        "variable_count",
        "version",
        "in_sync",
    ]
    search_fields = ["name", "provision_project", "deprovision_project"]
    inlines = [TierVariableInline, PipelineStepInline]
    fields = [*TIER_FIELDS, "version", "synced_version"]
    readonly_fields = ["version", "synced_version"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tier]:
        return super().get_queryset(request).prefetch_related("variables")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    @admin.display(description="builders")
    def builders(self, tier: Tier) -> str:
        return ", ".join(tier.allowed_builders or [])

    @admin.display(description="variables")
    def variable_count(self, tier: Tier) -> int:
        return len(tier.variables.all())

    @admin.display(boolean=True, description="DynamoDB in sync")
    def in_sync(self, tier: Tier) -> bool:
        return tier.synced_version >= tier.version

    # --- writes: the tier and its variables in one service call (save_related, once the inlines are valid)

    def save_model(self, request: HttpRequest, obj: Tier, form: forms.ModelForm, change: bool) -> None:
        """Nothing here: ``save_related`` writes the tier with its variables."""

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: list, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in TIER_FIELDS}
        variables = tier_variable_rows(formsets)
        if change:
            tier = tier_update(tier=form.instance, **fields, variables=variables)
        else:
            tier = tier_create(**fields, variables=variables)
        pipelines_save(tier=tier, formsets=formsets)
        form.instance.pk = tier.pk
        form.instance.refresh_from_db()

    def construct_change_message(
        self, request: HttpRequest, form: forms.Form, formsets: Iterable[BaseFormSet], add: bool = False
    ) -> list[dict[str, dict[str, list[str]]]]:
        # The formsets saved nothing (the service did): name the variables as one changed field.
        message = construct_change_message(form, [], add)
        if not add and any(formset.has_changed() for formset in formsets):
            message.append({"changed": {"fields": ["variables"]}})
        return message

    def delete_model(self, request: HttpRequest, obj: Tier) -> None:
        tier_delete(tier=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Tier]) -> None:
        for tier in queryset:
            tier_delete(tier=tier)


def tier_variable_rows(formsets: list) -> list[dict[str, Any]] | None:
    """The variables the inline lists once saved (deleted rows left out), or None when it was not touched."""
    rows = None
    for formset in formsets:
        if formset.model is TierVariable and formset.has_changed():
            rows = [
                form.cleaned_data for form in formset.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")
            ]
    return rows


# --- Builds and history (read-only) --------------------------------------------------------------------


@admin.register(Build)
class BuildAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "__str__",
        "tenant_link",
        "purpose",
        "attempt",
        "project",
        "status_badge",
        "logs",
        "awaiting_outcome_event",
        "started_at",
        "ended_at",
    ]
    list_filter = ["status", "purpose", "builder_type", "awaiting_outcome_event"]
    search_fields = ["tenant__id", "tenant__key", "build_id", "idempotency_token"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = [
        "tenant",
        "event",
        "purpose",
        "attempt",
        "builder_type",
        "project",
        "idempotency_token",
        "build_id",
        "arn",
        "status",
        "status_reason",
        "awaiting_outcome_event",
        "logs",
        "started_at",
        "ended_at",
        "last_polled_at",
        "claimed_at",
        "runs",
        "lease_owner",
        "lease_expires_at",
        "outcome_pretty",
        "outcome_posted_at",
        "outcome_next_post_at",
        "outcome_post_attempts",
        "outcome_post_error",
        "environment_pretty",
    ]
    readonly_fields = field_names(fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Build]:
        # The tenant's key only (not its documents) for the list.
        return (
            super()
            .get_queryset(request)
            .select_related("tenant")
            .defer(
                "environment",
                "outcome",
                "tenant__document",
                "tenant__plan",
                "tenant__builder_config",
                "tenant__app_config",
            )
        )

    @admin.display(description="tenant", ordering="tenant__key")
    def tenant_link(self, build: Build) -> str:
        url = reverse("admin:tenants_tenant_change", args=[build.tenant_id])
        return format_html('<a href="{}">{}</a>', url, build.tenant.key)

    @admin.display(description="status", ordering="status")
    def status_badge(self, build: Build) -> str:
        return badge_html(build.status, build.get_status_display())

    @admin.display(description="logs")
    def logs(self, build: Build) -> str:
        if not build.logs_link:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">logs ↗</a>', build.logs_link)

    @admin.display(description="environment sent (secrets masked)")
    def environment_pretty(self, build: Build) -> str:
        return pretty_json(build.environment)

    @admin.display(description="LOCAL outcome event (secrets masked)")
    def outcome_pretty(self, build: Build) -> str:
        return pretty_json(build.outcome) if build.outcome is not None else "—"


@admin.register(TenantHistory)
class TenantHistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "tenant", "kind", "summary", "actor"]
    list_filter = ["kind", "at"]
    search_fields = ["tenant__id", "tenant__key", "summary"]
    list_select_related = ["tenant"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    date_hierarchy = "at"
    fields = ["tenant", "at", "kind", "summary", "actor", "actor_user", "ref_type", "ref_id", "details_pretty"]
    readonly_fields = field_names(fields)

    @admin.display(description="details")
    def details_pretty(self, entry: TenantHistory) -> str:
        return pretty_json(entry.details)
