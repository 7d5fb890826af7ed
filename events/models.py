from django.conf import settings
from django.db import models

from events.oauth.models import OAuthClient  # noqa: F401  (the token endpoint's clients live in events.oauth)
from orchestrator.sealing import SealedJSONField


class EventStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"  # stored, task enqueued (or waiting for the sweeper)
    PROCESSING = "processing", "Processing"  # a worker is running the handler
    PROCESSED = "processed", "Processed"  # the handler finished
    RETRYING = "retrying", "Retrying"  # the handler failed; another attempt is scheduled
    FAILED = "failed", "Failed"  # rejected, or out of attempts: needs a human (replay)


class ReceivedEvent(models.Model):
    """One EventBridge event as received. Unique on EventBridge's ``id``: at-least-once delivery
    becomes exactly-once processing."""

    # Indexes are the few the reads need (Meta): each one is written again by every insert and status change.
    event_id = models.CharField(max_length=256)  # unique: Meta.constraints (without a LIKE index nobody uses)
    detail_type = models.CharField(max_length=128)
    source = models.CharField(max_length=256)
    account = models.CharField(max_length=12)
    region = models.CharField(max_length=64)
    time = models.DateTimeField()
    resources = models.JSONField(default=list)
    # The whole envelope as received, unknown fields included. Secret-named values (the build's secret, API
    # keys) are sealed in the database (orchestrator.sealing).
    envelope = SealedJSONField(default=dict)
    # The detail as validated, stored only when validation changed it (a default filled in, a value
    # coerced); NULL: it is the envelope's. Read ``detail``. (Storing it twice doubled what every accepted
    # event cost PostgreSQL.)
    detail_override = SealedJSONField(null=True, blank=True, db_column="detail")
    # SHA-256 of the canonical envelope: a redelivery must match it, a different body is a conflict.
    body_sha256 = models.CharField(max_length=64)
    tenant_id = models.CharField(max_length=64, blank=True)

    status = models.CharField(max_length=16, choices=EventStatus.choices, default=EventStatus.ACCEPTED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When a RETRYING event is due again (backoff with jitter).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # ``attempts`` when the current run of retries began (0, or the count at the last replay): the retry
    # budget EVENT_MAX_ATTEMPTS counts attempts since then.
    attempts_base = models.PositiveIntegerField(default=0)
    # A staff replay waiting for a worker: the next attempt is recorded as requested by this user.
    replay_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    replay_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event_id"], name="event_unique_event_id")]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="event_status_updated"),  # sweeper, dashboard
            models.Index(fields=["tenant_id", "received_at"], name="event_tenant_received"),  # a tenant's events
            # Deleting a staff user looks up their pending replays; nearly every row has none.
            models.Index(
                fields=["replay_requested_by"],
                condition=models.Q(replay_requested_by__isnull=False),
                name="event_replay_requested_by",
            ),
        ]
        # Granted to the "Operators" staff group (orchestrator.staff); checked by the admin and the API.
        permissions = [("replay_receivedevent", "Can replay received events")]

    def __str__(self) -> str:
        return f"{self.detail_type} {self.event_id}"

    @property
    def detail(self) -> dict:
        """The validated detail: the handler's input."""
        if self.detail_override is not None:
            return self.detail_override
        detail = (self.envelope or {}).get("detail")
        return detail if isinstance(detail, dict) else {}

    @detail.setter
    def detail(self, value: dict) -> None:
        self.detail_override = value


class EventAttempt(models.Model):
    """One run of an event's handler: by the system (first run, retries, sweeper) or replayed by staff."""

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"

    event = models.ForeignKey(ReceivedEvent, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["event", "number"]
        constraints = [models.UniqueConstraint(fields=["event", "number"], name="event_attempt_unique_number")]

    def __str__(self) -> str:
        return f"{self.event} attempt {self.number}"


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class OutboxEvent(models.Model):
    """An event the orchestrator emits to EventBridge, stored first so it survives EventBridge being down."""

    detail_type = models.CharField(max_length=128)
    source = models.CharField(max_length=256)
    detail = SealedJSONField(default=dict)  # e.g. the build's secret for TENANT_DEPLOYMENT: sealed at rest
    event_bus = models.CharField(max_length=256)
    tenant_id = models.CharField(max_length=64, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # The EventId EventBridge assigned, once sent.
    eventbridge_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "created_at"], name="outbox_status_created")]

    def __str__(self) -> str:
        return f"{self.detail_type} -> {self.event_bus} ({self.status})"
