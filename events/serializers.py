"""Output and query serializers of the events API (edges only: no rules here)."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus, ReceivedEvent
from orchestrator.redaction import redact, redact_text


class IntakeResponseSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The event's EventBridge id.")
    status = serializers.ChoiceField(choices=["accepted", "duplicate"])


class EventFilterSerializer(serializers.Serializer):
    detail_type = serializers.ChoiceField(choices=list(DetailType.ALL), required=False)
    status = serializers.ChoiceField(choices=EventStatus.choices, required=False)
    tenant_id = serializers.CharField(required=False, max_length=64)
    received_after = serializers.DateTimeField(required=False, help_text="Inclusive, ISO-8601.")
    received_before = serializers.DateTimeField(required=False, help_text="Exclusive, ISO-8601.")


class EventAttemptSerializer(serializers.ModelSerializer):
    requested_by = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()

    class Meta:
        model = EventAttempt
        fields = ["number", "outcome", "error", "requested_by", "started_at", "finished_at"]

    def get_requested_by(self, attempt: EventAttempt) -> str | None:
        return attempt.requested_by.get_username() if attempt.requested_by else None

    def get_error(self, attempt: EventAttempt) -> str:
        return redact_text(attempt.error)


class EventSerializer(serializers.ModelSerializer):
    last_error = serializers.SerializerMethodField()
    result = serializers.SerializerMethodField()

    class Meta:
        model = ReceivedEvent
        fields = [
            "id",
            "event_id",
            "detail_type",
            "source",
            "account",
            "region",
            "time",
            "resources",
            "tenant_id",
            "status",
            "attempts",
            "last_error",
            "result",
            "received_at",
            "started_at",
            "finished_at",
            "next_attempt_at",
        ]

    def get_last_error(self, event: ReceivedEvent) -> str:
        return redact_text(event.last_error)

    @extend_schema_field(OpenApiTypes.ANY)
    def get_result(self, event: ReceivedEvent) -> Any:
        return redact(event.result)


class EventDetailSerializer(EventSerializer):
    detail = serializers.SerializerMethodField(help_text="The validated detail, secrets masked.")
    attempt_log = EventAttemptSerializer(many=True, read_only=True)

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "detail", "attempt_log"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_detail(self, event: ReceivedEvent) -> dict[str, Any]:
        return redact(event.detail)


class EventReplaySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=EventStatus.choices)
    queued = serializers.BooleanField(help_text="False when a run was already waiting (nothing new queued).")
    message = serializers.CharField()


class EventDryRunSerializer(serializers.Serializer):
    """What receiving an event would do (``events.dry_run``); documentation of the answer only."""

    event = serializers.DictField(help_text="id, detail_type, source, tenant_id and body_sha256 of the event.")
    intake = serializers.DictField(help_text="The intake's answer now: status 202 accepted, 200 duplicate, 409.")
    handler = serializers.DictField(help_text="The handler that would run (dotted name) and its description.")
    effect = serializers.DictField(
        allow_null=True,
        help_text="What the handler would do (outcome, reason, tenant, transitions, tier, build, environment, "
        "callbacks); null for types without a preview.",
    )
