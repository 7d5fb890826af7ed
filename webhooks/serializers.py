"""Input and output serializers of the webhooks API (edges only: no rules here).

Secrets are write-only: no output serializer has a field that reads a stored secret. The one place a
secret is shown is the answer to create/rotate (``secret``), once, because it was just generated.
"""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from orchestrator.redaction import MASK, redact
from webhooks.circuit import circuit_state
from webhooks.delivery import request_headers_masked
from webhooks.models import (
    DeliveryAttempt,
    DeliveryStatus,
    DeliveryStep,
    SigningScheme,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)


def masked_headers(headers: dict[str, Any] | None) -> dict[str, str]:
    """An endpoint's custom headers as every staff view shows them: names, every value masked (write-only)."""
    return {name: MASK if value not in (None, "") else "" for name, value in (headers or {}).items()}


class WebhookEndpointSerializer(serializers.ModelSerializer):
    custom_headers = serializers.SerializerMethodField(
        help_text="Header names; every value is masked (write-only: sending ******** back keeps the stored value)."
    )
    has_previous_secret = serializers.SerializerMethodField(
        help_text="True while a rotated-out secret still signs (grace period)."
    )
    circuit = serializers.SerializerMethodField(
        help_text=(
            "closed; open (deliveries wait, unsent, until circuit_open_until); half_open (the next delivery is a "
            "probe). Opens after WEBHOOK_CIRCUIT_FAILURES failures in a row (no answer or 5xx)."
        )
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "signing_scheme",
            "is_active",
            "disabled_reason",
            "disabled_at",
            "custom_headers",
            "secret_rotated_at",
            "has_previous_secret",
            "previous_secret_expires_at",
            "circuit",
            "consecutive_failures",
            "circuit_opened_at",
            "circuit_open_until",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_custom_headers(self, endpoint: WebhookEndpoint) -> dict[str, str]:
        return masked_headers(endpoint.custom_headers)

    def get_has_previous_secret(self, endpoint: WebhookEndpoint) -> bool:
        return len(endpoint.signing_secrets()) > 1

    @extend_schema_field(serializers.ChoiceField(choices=["closed", "open", "half_open"]))
    def get_circuit(self, endpoint: WebhookEndpoint) -> str:
        return circuit_state(endpoint)


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(help_text="The signing secret. Shown only in this answer: store it now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2048)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEventType.choices), min_length=1)
    signing_scheme = serializers.ChoiceField(choices=SigningScheme.choices, default=SigningScheme.STANDARD)
    custom_headers = serializers.DictField(child=serializers.CharField(max_length=1024), required=False, default=dict)
    is_active = serializers.BooleanField(default=True)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=512,
        style={"input_type": "password"},
        help_text="Optional; generated (whsec_...) when empty. Never returned afterwards.",
    )


class WebhookEndpointUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2048, required=False)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices), min_length=1, required=False
    )
    signing_scheme = serializers.ChoiceField(choices=SigningScheme.choices, required=False)
    custom_headers = serializers.DictField(
        child=serializers.CharField(max_length=1024),
        required=False,
        help_text="Replaces the custom headers; a value sent as ******** (as answers show it) keeps the stored one.",
    )
    is_active = serializers.BooleanField(required=False)


class RotateSecretInputSerializer(serializers.Serializer):
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=512,
        style={"input_type": "password"},
        help_text="Optional new secret; generated when empty.",
    )
    signing_scheme = serializers.ChoiceField(
        choices=SigningScheme.choices, required=False, help_text="Switch scheme with the new secret (no grace)."
    )


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    request_headers = serializers.SerializerMethodField(
        help_text="Headers sent; signatures and custom header values masked."
    )

    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "outcome",
            "url",
            "started_at",
            "duration_ms",
            "status_code",
            "response_body",
            "response_truncated",
            "error",
            "retry_at",
            "request_headers",
        ]
        read_only_fields = fields

    def get_request_headers(self, attempt: DeliveryAttempt) -> dict[str, str]:
        return request_headers_masked(attempt.request_headers)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "message_id",
            "status",
            "status_reason",
            "step",
            "event_type",
            "position",
            "url",
            "signing_scheme",
            "endpoint",
            "tenant",
            "event",
            "deployment",
            "attempts",
            "last_status_code",
            "next_attempt_at",
            "last_attempt_at",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    payload = serializers.SerializerMethodField(help_text="The body sent, with secret values masked.")
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "payload", "attempt_log"]
        read_only_fields = fields

    def get_payload(self, delivery: WebhookDelivery) -> dict[str, Any]:
        return redact(delivery.payload)


class DeliveryFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    endpoint = serializers.IntegerField(required=False, min_value=1)
    tenant = serializers.CharField(required=False, max_length=64)
    step = serializers.ChoiceField(choices=DeliveryStep.choices, required=False)
    event_type = serializers.CharField(required=False, max_length=64)
    deployment = serializers.IntegerField(required=False, min_value=1)


class DeliveryRetrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    queued = serializers.BooleanField(help_text="False when the delivery was already queued (nothing changed).")
    message = serializers.CharField()
