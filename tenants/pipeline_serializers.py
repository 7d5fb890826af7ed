"""Serializers of the pipelines API (edges only: the steps' rules are ``tenants.services.pipeline_definitions``).

Step outputs are redacted (a build's outputs carry its ``secret``): staff see names and non-secret values.
"""

from rest_framework import serializers

from orchestrator.redaction import redact
from tenants.models import PipelineOperation, PipelineRun, PipelineRunStatus, StepDecision, StepRun
from tenants.services.pipeline_definitions import MAX_ATTEMPTS, MAX_BACKOFF_SECONDS, MAX_STEPS, MAX_TIMEOUT_SECONDS


class PipelineStepSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64, help_text="Unique within the pipeline: letters, digits, - and _.")
    kind = serializers.CharField(max_length=32, help_text="build, approval, wait, callback or notify.")
    config = serializers.JSONField(required=False, help_text="What the kind needs (validated by the kind).")
    timeout_seconds = serializers.IntegerField(required=False, min_value=1, max_value=MAX_TIMEOUT_SECONDS)
    max_attempts = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ATTEMPTS)
    backoff_seconds = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_BACKOFF_SECONDS, help_text="Retry n waits backoff x 2^(n-1)."
    )
    continue_on_failure = serializers.BooleanField(required=False)


class PipelineInputSerializer(serializers.Serializer):
    steps = serializers.ListField(
        child=PipelineStepSerializer(), max_length=MAX_STEPS, help_text="In order; [] removes the pipeline."
    )


class TierPipelinesSerializer(serializers.Serializer):
    """Operation -> its steps, for the operations that have some."""

    tier = serializers.CharField()
    pipelines = serializers.DictField(
        child=PipelineStepSerializer(many=True), help_text=f"Keys: {', '.join(PipelineOperation.values)}."
    )


class StepRunSerializer(serializers.ModelSerializer):
    outputs = serializers.SerializerMethodField()
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, allow_null=True, default=None)
    decision = serializers.ChoiceField(choices=[("", ""), *StepDecision.choices], read_only=True)
    build = serializers.IntegerField(source="build_id", read_only=True, allow_null=True)

    class Meta:
        model = StepRun
        fields = [
            "id",
            "position",
            "name",
            "kind",
            "config",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "error",
            "outputs",
            "build",
            "decision",
            "decided_by",
            "decision_comment",
            "decided_at",
        ]

    def get_outputs(self, step: StepRun) -> dict:
        return redact(step.outputs or {})


class PipelineRunSerializer(serializers.ModelSerializer):
    tenant = serializers.CharField(source="tenant_id")
    step_runs = StepRunSerializer(many=True, read_only=True)

    class Meta:
        model = PipelineRun
        fields = [
            "id",
            "tenant",
            "operation",
            "tier_name",
            "status",
            "status_reason",
            "triggered_by",
            "created_at",
            "started_at",
            "finished_at",
            "step_runs",
        ]


class DecisionInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class RunActionResultSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.ChoiceField(choices=PipelineRunStatus.choices)
    changed = serializers.BooleanField(help_text="False: it was already so (nothing done).")
    message = serializers.CharField()
