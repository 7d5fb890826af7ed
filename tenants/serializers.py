"""Input and output serializers of the tenants API (edges only: no rules here).

Output never carries a secret: the tenant document, plan, builder and app configs are redacted (also
inside strings that hold JSON), build environments are stored masked, and plaintext tier variables with
secret-like names are masked (``********`` sent back in an update means "keep the current value").
"""

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from events.catalogue import PlanConfigSchema
from orchestrator.redaction import MASK, redact
from tenants.models import (
    Build,
    BuilderType,
    BuildPurpose,
    BuildStatus,
    Tenant,
    TenantStatus,
    Tier,
    TierVariable,
    VariableType,
)
from tenants.services.environment import is_plaintext_secret

# --- Tenants ----------------------------------------------------------------------------------------


class TenantFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=TenantStatus.choices, required=False, help_text="Exact status.")
    tier = serializers.CharField(required=False, max_length=128, help_text="Exact tier name.")
    search = serializers.CharField(
        required=False,
        max_length=255,
        help_text="Matches the tenant id, key or name (contains, any case), or a contact's email.",
    )


class TenantSerializer(serializers.ModelSerializer):
    plan_name = serializers.SerializerMethodField(help_text="The plan's name (or id).")
    contact_email = serializers.SerializerMethodField(help_text="The primary contact's email.")
    in_sync = serializers.SerializerMethodField(help_text="DynamoDB holds the current version.")

    class Meta:
        model = Tenant
        fields = [
            "id",
            "key",
            "name",
            "tier",
            "plan_name",
            "status",
            "status_reason",
            "contact_email",
            "version",
            "synced_version",
            "in_sync",
            "provisioning_attempt",
            "deprovisioning_attempt",
            "operation_attempt",
            "pending_tier",
            "last_event_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_plan_name(self, tenant: Tenant) -> str:
        plan = tenant.plan if isinstance(tenant.plan, dict) else {}
        return str(plan.get("name") or plan.get("id") or "")

    def get_contact_email(self, tenant: Tenant) -> str:
        return str(tenant.primary_contact.get("email") or "")

    def get_in_sync(self, tenant: Tenant) -> bool:
        return tenant.synced_version >= tenant.version


class TenantDetailSerializer(TenantSerializer):
    document = serializers.SerializerMethodField(help_text="The tenant document, secrets masked.")
    plan = serializers.SerializerMethodField(help_text="The plan config, secrets masked.")
    builder_config = serializers.SerializerMethodField(help_text="Builder type and config, secrets masked.")
    app_config = serializers.SerializerMethodField(help_text="The app config, secrets masked.")
    pending_plan = serializers.SerializerMethodField(
        help_text="An update's plan while it runs or after it failed (current once it succeeds), secrets masked."
    )
    previous_plan = serializers.SerializerMethodField(help_text="The plan the last update replaced, secrets masked.")

    class Meta(TenantSerializer.Meta):
        fields = [
            *TenantSerializer.Meta.fields,
            "document",
            "plan",
            "builder_config",
            "app_config",
            "pending_plan",
            "previous_plan",
            "previous_tier",
        ]
        read_only_fields = fields

    def get_document(self, tenant: Tenant) -> dict[str, Any]:
        return redact(tenant.document)

    def get_plan(self, tenant: Tenant) -> dict[str, Any]:
        return redact(tenant.plan)

    def get_builder_config(self, tenant: Tenant) -> dict[str, Any]:
        return redact(tenant.builder_config)

    def get_app_config(self, tenant: Tenant) -> dict[str, Any]:
        return redact(tenant.app_config)

    def get_pending_plan(self, tenant: Tenant) -> dict[str, Any]:
        return redact(tenant.pending_plan)

    def get_previous_plan(self, tenant: Tenant) -> dict[str, Any]:
        return redact(tenant.previous_plan)


class TenantUpdateInputSerializer(serializers.Serializer):
    """A staff update: the new plan as the control plane's ``TENANT_UPDATE`` carries it."""

    planConfig = PlanConfigSchema(
        required=False,
        source="plan",
        help_text="The new plan (its tier may be another). Left out: retry a failed update with its pending plan.",
    )


class TenantActionResultSerializer(serializers.Serializer):
    tenant = serializers.CharField(help_text="The tenant id.")
    status = serializers.ChoiceField(choices=TenantStatus.choices, help_text="The tenant's status now.")
    changed = serializers.BooleanField(help_text='False when nothing had to be done ("already provisioning").')
    message = serializers.CharField()
    build = serializers.CharField(allow_null=True, help_text="The build started, if any.")


# --- Tiers ------------------------------------------------------------------------------------------


class TierVariableSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    value = serializers.CharField(
        allow_blank=True,
        help_text="Plain text, or the SSM parameter name / Secrets Manager secret id. Plain-text values with "
        "secret-like names are masked in answers; sending the mask back keeps the stored value.",
    )
    type = serializers.ChoiceField(choices=VariableType.choices, default=VariableType.PLAINTEXT)

    def validate_name(self, name: str) -> str:
        for validator in TierVariable._meta.get_field("name").validators:
            try:
                validator(name)
            except DjangoValidationError as error:
                raise serializers.ValidationError(error.messages) from None
        return name

    def to_representation(self, variable: Any) -> dict[str, Any]:
        data = super().to_representation(variable)
        if is_plaintext_secret(name=data["name"], value=data["value"], type=data["type"]):
            data["value"] = MASK
        return data


class TierSerializer(serializers.ModelSerializer):
    allowed_builders = serializers.ListField(
        child=serializers.ChoiceField(choices=BuilderType.choices),
        read_only=True,
        help_text="Builders an event may choose for this tier (builderConfig.type).",
    )
    variables = TierVariableSerializer(many=True, read_only=True)
    in_sync = serializers.SerializerMethodField(help_text="DynamoDB holds the current version.")

    class Meta:
        model = Tier
        fields = [
            "id",
            "name",
            "provision_project",
            "deprovision_project",
            "update_project",
            "suspend_project",
            "resume_project",
            "allowed_builders",
            "description",
            "variables",
            "version",
            "synced_version",
            "in_sync",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_in_sync(self, tier: Tier) -> bool:
        return tier.synced_version >= tier.version


class TierInputSerializer(serializers.Serializer):
    """Create (POST) or replace (PUT) a tier; PATCH sends only what changes."""

    name = serializers.RegexField(
        r"^[A-Za-z0-9_.:-]+$", max_length=128, help_text="Letters, digits, _ . : - (the DynamoDB key)."
    )
    provision_project = serializers.CharField(max_length=255)
    deprovision_project = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    update_project = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        help_text="Runs when a tenant's plan changes to this tier (or within it); none: updates succeed at once. "
        "Left out: kept.",
    )
    suspend_project = serializers.CharField(
        max_length=255, required=False, allow_blank=True, help_text="Left out: kept."
    )
    resume_project = serializers.CharField(
        max_length=255, required=False, allow_blank=True, help_text="Left out: kept."
    )
    allowed_builders = serializers.ListField(
        child=serializers.ChoiceField(choices=BuilderType.choices),
        required=False,
        allow_empty=False,
        help_text="Builders an event may choose for this tier (builderConfig.type); when sent, replaces the "
        "current list (a new tier: CODE_BUILD only). LOCAL needs its projects in LOCAL_BUILD_COMMANDS.",
    )
    description = serializers.CharField(required=False, allow_blank=True, default="")
    variables = TierVariableSerializer(
        many=True,
        required=False,
        help_text="The tier's variables; when sent, the list replaces the current one.",
    )

    def validate_variables(self, variables: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = [variable["name"] for variable in variables]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise serializers.ValidationError(f"Duplicate variable names: {', '.join(duplicates)}.")
        return variables


# --- Builds -----------------------------------------------------------------------------------------


class BuildFilterSerializer(serializers.Serializer):
    tenant = serializers.CharField(required=False, max_length=64, help_text="Tenant id.")
    status = serializers.ChoiceField(choices=BuildStatus.choices, required=False)
    purpose = serializers.ChoiceField(choices=BuildPurpose.choices, required=False)


class BuildSerializer(serializers.ModelSerializer):
    tenant_key = serializers.CharField(read_only=True)

    class Meta:
        model = Build
        fields = [
            "id",
            "tenant",
            "tenant_key",
            "purpose",
            "attempt",
            "builder_type",
            "project",
            "build_id",
            "arn",
            "status",
            "status_reason",
            "logs_url",
            "awaiting_outcome_event",
            "started_at",
            "ended_at",
        ]
        read_only_fields = fields


class BuildDetailSerializer(BuildSerializer):
    environment = serializers.SerializerMethodField(help_text="Variables sent, secrets masked.")

    class Meta(BuildSerializer.Meta):
        fields = [*BuildSerializer.Meta.fields, "environment"]
        read_only_fields = fields

    def get_environment(self, build: Build) -> list[dict[str, str]]:
        return redact(build.environment)  # stored masked; rows from before JSON strings were masked too
