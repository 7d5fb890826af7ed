"""The catalogue: every detail-type the orchestrator understands and the schema of its ``detail``.

Shapes follow the senders the original service served (the SaaS control plane's tenant-management
service and the CodeBuild post-build step). Unknown fields are kept (``AllowExtraFields``); only what a
handler relies on is required. Handlers are registered against these types in each app's
``event_handlers`` module.
"""

import json
from typing import Any

from rest_framework import serializers


class DetailType:
    TENANT_PROVISIONING = "TENANT_PROVISIONING"
    TENANT_DEPROVISIONING = "TENANT_DEPROVISIONING"
    TENANT_PROVISIONING_SUCCESS = "TENANT_PROVISIONING_SUCCESS"
    TENANT_PROVISIONING_FAILURE = "TENANT_PROVISIONING_FAILURE"
    TENANT_DEPLOYMENT = "TENANT_DEPLOYMENT"
    TENANT_DEPLOYMENT_SUCCESS = "TENANT_DEPLOYMENT_SUCCESS"
    TENANT_DEPLOYMENT_FAILURE = "TENANT_DEPLOYMENT_FAILURE"
    CODEBUILD_BUILD_STATE_CHANGE = "CodeBuild Build State Change"

    ALL = (
        TENANT_PROVISIONING,
        TENANT_DEPROVISIONING,
        TENANT_PROVISIONING_SUCCESS,
        TENANT_PROVISIONING_FAILURE,
        TENANT_DEPLOYMENT,
        TENANT_DEPLOYMENT_SUCCESS,
        TENANT_DEPLOYMENT_FAILURE,
        CODEBUILD_BUILD_STATE_CHANGE,
    )


class AllowExtraFields(serializers.Serializer):
    """Validates declared fields and keeps undeclared ones untouched in ``validated_data``."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        validated = super().to_internal_value(data)
        if isinstance(data, dict):
            for key, value in data.items():
                validated.setdefault(key, value)
        return validated


class ContactSchema(AllowExtraFields):
    email = serializers.EmailField(required=False, allow_blank=True)
    firstName = serializers.CharField(required=False, allow_blank=True)
    lastName = serializers.CharField(required=False, allow_blank=True)
    isPrimary = serializers.BooleanField(required=False)


class TenantSchema(AllowExtraFields):
    id = serializers.CharField(max_length=64)
    key = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$", max_length=63)
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    contacts = ContactSchema(many=True, required=False)


class FeatureSchema(AllowExtraFields):
    key = serializers.CharField()
    value = serializers.JSONField(required=False, allow_null=True)
    defaultValue = serializers.JSONField(required=False, allow_null=True)


class PlanConfigSchema(AllowExtraFields):
    id = serializers.CharField(required=False, allow_blank=True)
    name = serializers.CharField(required=False, allow_blank=True)
    tier = serializers.CharField(max_length=128)
    sizeConfig = serializers.DictField(required=False, allow_null=True)
    features = FeatureSchema(many=True, required=False)


class BuilderSettingsSchema(AllowExtraFields):
    environmentOverride = serializers.DictField(required=False)


class BuilderConfigSchema(AllowExtraFields):
    type = serializers.CharField(max_length=64, help_text='Builder implementation, e.g. "CODE_BUILD" or "LOCAL".')
    config = BuilderSettingsSchema(required=False)


class TenantProvisioningDetail(AllowExtraFields):
    tenant = TenantSchema()
    planConfig = PlanConfigSchema()
    builderConfig = BuilderConfigSchema()
    appConfig = serializers.DictField(required=False)


class TenantRefSchema(AllowExtraFields):
    id = serializers.CharField(max_length=64)


class TenantDeprovisioningDetail(AllowExtraFields):
    tenant = TenantRefSchema()


class TenantDocumentField(serializers.JSONField):
    """The tenant as an object or as a JSON string (CodeBuild can only export strings); always an object."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise serializers.ValidationError("Must be a JSON object or a JSON-encoded object.") from None
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object or a JSON-encoded object.")
        tenant = TenantRefSchema(data=data)
        tenant.is_valid(raise_exception=True)
        return data


class BuildOutputsDetail(AllowExtraFields):
    """What a CodeBuild post-build step sends back: exported variables, all strings."""

    tenant = TenantDocumentField()
    secret = serializers.CharField(required=False, allow_blank=True)
    context = serializers.CharField(required=False, allow_blank=True)
    API_ENDPOINT = serializers.CharField(required=False, allow_blank=True)
    USER_CALLBACK_ENDPOINT = serializers.CharField(required=False, allow_blank=True)
    APP_PLANE_ENDPOINT_FEATURE_SERVICE = serializers.CharField(required=False, allow_blank=True)
    APP_PLANE_REDIRECT_URL = serializers.CharField(required=False, allow_blank=True)
    CODEBUILD_BUILD_SUCCEEDING = serializers.ChoiceField(choices=["0", "1"], required=False)
    CODEBUILD_BUILD_POSTBUILD = serializers.CharField(required=False, allow_blank=True)
    CODEBUILD_BUILD_ID = serializers.CharField(required=False, allow_blank=True)
    CLIENT_ID = serializers.CharField(required=False, allow_blank=True)
    CLIENT_SECRET = serializers.CharField(required=False, allow_blank=True)


class TenantDeploymentOutcomeDetail(AllowExtraFields):
    tenant = TenantDocumentField()
    reason = serializers.CharField(required=False, allow_blank=True)


class CodeBuildEnvironmentVariableSchema(AllowExtraFields):
    name = serializers.CharField()
    value = serializers.CharField(allow_blank=True)
    type = serializers.CharField(required=False)


class CodeBuildAdditionalInformationSchema(AllowExtraFields):
    environment = serializers.DictField(required=False)
    logs = serializers.DictField(required=False)


class CodeBuildStateChangeDetail(AllowExtraFields):
    """AWS's own event (source ``aws.codebuild``) when a build changes state."""

    build_status = serializers.CharField(source="build-status")
    project_name = serializers.CharField(source="project-name")
    build_id = serializers.CharField(source="build-id")
    additional_information = CodeBuildAdditionalInformationSchema(source="additional-information", required=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        validated = super().to_internal_value(data)
        # Keep AWS's own hyphenated names as the canonical keys; drop DRF's nested source split.
        return {key: value for key, value in validated.items() if isinstance(key, str)}


DETAIL_SCHEMAS: dict[str, type[serializers.Serializer]] = {
    DetailType.TENANT_PROVISIONING: TenantProvisioningDetail,
    DetailType.TENANT_DEPROVISIONING: TenantDeprovisioningDetail,
    DetailType.TENANT_PROVISIONING_SUCCESS: BuildOutputsDetail,
    DetailType.TENANT_PROVISIONING_FAILURE: BuildOutputsDetail,
    DetailType.TENANT_DEPLOYMENT: BuildOutputsDetail,
    DetailType.TENANT_DEPLOYMENT_SUCCESS: TenantDeploymentOutcomeDetail,
    DetailType.TENANT_DEPLOYMENT_FAILURE: TenantDeploymentOutcomeDetail,
    DetailType.CODEBUILD_BUILD_STATE_CHANGE: CodeBuildStateChangeDetail,
}
