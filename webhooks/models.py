"""Webhook endpoints, deployment chains, deliveries and their attempts.

Secrets (endpoint secrets, the build's callback secret and context, request bodies that carry client
secrets) are stored Fernet-encrypted (``EncryptedSecretField``) and read back as masked ``SecretValue``s;
endpoints' custom header values are sealed (``SealedValuesJSONField``).
"""

import uuid
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.utils import timezone

from orchestrator.sealing import SealedValuesJSONField
from webhooks.secrets import SecretValue, secret_decrypt, secret_encrypt


class _SecretAttribute(DeferredAttribute):
    """Wraps whatever is assigned in a ``SecretValue`` so a plain string never sits on the instance."""

    def __set__(self, instance: models.Model, value: Any) -> None:
        if not isinstance(value, SecretValue):
            value = SecretValue("" if value is None else str(value))
        instance.__dict__[self.field.attname] = value


class EncryptedSecretField(models.TextField):
    """Text stored as a Fernet token; the Python value is a ``SecretValue`` (masked in str/repr)."""

    descriptor_class = _SecretAttribute
    # The attribute types django-stubs' plugin reads (annotations only): the descriptor wraps what is assigned.
    # They narrow TextField's str on purpose, which mypy reports as an incompatible override.
    _pyi_private_set_type: SecretValue | str | None  # type: ignore[assignment]
    _pyi_private_get_type: SecretValue  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> SecretValue:
        return SecretValue(secret_decrypt(value) if value else "")

    def to_python(self, value: Any) -> SecretValue:
        if isinstance(value, SecretValue):
            return value
        return SecretValue("" if value is None else str(value))

    def get_prep_value(self, value: Any) -> str:
        plaintext = value.reveal() if isinstance(value, SecretValue) else ("" if value is None else str(value))
        return secret_encrypt(plaintext) if plaintext else ""

    def value_to_string(self, obj: models.Model) -> str:
        return str(self.value_from_object(obj))  # masked: dumps never carry secrets


class SigningScheme(models.TextChoices):
    STANDARD = "standard", "Standard Webhooks (webhook-signature)"
    ORIGINAL = "original", "Original (x-signature hex HMAC-SHA256)"


class WebhookEventType(models.TextChoices):
    """Events subscriber endpoints can subscribe to."""

    TENANT_DEPLOYED = "tenant.deployed", "Tenant deployed (active)"
    TENANT_PROVISIONING_FAILED = "tenant.provisioning_failed", "Tenant provisioning failed"
    TENANT_DEPROVISIONED = "tenant.deprovisioned", "Tenant deprovisioned (inactive)"
    TENANT_DEPLOY_FAILED = "tenant.deploy_failed", "Tenant deployment failed"
    TENANT_UPDATED = "tenant.updated", "Tenant updated (new plan current)"
    TENANT_UPDATE_FAILED = "tenant.update_failed", "Tenant update failed (previous plan kept)"
    TENANT_SUSPENDED = "tenant.suspended", "Tenant suspended"
    TENANT_RESUMED = "tenant.resumed", "Tenant resumed (active)"
    # Operational events (webhooks.services.operations): for the platform team, each with its reason and a
    # link to the admin page; subscribed to like the others.
    DELIVERY_EXHAUSTED = "delivery.exhausted", "Operations: a delivery failed for good"
    ENDPOINT_DISABLED = "endpoint.disabled", "Operations: an endpoint was disabled"
    ENDPOINT_CIRCUIT_OPENED = "endpoint.circuit_opened", "Operations: an endpoint's circuit opened"
    TENANT_PROVISION_FAILED = "tenant.provision_failed", "Operations: a tenant's provisioning failed"
    TENANT_STUCK = "tenant.stuck", "Operations: the doctor found something stuck"


OPERATIONAL_EVENT_TYPES = frozenset(
    {
        WebhookEventType.DELIVERY_EXHAUSTED,
        WebhookEventType.ENDPOINT_DISABLED,
        WebhookEventType.ENDPOINT_CIRCUIT_OPENED,
        WebhookEventType.TENANT_PROVISION_FAILED,
        WebhookEventType.TENANT_STUCK,
    }
)


class WebhookEndpoint(models.Model):
    """A subscriber: where to send which events, signed how. The secret is write-only."""

    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=255, blank=True)
    events = models.JSONField(default=list, help_text="Event types this endpoint receives.")
    signing_scheme = models.CharField(max_length=16, choices=SigningScheme.choices, default=SigningScheme.STANDARD)
    secret = EncryptedSecretField()
    # After a rotation the previous secret still signs (a second signature) until it expires.
    previous_secret = EncryptedSecretField()
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    # Every value sealed in the database: custom headers exist to carry credentials (Authorization,
    # X-Api-Key, vendor names no rule can guess). Masked in every staff view; sent in plain.
    custom_headers = SealedValuesJSONField(
        default=dict, blank=True, help_text="Sent with every call; cannot override signatures. Values are write-only."
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The circuit breaker (webhooks.circuit): failures in a row, and while they reach the threshold, since
    # when the circuit is open and until when nothing is sent (then one probe at a time).
    consecutive_failures = models.PositiveIntegerField(default=0)
    circuit_opened_at = models.DateTimeField(null=True, blank=True)
    circuit_open_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    def signing_secrets(self, *, now: datetime | None = None) -> list[str]:
        """The secrets that sign now: the current one, plus the previous one during its grace period."""
        now = now or timezone.now()
        secrets = [self.secret.reveal()] if self.secret else []
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            secrets.append(self.previous_secret.reveal())
        return secrets


class DeploymentStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (waiting for a staff retry)"


class Deployment(models.Model):
    """One run of the deployment chain for one TENANT_DEPLOYMENT event."""

    event = models.OneToOneField("events.ReceivedEvent", on_delete=models.CASCADE, related_name="webhook_deployment")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="deployments")
    status = models.CharField(max_length=16, choices=DeploymentStatus.choices, default=DeploymentStatus.RUNNING)
    status_reason = models.TextField(blank=True)
    # CODEBUILD_BUILD_SUCCEEDING from the build: "0" means the chain only reports the failure.
    build_succeeded = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"deployment {self.pk} of {self.tenant_id} ({self.status})"


class DeliveryStep(models.TextChoices):
    APP_PLANE_BOOTSTRAP = "app_plane_bootstrap", "App-plane bootstrap"
    FEATURE_SERVICE_BOOTSTRAP = "feature_service_bootstrap", "Feature-service bootstrap"
    CONTROL_PLANE_WEBHOOK = "control_plane_webhook", "Control-plane webhook"
    SUBSCRIBER = "subscriber", "Subscriber webhook"


class DeliveryStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for the previous step"
    BLOCKED = "blocked", "Blocked by a failed step"
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


# A chain moves on past these; SUCCEEDED/SKIPPED/CANCELLED are final for a delivery.
DONE_STATUSES = frozenset({DeliveryStatus.SUCCEEDED, DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED})
SENDABLE_STATUSES = frozenset({DeliveryStatus.PENDING, DeliveryStatus.RETRYING})


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class WebhookDelivery(models.Model):
    """One message to one URL (a chain step or a subscriber), written before anything is sent.

    ``message_id`` is the Standard Webhooks ``webhook-id``: stable across every retry. ``body`` is the
    exact bytes sent (encrypted: bootstrap bodies carry client secrets); ``payload`` is a redacted copy
    for people to read.
    """

    message_id = models.CharField(max_length=64, unique=True, default=new_message_id)
    # Derived from what the delivery is for (event + step/endpoint, or tenant status change + endpoint):
    # re-running a handler or a signal receiver can never create a second delivery.
    dedupe_key = models.CharField(max_length=255, unique=True)
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Order in the chain; subscribers share one.")
    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.ForeignKey(
        "events.ReceivedEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    step = models.CharField(max_length=32, choices=DeliveryStep.choices)
    event_type = models.CharField(max_length=64, db_index=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    url = models.CharField(max_length=2048, blank=True)
    signing_scheme = models.CharField(max_length=16, choices=SigningScheme.choices)
    # Original scheme for chain steps: the build's secret and (for the control-plane webhook) its context.
    signing_secret = EncryptedSecretField()
    signing_context = EncryptedSecretField()
    sign_with_context = models.BooleanField(default=False)
    body = EncryptedSecretField()
    payload = models.JSONField(default=dict, blank=True, help_text="The body sent, secrets masked.")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    status_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Attempts since the last (re)start: indexes the retry schedule; a staff retry starts a new round.
    round_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the dispatcher last queued it: a retry waits in the database and is queued once it is due and was
    # not queued since (webhooks.services.dispatch.deliveries_dispatch_due).
    queued_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("retry_webhookdelivery", "Can retry webhook deliveries")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next"),
            models.Index(fields=["deployment", "position"], name="delivery_deployment_position"),
        ]

    def __str__(self) -> str:
        return f"{self.get_step_display()} → {self.url or '(no URL)'} ({self.status})"


class AttemptOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    RETRY = "retry", "Failed, will retry"
    FAILED = "failed", "Failed for good"
    REFUSED = "refused", "Refused before sending"
    INTERRUPTED = "interrupted", "Interrupted (worker lost)"


class DeliveryAttempt(models.Model):
    """One HTTP request of a delivery: written before the request, completed with the answer."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    url = models.CharField(max_length=2048, blank=True)
    request_headers = models.JSONField(default=dict, blank=True, help_text="Signatures masked.")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    response_truncated = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.RUNNING)
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_unique_number")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id} ({self.outcome})"
