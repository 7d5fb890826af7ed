"""Per-tier pipelines: the ordered steps a tier runs for an operation, and the runs of them.

A ``PipelineStep`` is a tier's definition (edited by superusers through ``tenants.services.pipeline_definitions``);
a ``PipelineRun`` is one execution for one tenant, with one ``StepRun`` per step. A step run copies its
step (position, name, kind, config, timeout, retries) when the run starts, so editing the tier never
changes a run already under way. Step kinds: ``tenants.pipelines.registry``; the engine:
``tenants.services.pipeline_runs``.
"""

from django.conf import settings
from django.db import models

from orchestrator.sealing import SealedJSONField


class PipelineOperation(models.TextChoices):
    PROVISION = "provision", "Provision"
    UPDATE = "update", "Update"
    SUSPEND = "suspend", "Suspend"
    RESUME = "resume", "Resume"
    DEPROVISION = "deprovision", "Deprovision"


class PipelineStep(models.Model):
    """One step of a tier's pipeline for one operation."""

    tier = models.ForeignKey("tenants.Tier", on_delete=models.CASCADE, related_name="pipeline_steps")
    operation = models.CharField(max_length=16, choices=PipelineOperation.choices)
    position = models.PositiveSmallIntegerField()
    name = models.SlugField(max_length=64)
    kind = models.CharField(max_length=32, help_text="A kind of tenants.pipelines.registry.")
    config = models.JSONField(default=dict, blank=True, help_text="Validated by the kind.")
    timeout_seconds = models.PositiveIntegerField(default=3600)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    # Retry n waits backoff_seconds x 2^(n-1).
    backoff_seconds = models.PositiveIntegerField(default=30)
    continue_on_failure = models.BooleanField(default=False)

    class Meta:
        ordering = ["tier", "operation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "operation", "position"], name="pipeline_step_position"),
            models.UniqueConstraint(fields=["tier", "operation", "name"], name="pipeline_step_name"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} #{self.position} {self.name} ({self.kind})"


class PipelineRunStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    WAITING = "WAITING", "Waiting (approval or event)"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


RUN_LIVE_STATUSES = frozenset({PipelineRunStatus.PENDING, PipelineRunStatus.RUNNING, PipelineRunStatus.WAITING})


class PipelineRun(models.Model):
    """One run of a tier's pipeline for one tenant and operation."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="pipeline_runs")
    operation = models.CharField(max_length=16, choices=PipelineOperation.choices)
    tier_name = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=PipelineRunStatus.choices, default=PipelineRunStatus.PENDING)
    status_reason = models.TextField(blank=True)
    # What the caller handed the run (event pk, plans...); secrets sealed.
    context = SealedJSONField(default=dict, blank=True)
    triggered_by = models.CharField(max_length=150, help_text="What started it: an event, a user, the system.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One live run per tenant: a second operation waits for (or refuses) the first.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(status__in=["PENDING", "RUNNING", "WAITING"]),
                name="pipeline_run_one_live_per_tenant",
            )
        ]
        permissions = [
            ("approve_pipeline_step", "Can approve or reject a pipeline step"),
            ("manage_pipeline_run", "Can redrive or cancel a pipeline run"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} run {self.pk} of {self.tenant_id} ({self.status})"


# A step run goes through the same six states as its run.
StepRunStatus = PipelineRunStatus


STEP_OPEN_STATUSES = frozenset({StepRunStatus.RUNNING, StepRunStatus.WAITING})


class StepDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class StepRun(models.Model):
    """One step of a run: a copy of its definition, then what happened."""

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="step_runs")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=32)
    config = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.PositiveIntegerField()
    max_attempts = models.PositiveSmallIntegerField()
    backoff_seconds = models.PositiveIntegerField()
    continue_on_failure = models.BooleanField(default=False)
    # ``{run}:{position}``, fixed at creation: build tokens (``step:{key}:{attempt}``) and delivery
    # dedupe keys (so their ``webhook-id``) derive from it, so a redelivered task never repeats a start.
    key = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=StepRunStatus.choices, default=StepRunStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Attempts made before the current round (a redrive starts a new round of ``max_attempts``).
    attempts_before_round = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A RUNNING/WAITING step past this fails (the sweep); a PENDING retry is not started before next_attempt_at.
    deadline_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    outputs = SealedJSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    build = models.ForeignKey(
        "tenants.Build", null=True, blank=True, on_delete=models.SET_NULL, related_name="step_runs"
    )
    decision = models.CharField(max_length=16, choices=StepDecision.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="step_run_position")]
        indexes = [
            models.Index(fields=["status", "deadline_at"], name="step_run_status_deadline"),
        ]

    def __str__(self) -> str:
        return f"#{self.position} {self.name} ({self.kind}, {self.status})"
