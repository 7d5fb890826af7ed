"""Admin for the tenant lifecycle: tenants (read-only, with POST-only staff actions), tiers (editable,
written through to DynamoDB), builds and the history timeline (read-only)."""

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from orchestrator.errors import ApplicationError
from orchestrator.redaction import redact
from tenants.models import Build, Tenant, TenantHistory, Tier, TierVariable
from tenants.services.deprovisioning import tenant_deprovision
from tenants.services.provisioning import tenant_retry_provisioning
from tenants.services.sync import tenant_resync


def _pretty(value: Any) -> str:
    return format_html(
        "<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(redact(value), indent=2, sort_keys=True)
    )


class ReadOnlyAdminMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class BuildInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Build
    extra = 0
    fields = ["purpose", "attempt", "builder_type", "project", "build_id", "status", "started_at", "ended_at"]
    readonly_fields = fields
    ordering = ["-started_at"]
    show_change_link = True


@admin.register(Tenant)
class TenantAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["key", "name", "id", "tier", "status", "version", "in_sync", "updated_at"]
    list_filter = ["status", "tier"]
    search_fields = ["id", "key", "name"]
    inlines = [BuildInline]
    actions = ["retry_provisioning", "deprovision", "resync"]
    fields = [
        "id",
        "key",
        "name",
        "tier",
        "status",
        "status_reason",
        "version",
        "synced_version",
        "provisioning_attempt",
        "deprovisioning_attempt",
        "last_event_at",
        "created_at",
        "updated_at",
        "document_pretty",
        "plan_pretty",
        "builder_config_pretty",
        "app_config_pretty",
    ]
    readonly_fields = fields

    @admin.display(boolean=True, description="DynamoDB in sync")
    def in_sync(self, tenant: Tenant) -> bool:
        return tenant.synced_version >= tenant.version

    @admin.display(description="tenant document")
    def document_pretty(self, tenant: Tenant) -> str:
        return _pretty(tenant.document)

    @admin.display(description="plan")
    def plan_pretty(self, tenant: Tenant) -> str:
        return _pretty(tenant.plan)

    @admin.display(description="builder config (secrets masked)")
    def builder_config_pretty(self, tenant: Tenant) -> str:
        return _pretty(tenant.builder_config)

    @admin.display(description="app config")
    def app_config_pretty(self, tenant: Tenant) -> str:
        return _pretty(tenant.app_config)

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perm("tenants.change_tenant")

    def _run(self, request: HttpRequest, queryset: QuerySet[Tenant], action: Any) -> None:
        for tenant in queryset:
            try:
                result = action(tenant=tenant, actor_user=request.user)
            except ApplicationError as error:
                self.message_user(request, f"{tenant.key}: {error.message}", messages.ERROR)
                continue
            message = result if isinstance(result, str) else result.message
            level = messages.SUCCESS if isinstance(result, str) or result.changed else messages.INFO
            self.message_user(request, message, level)

    @admin.action(description="Retry provisioning (new attempt, new build)", permissions=["operate"])
    def retry_provisioning(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._run(request, queryset, tenant_retry_provisioning)

    @admin.action(description="Deprovision (or retry a failed deprovisioning)", permissions=["operate"])
    def deprovision(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._run(request, queryset, tenant_deprovision)

    @admin.action(description="Write to DynamoDB again", permissions=["operate"])
    def resync(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._run(request, queryset, tenant_resync)


class TierVariableInline(admin.TabularInline):
    model = TierVariable
    extra = 1
    fields = ["name", "value", "type"]


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    """Saving writes through to DynamoDB (``tenants.receivers`` → ``tenants.services.sync``)."""

    list_display = ["name", "provision_project", "deprovision_project", "variable_count", "version", "in_sync"]
    search_fields = ["name", "provision_project", "deprovision_project"]
    inlines = [TierVariableInline]
    fields = ["name", "provision_project", "deprovision_project", "description", "version", "synced_version"]
    readonly_fields = ["version", "synced_version"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tier]:
        return super().get_queryset(request).prefetch_related("variables")

    @admin.display(description="variables")
    def variable_count(self, tier: Tier) -> int:
        return len(tier.variables.all())

    @admin.display(boolean=True, description="DynamoDB in sync")
    def in_sync(self, tier: Tier) -> bool:
        return tier.synced_version >= tier.version


@admin.register(Build)
class BuildAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "tenant",
        "purpose",
        "attempt",
        "builder_type",
        "project",
        "status",
        "awaiting_outcome_event",
        "started_at",
        "ended_at",
    ]
    list_filter = ["status", "purpose", "builder_type", "awaiting_outcome_event"]
    search_fields = ["tenant__id", "tenant__key", "build_id", "idempotency_token"]
    list_select_related = ["tenant"]
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
        "logs_url",
        "started_at",
        "ended_at",
        "last_polled_at",
        "claimed_at",
        "environment_pretty",
    ]
    readonly_fields = fields

    @admin.display(description="environment sent (secrets masked)")
    def environment_pretty(self, build: Build) -> str:
        return _pretty(build.environment)


@admin.register(TenantHistory)
class TenantHistoryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "tenant", "kind", "summary", "actor"]
    list_filter = ["kind", "at"]
    search_fields = ["tenant__id", "tenant__key", "summary"]
    list_select_related = ["tenant"]
    date_hierarchy = "at"
    fields = ["tenant", "at", "kind", "summary", "actor", "actor_user", "ref_type", "ref_id", "details_pretty"]
    readonly_fields = fields

    @admin.display(description="details")
    def details_pretty(self, entry: TenantHistory) -> str:
        return _pretty(entry.details)
