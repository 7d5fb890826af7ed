"""The catalogue: every detail-type the orchestrator understands and the schema of its ``detail``.

Shapes follow the senders the original service served (the SaaS control plane's tenant-management
service and the CodeBuild post-build step). Unknown fields are kept (``AllowExtraFields``); only what a
handler relies on is required. Handlers are registered against these types in each app's
``event_handlers`` module.
"""

import copy
import json
from typing import Any

from rest_framework import serializers

from orchestrator.env_names import name_problem


class DetailType:
    TENANT_PROVISIONING = "TENANT_PROVISIONING"
    TENANT_DEPROVISIONING = "TENANT_DEPROVISIONING"
    TENANT_PROVISIONING_SUCCESS = "TENANT_PROVISIONING_SUCCESS"
    TENANT_PROVISIONING_FAILURE = "TENANT_PROVISIONING_FAILURE"
    TENANT_DEPLOYMENT = "TENANT_DEPLOYMENT"
    TENANT_DEPLOYMENT_SUCCESS = "TENANT_DEPLOYMENT_SUCCESS"
    TENANT_DEPLOYMENT_FAILURE = "TENANT_DEPLOYMENT_FAILURE"
    CODEBUILD_BUILD_STATE_CHANGE = "CodeBuild Build State Change"
    # The operations on an active tenant, from the control plane (no counterpart in the original, which
    # could only create and delete tenants): named like its requests, TENANT_ and the operation in capitals.
    TENANT_UPDATE = "TENANT_UPDATE"
    TENANT_SUSPEND = "TENANT_SUSPEND"
    TENANT_RESUME = "TENANT_RESUME"

    ALL = (
        TENANT_PROVISIONING,
        TENANT_DEPROVISIONING,
        TENANT_PROVISIONING_SUCCESS,
        TENANT_PROVISIONING_FAILURE,
        TENANT_DEPLOYMENT,
        TENANT_DEPLOYMENT_SUCCESS,
        TENANT_DEPLOYMENT_FAILURE,
        CODEBUILD_BUILD_STATE_CHANGE,
        TENANT_UPDATE,
        TENANT_SUSPEND,
        TENANT_RESUME,
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


def build_variable_names(variables: dict[str, Any]) -> None:
    """The sender names build variables here: refuse names no build may get (``orchestrator.env_names``:
    invalid, ``CODEBUILD_*``, or changing how a shell, the loader or an interpreter behaves)."""
    problems = [f"{name!r} {problem}." for name in variables if (problem := name_problem(name))]
    if problems:
        raise serializers.ValidationError(problems)


BUILD_VARIABLES_HELP = (
    "Build variables by name. Names: letters, digits and underscores, not starting with a digit; never "
    "CODEBUILD_* or a name that changes how a shell, the dynamic loader or an interpreter behaves (BASH_ENV, "
    "PATH, LD_*, PYTHON*...). A LOCAL build also needs upper-case names (or tenant, secret, context)."
)


class PlanConfigSchema(AllowExtraFields):
    id = serializers.CharField(required=False, allow_blank=True)
    name = serializers.CharField(required=False, allow_blank=True)
    tier = serializers.CharField(max_length=128)
    sizeConfig = serializers.DictField(
        required=False, allow_null=True, validators=[build_variable_names], help_text=BUILD_VARIABLES_HELP
    )
    features = FeatureSchema(many=True, required=False)


class BuilderSettingsSchema(AllowExtraFields):
    environmentOverride = serializers.DictField(
        required=False, validators=[build_variable_names], help_text=BUILD_VARIABLES_HELP
    )


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


class TenantUpdateDetail(AllowExtraFields):
    """A new plan for an active tenant; ``planConfig.tier`` may name another tier (the tenant moves to it)."""

    tenant = TenantRefSchema()
    planConfig = PlanConfigSchema()


class TenantSuspendDetail(AllowExtraFields):
    tenant = TenantRefSchema()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class TenantResumeDetail(TenantSuspendDetail):
    pass


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
    # A declared field, which DRF's metaclass takes off the class: the serializer's ``context`` stays (the stubs
    # cannot tell the two apart).
    context = serializers.CharField(required=False, allow_blank=True)  # type: ignore[assignment]
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


class HyphenatedFields(AllowExtraFields):
    """AWS's own events use hyphenated keys (``build-status``); declare them by their wire names."""

    hyphenated: dict[str, serializers.Field] = {}

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for name, field in self.hyphenated.items():
            fields[name] = copy.deepcopy(field)
        return fields


class CodeBuildEnvironmentSchema(HyphenatedFields):
    hyphenated = {
        "environment-variables": CodeBuildEnvironmentVariableSchema(many=True, required=False),
        "compute-type": serializers.CharField(required=False),
    }
    image = serializers.CharField(required=False)
    type = serializers.CharField(required=False)


class CodeBuildAdditionalInformationSchema(HyphenatedFields):
    hyphenated = {
        "build-complete": serializers.BooleanField(required=False),
        "build-start-time": serializers.CharField(required=False),
        "timeout-in-minutes": serializers.IntegerField(required=False),
        # What the buildspec's ``exported-variables`` exported (read by the sbt dialect).
        "exported-environment-variables": CodeBuildEnvironmentVariableSchema(many=True, required=False),
    }
    environment = CodeBuildEnvironmentSchema(required=False)
    initiator = serializers.CharField(required=False)
    logs = serializers.DictField(required=False)
    phases = serializers.ListField(child=serializers.DictField(), required=False)


class CodeBuildStateChangeDetail(HyphenatedFields):
    """AWS's own event (source ``aws.codebuild``) when a build changes state."""

    hyphenated = {
        "build-status": serializers.ChoiceField(
            choices=["IN_PROGRESS", "SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT"]
        ),
        "project-name": serializers.CharField(),
        "build-id": serializers.CharField(),
        "current-phase": serializers.CharField(required=False),
        "current-phase-context": serializers.CharField(required=False, allow_blank=True),
        "additional-information": CodeBuildAdditionalInformationSchema(required=False),
    }
    version = serializers.CharField(required=False)


DETAIL_SCHEMAS: dict[str, type[serializers.Serializer]] = {
    DetailType.TENANT_PROVISIONING: TenantProvisioningDetail,
    DetailType.TENANT_DEPROVISIONING: TenantDeprovisioningDetail,
    DetailType.TENANT_PROVISIONING_SUCCESS: BuildOutputsDetail,
    DetailType.TENANT_PROVISIONING_FAILURE: BuildOutputsDetail,
    DetailType.TENANT_DEPLOYMENT: BuildOutputsDetail,
    DetailType.TENANT_DEPLOYMENT_SUCCESS: TenantDeploymentOutcomeDetail,
    DetailType.TENANT_DEPLOYMENT_FAILURE: TenantDeploymentOutcomeDetail,
    DetailType.CODEBUILD_BUILD_STATE_CHANGE: CodeBuildStateChangeDetail,
    DetailType.TENANT_UPDATE: TenantUpdateDetail,
    DetailType.TENANT_SUSPEND: TenantSuspendDetail,
    DetailType.TENANT_RESUME: TenantResumeDetail,
}


# Types that arrive on the orchestrator's own bus; AWS's CodeBuild events come from the default bus.
BUS_DETAIL_TYPES: tuple[str, ...] = tuple(
    name for name in DetailType.ALL if name != DetailType.CODEBUILD_BUILD_STATE_CHANGE
)
CODEBUILD_SOURCE = "aws.codebuild"
_TENANT_ID_VARIABLES = ("TENANT_ID", "tenantId", "tenant_id")


def _tenant_id_from(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return ""
    if isinstance(value, dict) and isinstance(value.get("id"), str | int):
        return str(value["id"])[:64]
    return ""


def tenant_id_of(detail_type: str, detail: dict[str, Any]) -> str:
    """The tenant an event is about (for filtering and the tenant timeline); "" when it names none.

    ``detail.tenant.id`` in our own and the original service's events; ``detail.tenantId`` in sbt-aws's.
    """
    if detail_type != DetailType.CODEBUILD_BUILD_STATE_CHANGE:
        return _tenant_id_from(detail.get("tenant")) or _tenant_id_from({"id": detail.get("tenantId")})
    environment = (detail.get("additional-information") or {}).get("environment") or {}
    variables = {
        item.get("name"): item.get("value")
        for item in environment.get("environment-variables") or []
        if isinstance(item, dict)
    }
    for name in _TENANT_ID_VARIABLES:
        value = variables.get(name)
        if isinstance(value, str) and value:
            return value[:64]
    return _tenant_id_from(variables.get("tenant"))
