"""DynamoDB mirror of tenants and tiers: Django is the system of record, DynamoDB what the data plane reads.

Table layouts (the original service's, so existing readers keep working):

- Tenant table (``DYNAMODB_TENANT_TABLE``), key ``tenantId``: ``tenant`` (the tenant document), ``planConfig``,
  ``builderConfig``, ``appConfig`` (when the event carried one), ``status`` and ``version``, all top level;
  while an update is pending or failed, ``pendingPlanConfig`` (sealed like ``planConfig``) and ``pendingTier``
  (attributes the original did not have, which its readers ignore: ``planConfig`` stays the current plan).
  A deprovisioned tenant keeps its item with ``status = "INACTIVE"`` (never silently deleted).
- Tier table (``DYNAMODB_TIER_TABLE``), key ``tier``: ``jobName`` (the provisioning project),
  ``deprovisionJobName``, ``updateJobName``, ``suspendJobName``, ``resumeJobName`` (each when set), ``version``,
  ``allowedBuilders`` (a list: the builders events may pick; an attribute the original did not have, which
  its readers ignore, as they ignore the operations' job names), ``pipelines`` (only for a tier with
  pipelines: operation -> its ordered steps, ``tenants.services.pipeline_definitions``; also new), and one
  attribute per tier variable (plaintext values; for SSM / Secrets Manager variables the parameter name /
  secret id, never the secret).

Secrets are not copied in plain: every secret-named value (``orchestrator.redaction.is_secret_key``; also
inside strings that hold JSON, such as ``builderConfig.config.environmentOverride.tenant``; for tiers,
plain-text variables only) is, as ``DYNAMODB_MIRROR_SECRETS`` says, ``sealed`` (the same ``sealed:v1:...``
token the database holds, which only a holder of the orchestrator's keys can open) or ``omit``ted (the key
left out). Keys and every other value keep the layout above. The drift check compares items opened, so a
fresh seal is no drift.

Every committed change is written by a task scheduled with ``transaction.on_commit`` (once per object and
transaction). Writes are conditional on ``version`` (``attribute_not_exists(key) OR version < :v``), so a
late, older write never overwrites a newer one. DynamoDB being down makes the task retry with backoff;
``synced_version < version`` marks what is still pending, and a periodic sweep re-enqueues it, so a
change is never lost. Works against moto and DynamoDB Local alike: numbers are sent as ``N``, map keys
are never empty, and ``status``/``version`` (reserved words) go through ``ExpressionAttributeNames``.
"""

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from django.conf import settings
from django.db import transaction
from django.db.models import F

from orchestrator.aws import TRANSIENT_AWS_ERRORS, aws_client, is_transient
from orchestrator.errors import ApplicationError, ServiceUnavailableError
from orchestrator.redaction import secrets_left_out
from orchestrator.sealing import seal, unseal
from tenants.models import TIER_ITEM_RESERVED, Tenant, Tier, TierVariable, VariableType
from tenants.services.pipeline_definitions import tier_pipelines

logger = logging.getLogger(__name__)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# Codes that mean "not now" for a mirror write: retried like a transport error.
_RETRYABLE_CODES = {"ResourceNotFoundException", "ResourceInUseException", "TransactionConflictException"}


class SyncUnavailable(ServiceUnavailableError):
    """DynamoDB could not take the write now; the sync task retries with backoff."""

    code = "dynamodb_unavailable"


# --- Item shapes -----------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-like value → what DynamoDB accepts: Decimal numbers, no empty map keys, no floats."""
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items() if str(key) != ""}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(json.dumps(value)) if isinstance(value, float) else Decimal(value)
    return str(value)


def _mirrored(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with its secrets sealed or left out (``DYNAMODB_MIRROR_SECRETS``)."""
    if settings.DYNAMODB_MIRROR_SECRETS == "omit":
        return secrets_left_out(item)
    return seal(item)


def tenant_item(tenant: Tenant) -> dict[str, Any]:
    document = dict(tenant.document or {})
    document.setdefault("id", tenant.pk)
    item: dict[str, Any] = {
        "tenantId": tenant.pk,
        "tenant": document,
        "planConfig": tenant.plan or {},
        "builderConfig": tenant.builder_config or {},
        "status": tenant.status,
        "version": tenant.version,
    }
    if tenant.app_config:
        item["appConfig"] = tenant.app_config
    if tenant.pending_plan:
        item["pendingPlanConfig"] = tenant.pending_plan
        item["pendingTier"] = tenant.pending_tier
    return _clean(_mirrored(item))


# Tier item attributes naming the optional projects (``jobName``, the provisioning one, is always there).
_TIER_JOB_NAMES = (
    ("deprovisionJobName", "deprovision_project"),
    ("updateJobName", "update_project"),
    ("suspendJobName", "suspend_project"),
    ("resumeJobName", "resume_project"),
)


def tier_item(tier: Tier, variables: list[TierVariable] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "tier": tier.name,
        "jobName": tier.provision_project,
        "version": tier.version,
        "allowedBuilders": list(tier.allowed_builders),
    }
    for attribute, project in _TIER_JOB_NAMES:
        if getattr(tier, project):
            item[attribute] = getattr(tier, project)
    if pipelines := tier_pipelines(tier=tier):
        item["pipelines"] = _mirrored(pipelines)
    plain: dict[str, Any] = {}  # plain-text values: secret-named ones are mirrored sealed or left out
    for variable in variables if variables is not None else tier.variables.all():
        if variable.name not in TIER_ITEM_RESERVED:
            (plain if variable.type == VariableType.PLAINTEXT else item)[variable.name] = variable.value
    return _clean({**item, **_mirrored(plain)})


def to_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in item.items()}


def from_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


# --- Scheduling ------------------------------------------------------------------------------------


def _on_commit_once(key: tuple[str, str], callback: Callable[[], None]) -> None:
    """``transaction.on_commit(callback)`` unless the same key is already waiting for this commit."""
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        for _savepoints, pending, _robust in connection.run_on_commit:
            if getattr(pending, "sync_key", None) == key and not getattr(pending, "done", False):
                return

    def run() -> None:
        run.done = True  # type: ignore[attr-defined]
        callback()

    run.sync_key = key  # type: ignore[attr-defined]
    # robust: a broker hiccup must not fail the caller after its commit; the sweep re-enqueues later.
    transaction.on_commit(run, robust=True)


def tenant_sync_schedule(*, tenant_id: str) -> None:
    """Write the tenant's DynamoDB item after the current transaction commits."""
    from tenants.tasks import sync_tenant

    _on_commit_once(("tenant", tenant_id), lambda: sync_tenant.delay(tenant_id=tenant_id))


def tier_sync_schedule(*, name: str) -> None:
    """Write (or delete, when the tier is gone) the tier's DynamoDB item after commit."""
    from tenants.tasks import sync_tier

    _on_commit_once(("tier", name), lambda: sync_tier.delay(name=name))


def tier_mark_changed(*, tier_id: int) -> None:
    """A tier's variables changed: bump its version and schedule the write."""
    Tier.objects.filter(pk=tier_id).update(version=F("version") + 1)
    name = Tier.objects.filter(pk=tier_id).values_list("name", flat=True).first()
    if name is not None:
        tier_sync_schedule(name=name)


# --- Writes ------------------------------------------------------------------------------------------


def _client() -> Any:
    return aws_client("dynamodb")


def _conditional_put(*, table: str, key: str, item: dict[str, Any]) -> bool:
    """Put ``item`` unless the stored one has the same or a newer version. True when written."""
    try:
        _client().put_item(
            TableName=table,
            Item=to_dynamodb(item),
            ConditionExpression="attribute_not_exists(#key) OR #version < :version",
            ExpressionAttributeNames={"#key": key, "#version": "version"},
            ExpressionAttributeValues={":version": {"N": str(item["version"])}},
        )
        return True
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            return False
        if is_transient(error) or code in _RETRYABLE_CODES:
            raise SyncUnavailable(f"DynamoDB refused the write for now ({code}).") from error
        raise
    except TRANSIENT_AWS_ERRORS as error:
        raise SyncUnavailable(f"DynamoDB is unreachable ({error.__class__.__name__}).") from error


def _delete(*, table: str, key: dict[str, Any]) -> None:
    try:
        _client().delete_item(TableName=table, Key=to_dynamodb(key))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if is_transient(error) or code in _RETRYABLE_CODES:
            raise SyncUnavailable(f"DynamoDB refused the delete for now ({code}).") from error
        raise
    except TRANSIENT_AWS_ERRORS as error:
        raise SyncUnavailable(f"DynamoDB is unreachable ({error.__class__.__name__}).") from error


def tenant_item_delete(*, tenant_id: str) -> None:
    """Remove a purged tenant's item from the tenant data store. Raises ``SyncUnavailable`` when DynamoDB
    cannot answer (the purge is then tried again on the next run)."""
    _delete(table=settings.DYNAMODB_TENANT_TABLE, key={"tenantId": tenant_id})


def tenant_sync(*, tenant_id: str) -> str:
    """Write one tenant's item. Returns ``written``, ``stale`` (DynamoDB already has this version or a
    newer one) or ``missing`` (no such tenant). Raises ``SyncUnavailable`` when DynamoDB cannot answer."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return "missing"
    written = _conditional_put(table=settings.DYNAMODB_TENANT_TABLE, key="tenantId", item=tenant_item(tenant))
    Tenant.objects.filter(pk=tenant.pk, synced_version__lt=tenant.version).update(synced_version=tenant.version)
    if not written:
        logger.info("tenant %s: DynamoDB already holds version >= %s; write skipped", tenant.pk, tenant.version)
    return "written" if written else "stale"


def tier_sync(*, name: str) -> str:
    """Write one tier's item (``written``/``stale``), or delete it when the tier is gone (``deleted``)."""
    tier = Tier.objects.filter(name=name).prefetch_related("variables", "pipeline_steps").first()
    if tier is None:
        _delete(table=settings.DYNAMODB_TIER_TABLE, key={"tier": name})
        return "deleted"
    written = _conditional_put(table=settings.DYNAMODB_TIER_TABLE, key="tier", item=tier_item(tier))
    Tier.objects.filter(pk=tier.pk, synced_version__lt=tier.version).update(synced_version=tier.version)
    return "written" if written else "stale"


def sync_pending_schedule(*, limit: int = 1000) -> dict[str, int]:
    """Re-enqueue every tenant and tier whose last change has not reached DynamoDB yet (the sweep)."""
    from tenants.tasks import sync_tenant, sync_tier

    tenant_ids = list(
        Tenant.objects.filter(synced_version__lt=F("version"))
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
    tier_names = list(Tier.objects.filter(synced_version__lt=F("version")).values_list("name", flat=True)[:limit])
    for tenant_id in tenant_ids:
        sync_tenant.delay(tenant_id=tenant_id)
    for name in tier_names:
        sync_tier.delay(name=name)
    return {"tenants": len(tenant_ids), "tiers": len(tier_names)}


# --- Drift: check and repair ---------------------------------------------------------------------------


@dataclass
class TableDrift:
    table: str
    key: str
    missing: list[str] = field(default_factory=list)  # in Django, not in DynamoDB
    extra: list[str] = field(default_factory=list)  # in DynamoDB, not in Django
    different: dict[str, list[str]] = field(default_factory=dict)  # key → attributes that differ

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.different)


def _scan(table: str) -> Iterator[dict[str, Any]]:
    paginator = _client().get_paginator("scan")
    try:
        for page in paginator.paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield from_dynamodb(item)
    except TRANSIENT_AWS_ERRORS as error:
        raise SyncUnavailable(f"DynamoDB is unreachable ({error.__class__.__name__}).") from error


def _expected_tenants() -> dict[str, dict[str, Any]]:
    return {tenant.pk: tenant_item(tenant) for tenant in Tenant.objects.order_by("pk").iterator(chunk_size=500)}


def _expected_tiers() -> dict[str, dict[str, Any]]:
    tiers = Tier.objects.prefetch_related("variables", "pipeline_steps").order_by("name")
    return {tier.name: tier_item(tier) for tier in tiers}


def _compare(table: str, key: str, expected: dict[str, dict[str, Any]]) -> TableDrift:
    drift = TableDrift(table=table, key=key)
    seen: set[str] = set()
    for actual in _scan(table):
        item_key = str(actual.get(key))
        seen.add(item_key)
        wanted = expected.get(item_key)
        if wanted is None:
            drift.extra.append(item_key)
            continue
        wanted = unseal(from_dynamodb(to_dynamodb(wanted)))  # the same number types DynamoDB hands back
        actual = unseal(actual)  # sealed anew on every write: compared opened
        names = sorted(name for name in set(wanted) | set(actual) if wanted.get(name) != actual.get(name))
        if names:
            drift.different[item_key] = names
    drift.missing = sorted(set(expected) - seen)
    drift.extra.sort()
    return drift


def dynamodb_drift() -> list[TableDrift]:
    """Compare both tables with Django (what ``dynamodb_sync --check`` reports)."""
    return [
        _compare(settings.DYNAMODB_TENANT_TABLE, "tenantId", _expected_tenants()),
        _compare(settings.DYNAMODB_TIER_TABLE, "tier", _expected_tiers()),
    ]


def _put(*, table: str, item: dict[str, Any]) -> None:
    try:
        _client().put_item(TableName=table, Item=to_dynamodb(item))
    except TRANSIENT_AWS_ERRORS as error:
        raise SyncUnavailable(f"DynamoDB is unreachable ({error.__class__.__name__}).") from error


def dynamodb_repair(drifts: list[TableDrift]) -> dict[str, int]:
    """Make DynamoDB match Django: write missing and different items (Django's current row, whatever
    version DynamoDB holds), delete items Django does not know."""
    counts = {"written": 0, "deleted": 0}
    for drift in drifts:
        is_tenant = drift.key == "tenantId"
        for item_key in [*drift.missing, *drift.different]:
            if is_tenant:
                tenant = Tenant.objects.filter(pk=item_key).first()
                item = tenant_item(tenant) if tenant else None
            else:
                tier = Tier.objects.filter(name=item_key).prefetch_related("variables", "pipeline_steps").first()
                item = tier_item(tier) if tier else None
            if item is None:
                continue
            _put(table=drift.table, item=item)
            model = Tenant if is_tenant else Tier
            lookup = {"pk": item_key} if is_tenant else {"name": item_key}
            model.objects.filter(**lookup, synced_version__lt=item["version"]).update(synced_version=item["version"])
            counts["written"] += 1
        for item_key in drift.extra:
            _delete(table=drift.table, key={drift.key: item_key})
            counts["deleted"] += 1
    return counts


# --- Import (the original's tier mapping table → Django, once) ----------------------------------------


def _variable_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, set):
        value = sorted(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def tiers_import_from_dynamodb(*, overwrite: bool = False) -> dict[str, list[str]]:
    """Load the tier mapping table into Django. Tiers that already exist are skipped (unless
    ``overwrite``), so running it again changes nothing."""
    from tenants.services.tiers import tier_upsert

    result: dict[str, list[str]] = {"created": [], "updated": [], "skipped": [], "invalid": []}
    for item in map(unseal, _scan(settings.DYNAMODB_TIER_TABLE)):
        name = str(item.get("tier", ""))
        if not name:
            continue
        exists = Tier.objects.filter(name=name).exists()
        if exists and not overwrite:
            result["skipped"].append(name)
            continue
        variables = {key: _variable_text(value) for key, value in item.items() if key not in TIER_ITEM_RESERVED}
        builders = item.get("allowedBuilders")  # absent from the original's items: CODE_BUILD only
        try:
            tier_upsert(
                name=name,
                provision_project=str(item.get("jobName", "")),
                deprovision_project=str(item.get("deprovisionJobName", "")),
                update_project=str(item.get("updateJobName", "")),
                suspend_project=str(item.get("suspendJobName", "")),
                resume_project=str(item.get("resumeJobName", "")),
                allowed_builders=sorted(map(str, builders)) if isinstance(builders, list | set) else None,
                variables={key: (value, VariableType.PLAINTEXT) for key, value in variables.items()},
                replace_variables=True,
            )
        except ValueError as error:
            result["invalid"].append(f"{name}: {error}")
            continue
        except ApplicationError as error:
            result["invalid"].append(f"{name}: {error.message}")
            continue
        result["updated" if exists else "created"].append(name)
    return result


def tenant_resync(*, tenant: Tenant, actor_user: Any) -> str:
    """Staff action: write the tenant's item again now (a version bump, so the conditional write wins
    over whatever DynamoDB holds). Recorded on the timeline with the staff user."""
    from tenants.models import HistoryKind
    from tenants.services.history import history_record

    with transaction.atomic():
        Tenant.objects.filter(pk=tenant.pk).update(version=F("version") + 1)
        tenant.refresh_from_db(fields=["version", "synced_version"])
        history_record(
            tenant=tenant,
            kind=HistoryKind.STAFF_ACTION,
            summary=f"DynamoDB resync requested (version {tenant.version})",
            details={"version": tenant.version, "synced_version": tenant.synced_version},
            actor_user=actor_user,
        )
        tenant_sync_schedule(tenant_id=tenant.pk)
    return f"{tenant.key}: DynamoDB write of version {tenant.version} scheduled."
