from collections.abc import Callable, Collection
from typing import Any

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from orchestrator.links import is_https_url
from orchestrator.sealing import SealedJSONField

# Environment variable names a build may receive (CodeBuild's rule; also safe for a POSIX shell).
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Attributes of a tier item in DynamoDB that are not variables.
TIER_ITEM_RESERVED = frozenset(
    {
        "tier",
        "jobName",
        "deprovisionJobName",
        "updateJobName",
        "suspendJobName",
        "resumeJobName",
        "version",
        "allowedBuilders",
        "pipelines",
    }
)


class TenantStatus(models.TextChoices):
    PENDING_PROVISION = "PENDING_PROVISION", "Pending provision"
    PROVISIONING = "PROVISIONING", "Provisioning"
    PROVISION_FAILED = "PROVISION_FAILED", "Provision failed"
    DEPLOYING = "DEPLOYING", "Deploying"
    DEPLOY_FAILED = "DEPLOY_FAILED", "Deploy failed"
    ACTIVE = "ACTIVE", "Active"
    DEPROVISIONING = "DEPROVISIONING", "Deprovisioning"
    DEPROVISION_FAILED = "DEPROVISION_FAILED", "Deprovision failed"
    INACTIVE = "INACTIVE", "Inactive"
    # The operations on an active tenant (tenants.services.operations).
    UPDATING = "UPDATING", "Updating"
    UPDATE_FAILED = "UPDATE_FAILED", "Update failed"
    SUSPENDING = "SUSPENDING", "Suspending"
    SUSPENDED = "SUSPENDED", "Suspended"
    SUSPEND_FAILED = "SUSPEND_FAILED", "Suspend failed"
    RESUMING = "RESUMING", "Resuming"
    RESUME_FAILED = "RESUME_FAILED", "Resume failed"


# The lifecycle's only legal moves. Anything else is refused (and recorded) by tenant_transition().
# README's "Tenant lifecycle" table shows the same; tenants/tests/test_state_machine.py checks every pair.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TenantStatus.PENDING_PROVISION: frozenset({TenantStatus.PROVISIONING, TenantStatus.PROVISION_FAILED}),
    TenantStatus.PROVISIONING: frozenset({TenantStatus.DEPLOYING, TenantStatus.PROVISION_FAILED}),
    TenantStatus.PROVISION_FAILED: frozenset({TenantStatus.PROVISIONING}),
    TenantStatus.DEPLOYING: frozenset({TenantStatus.ACTIVE, TenantStatus.DEPLOY_FAILED}),
    TenantStatus.DEPLOY_FAILED: frozenset({TenantStatus.DEPLOYING}),
    TenantStatus.ACTIVE: frozenset({TenantStatus.DEPROVISIONING, TenantStatus.UPDATING, TenantStatus.SUSPENDING}),
    TenantStatus.DEPROVISIONING: frozenset({TenantStatus.INACTIVE, TenantStatus.DEPROVISION_FAILED}),
    TenantStatus.DEPROVISION_FAILED: frozenset({TenantStatus.DEPROVISIONING}),
    TenantStatus.INACTIVE: frozenset(),
    TenantStatus.UPDATING: frozenset({TenantStatus.ACTIVE, TenantStatus.UPDATE_FAILED}),
    # Retried (UPDATING again, same pending plan) or rolled back (ACTIVE on the plan it never left).
    TenantStatus.UPDATE_FAILED: frozenset({TenantStatus.UPDATING, TenantStatus.ACTIVE}),
    TenantStatus.SUSPENDING: frozenset({TenantStatus.SUSPENDED, TenantStatus.SUSPEND_FAILED}),
    TenantStatus.SUSPEND_FAILED: frozenset({TenantStatus.SUSPENDING}),
    TenantStatus.SUSPENDED: frozenset({TenantStatus.RESUMING, TenantStatus.DEPROVISIONING}),
    TenantStatus.RESUMING: frozenset({TenantStatus.ACTIVE, TenantStatus.RESUME_FAILED}),
    TenantStatus.RESUME_FAILED: frozenset({TenantStatus.RESUMING}),
}
FAILED_TENANT_STATUSES = frozenset(
    {
        TenantStatus.PROVISION_FAILED,
        TenantStatus.DEPLOY_FAILED,
        TenantStatus.DEPROVISION_FAILED,
        TenantStatus.UPDATE_FAILED,
        TenantStatus.SUSPEND_FAILED,
        TenantStatus.RESUME_FAILED,
    }
)


class Tenant(models.Model):
    """The portal's record of a tenant; DynamoDB's tenant item mirrors it (see tenants.services.sync)."""

    id = models.CharField(primary_key=True, max_length=64)
    key = models.CharField(max_length=63, unique=True)
    name = models.CharField(max_length=255, blank=True)
    # The tenant document as the control plane sent it (contacts, address, ...). These four carry what the
    # control plane sent, secrets included (environment overrides): secret-named values are sealed in the
    # database (orchestrator.sealing) and read back in plain.
    document = SealedJSONField(default=dict)
    plan = SealedJSONField(default=dict)
    builder_config = SealedJSONField(default=dict)
    app_config = SealedJSONField(default=dict, blank=True)
    tier = models.CharField(max_length=128, db_index=True, blank=True)
    # An update's plan (and tier) while it runs or after it failed: ``plan``/``tier`` change only when the
    # update succeeds, so callbacks and retries keep using the current plan until then. ``previous_*``: the
    # plan an update replaced (what a later look back or a manual roll back starts from).
    pending_plan = SealedJSONField(default=dict, blank=True)
    pending_tier = models.CharField(max_length=128, blank=True)
    previous_plan = SealedJSONField(default=dict, blank=True)
    previous_tier = models.CharField(max_length=128, blank=True)
    status = models.CharField(
        max_length=32, choices=TenantStatus.choices, default=TenantStatus.PENDING_PROVISION, db_index=True
    )
    status_reason = models.TextField(blank=True)
    # Incremented on every change; DynamoDB writes are conditional on it (never overwrite newer data).
    version = models.PositiveIntegerField(default=1)
    synced_version = models.PositiveIntegerField(default=0)
    provisioning_attempt = models.PositiveIntegerField(default=0)
    deprovisioning_attempt = models.PositiveIntegerField(default=0)
    # Attempts of the operations on an active tenant (update, suspend, resume): one counter, the build's
    # idempotency token names the operation.
    operation_attempt = models.PositiveIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # Staff actions (admin and API); granted to the "Operators" group (orchestrator.staff).
        permissions = [
            ("retry_provisioning_tenant", "Can retry a tenant's provisioning"),
            ("deprovision_tenant", "Can deprovision a tenant"),
            ("resync_tenant", "Can write a tenant to DynamoDB again"),
            ("update_tenant", "Can update a tenant's plan or roll an update back"),
            ("suspend_tenant", "Can suspend and resume a tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.key} ({self.id})"

    def save(self, **kwargs: Any) -> None:
        """Every change of an existing row bumps ``version`` (the DynamoDB mirror's write condition)."""
        _save_bumping_version(self, super().save, kwargs)

    @property
    def primary_contact(self) -> dict:
        contacts = self.document.get("contacts") or []
        primary = next((c for c in contacts if isinstance(c, dict) and c.get("isPrimary")), None)
        return primary or (contacts[0] if contacts and isinstance(contacts[0], dict) else {})


class VariableType(models.TextChoices):
    PLAINTEXT = "PLAINTEXT", "Plain text"
    PARAMETER_STORE = "PARAMETER_STORE", "SSM parameter (name)"
    SECRETS_MANAGER = "SECRETS_MANAGER", "Secrets Manager (secret id)"


class BuilderType(models.TextChoices):
    """``builderConfig.type`` values (``tenants.builders.registry`` maps each to its builder)."""

    CODE_BUILD = "CODE_BUILD", "AWS CodeBuild"
    LOCAL = "LOCAL", "Local runner (runs an allow-listed command on the worker)"


def default_allowed_builders() -> list[str]:
    return [BuilderType.CODE_BUILD.value]


class Tier(models.Model):
    """One row of the tier mapping: which build projects a tier uses and the variables they get."""

    name = models.CharField(max_length=128, unique=True)
    provision_project = models.CharField(
        max_length=255, help_text="CodeBuild project (or local command) that provisions."
    )
    deprovision_project = models.CharField(max_length=255, blank=True)
    # The operations on an active tenant: without a project the operation succeeds at once (nothing to build).
    update_project = models.CharField(
        max_length=255, blank=True, help_text="Runs when a tenant's plan changes to this tier (or within it)."
    )
    suspend_project = models.CharField(max_length=255, blank=True)
    resume_project = models.CharField(max_length=255, blank=True)
    # The builders an event may choose for this tier (builderConfig.type); anything else is refused.
    allowed_builders = models.JSONField(
        default=default_allowed_builders,
        help_text="Builders an event may choose for this tier (builderConfig.type). LOCAL runs the projects on "
        "the worker: they must be commands listed in LOCAL_BUILD_COMMANDS.",
    )
    description = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    synced_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The name as loaded (from_db), so the post_save receiver can delete a renamed tier's old DynamoDB item.
    _loaded_name: str | None

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, **kwargs: Any) -> None:
        _save_bumping_version(self, super().save, kwargs)

    @classmethod
    def from_db(cls, db: str | None, field_names: Collection[str], values: Collection[Any], **kwargs: Any) -> "Tier":
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded_name = instance.__dict__.get("name")  # a rename deletes the old DynamoDB item
        return instance

    def project_for(self, purpose: str) -> str:
        """The project that builds ``purpose`` (a ``BuildPurpose``) for this tier; "" when it has none."""
        return str(getattr(self, f"{purpose}_project", ""))


def _save_bumping_version(instance: "Tenant | Tier", save: Callable[..., None], kwargs: dict) -> None:
    """Save; an update of an existing row increments ``version`` in the database (``F() + 1``), so a
    stale in-memory copy can never write a version lower than one already mirrored."""
    update_fields = kwargs.get("update_fields")
    bump = not instance._state.adding and (update_fields is None or "version" in update_fields)
    if bump:
        instance.version = models.F("version") + 1
    save(**kwargs)
    if bump:
        instance.refresh_from_db(fields=["version"])


class TierVariable(models.Model):
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="variables")
    name = models.CharField(
        max_length=255,
        validators=[
            RegexValidator(ENV_NAME_PATTERN, "Letters, digits and underscores; not starting with a digit."),
            RegexValidator(r"^(?!CODEBUILD_)", "Names starting with CODEBUILD_ are reserved by CodeBuild."),
            RegexValidator(
                r"^(?!(tier|jobName|deprovisionJobName|updateJobName|suspendJobName|resumeJobName|version"
                r"|allowedBuilders|pipelines)$)",
                "Reserved for the tier item in DynamoDB.",
            ),
        ],
    )
    value = models.TextField(blank=True)
    type = models.CharField(max_length=32, choices=VariableType.choices, default=VariableType.PLAINTEXT)

    class Meta:
        ordering = ["tier", "name"]
        constraints = [models.UniqueConstraint(fields=["tier", "name"], name="tier_variable_unique_name")]

    def __str__(self) -> str:
        return f"{self.tier.name}.{self.name}"


class BuildPurpose(models.TextChoices):
    PROVISION = "provision", "Provision"
    DEPROVISION = "deprovision", "Deprovision"
    UPDATE = "update", "Update"
    SUSPEND = "suspend", "Suspend"
    RESUME = "resume", "Resume"


# The operations on an active tenant: each one's build purpose is its name ("update", "suspend", "resume").
OPERATION_PURPOSES = frozenset({BuildPurpose.UPDATE, BuildPurpose.SUSPEND, BuildPurpose.RESUME})
# Purpose → (status while its work runs, status when it fails, status when it succeeds). Keyed by str: a
# build's purpose field holds the choice's value. A provision build's success leads to DEPLOYING (the
# deployment chain then makes the tenant ACTIVE).
PURPOSE_STATUSES: dict[str, tuple[TenantStatus, TenantStatus, TenantStatus]] = {
    BuildPurpose.PROVISION: (TenantStatus.PROVISIONING, TenantStatus.PROVISION_FAILED, TenantStatus.DEPLOYING),
    BuildPurpose.DEPROVISION: (TenantStatus.DEPROVISIONING, TenantStatus.DEPROVISION_FAILED, TenantStatus.INACTIVE),
    BuildPurpose.UPDATE: (TenantStatus.UPDATING, TenantStatus.UPDATE_FAILED, TenantStatus.ACTIVE),
    BuildPurpose.SUSPEND: (TenantStatus.SUSPENDING, TenantStatus.SUSPEND_FAILED, TenantStatus.SUSPENDED),
    BuildPurpose.RESUME: (TenantStatus.RESUMING, TenantStatus.RESUME_FAILED, TenantStatus.ACTIVE),
}


def attempt_field(purpose: str) -> str:
    """The ``Tenant`` field that counts the attempts of ``purpose`` (operations share one counter)."""
    if purpose == BuildPurpose.PROVISION:
        return "provisioning_attempt"
    if purpose == BuildPurpose.DEPROVISION:
        return "deprovisioning_attempt"
    return "operation_attempt"


class BuildStatus(models.TextChoices):
    # Recorded, not yet handed to its builder: started after the recording transaction commits (and again
    # by the recovery sweep, with the same idempotency token, if that start never happened).
    PENDING_START = "PENDING_START", "Pending start"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    FAULT = "FAULT", "Fault"
    TIMED_OUT = "TIMED_OUT", "Timed out"
    STOPPED = "STOPPED", "Stopped"


BUILD_FAILURE_STATUSES = frozenset({BuildStatus.FAILED, BuildStatus.FAULT, BuildStatus.TIMED_OUT, BuildStatus.STOPPED})
# A build in one of these has not finished: a state the builder reports may still apply to it.
BUILD_OPEN_STATUSES = frozenset({BuildStatus.PENDING_START, BuildStatus.IN_PROGRESS})


class Build(models.Model):
    """One build started for a tenant (CodeBuild or the local runner)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="builds")
    # The event (or nothing, for a staff action) that asked for this build: a re-run of the event finds it.
    event = models.ForeignKey(
        "events.ReceivedEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="tenant_builds"
    )
    purpose = models.CharField(max_length=16, choices=BuildPurpose.choices)
    attempt = models.PositiveIntegerField()
    builder_type = models.CharField(max_length=32)
    project = models.CharField(max_length=255)
    # Derived from tenant, purpose and attempt: a retried task can never start a second build.
    idempotency_token = models.CharField(max_length=128, unique=True)
    build_id = models.CharField(max_length=512, blank=True, db_index=True)
    arn = models.CharField(max_length=1024, blank=True)
    environment = models.JSONField(default=list, help_text="Variables sent, secrets masked.")
    status = models.CharField(max_length=16, choices=BuildStatus.choices, default=BuildStatus.IN_PROGRESS)
    status_reason = models.TextField(blank=True)
    logs_url = models.URLField(max_length=2048, blank=True)
    # A build CodeBuild reports SUCCEEDED whose success event never arrived is flagged for staff.
    awaiting_outcome_event = models.BooleanField(default=False)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    # LOCAL runner (tenants.services.local_runs). ``claimed_at``: when a runner last started the command.
    # The runner holds a lease (``lease_owner`` until ``lease_expires_at``, renewed while the command
    # runs): a live lease makes a duplicate task skip the build, an expired one lets the recovery sweep
    # run it again (``runs`` counts the runs, bounded by LOCAL_BUILD_MAX_RUNS). Null when not leased.
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0)
    # The LOCAL build's outcome event, stored (secrets sealed) when its command ended, before it is
    # posted to the intake; re-posted at ``outcome_next_post_at`` until the intake accepts it.
    outcome = SealedJSONField(null=True, blank=True)
    outcome_posted_at = models.DateTimeField(null=True, blank=True)
    outcome_next_post_at = models.DateTimeField(null=True, blank=True)
    outcome_post_attempts = models.PositiveIntegerField(default=0)
    outcome_post_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["status", "started_at"], name="build_status_started"),
            # What the recovery sweep looks for: leases that may have run out, outcomes not yet accepted.
            models.Index(
                fields=["lease_expires_at"], name="build_leased", condition=models.Q(lease_expires_at__isnull=False)
            ),
            models.Index(
                fields=["outcome_next_post_at"],
                name="build_outcome_unposted",
                condition=models.Q(outcome_next_post_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} #{self.attempt} for {self.tenant_id} ({self.status})"

    @property
    def logs_link(self) -> str:
        """``logs_url`` if it is safe to render as a link (https): rows stored before that was checked on the
        way in may hold anything an event carried."""
        return self.logs_url if is_https_url(self.logs_url) else ""


class HistoryKind(models.TextChoices):
    EVENT = "event", "Event received"
    TRANSITION = "transition", "Status change"
    TRANSITION_REFUSED = "transition_refused", "Status change refused"
    BUILD = "build", "Build"
    CALLBACK = "callback", "Callback"
    STAFF_ACTION = "staff_action", "Staff action"
    PIPELINE = "pipeline", "Pipeline"
    SYNC = "sync", "DynamoDB sync"
    NOTE = "note", "Note"


class TenantHistory(models.Model):
    """Append-only timeline of everything that happened to a tenant. Never deleted while the tenant exists
    (a purge of the tenant exports it first); only the log tail of an old build entry is dropped
    (BUILD_LOG_RETENTION_DAYS, tenants.services.retention)."""

    SYSTEM = "system"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=32, choices=HistoryKind.choices)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=150, default=SYSTEM)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the entry is about, for links from the timeline: ("event", pk), ("build", pk), ("delivery", pk).
    ref_type = models.CharField(max_length=32, blank=True)
    ref_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "tenant history"
        indexes = [
            models.Index(fields=["tenant", "at"], name="history_tenant_at"),
            models.Index(fields=["tenant", "ref_type", "ref_id"], name="history_tenant_ref"),
            # The dashboard's onboarding chart reads the activations of the last 24 h: a small partial index
            # instead of a day of every tenant's history.
            models.Index(
                fields=["at"],
                name="history_activated_at",
                condition=models.Q(kind="transition", details__to="ACTIVE"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.summary}"


# The pipeline models live in their own module; re-exported so ``from tenants.models import X`` works for all.
from tenants.models.pipelines import (  # noqa: E402
    RUN_LIVE_STATUSES,
    STEP_OPEN_STATUSES,
    PipelineOperation,
    PipelineRun,
    PipelineRunStatus,
    PipelineStep,
    StepDecision,
    StepRun,
    StepRunStatus,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "BUILD_FAILURE_STATUSES",
    "BUILD_OPEN_STATUSES",
    "ENV_NAME_PATTERN",
    "FAILED_TENANT_STATUSES",
    "RUN_LIVE_STATUSES",
    "STEP_OPEN_STATUSES",
    "TIER_ITEM_RESERVED",
    "Build",
    "BuildPurpose",
    "BuildStatus",
    "BuilderType",
    "HistoryKind",
    "PipelineOperation",
    "PipelineRun",
    "PipelineRunStatus",
    "PipelineStep",
    "StepDecision",
    "StepRun",
    "StepRunStatus",
    "Tenant",
    "TenantHistory",
    "TenantStatus",
    "Tier",
    "TierVariable",
    "VariableType",
    "default_allowed_builders",
]
