"""Reads for the tenant lifecycle."""

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet

from orchestrator.errors import NotFoundError
from tenants.models import Build, BuildPurpose, PipelineOperation, PipelineRun, PipelineStep, StepRun, Tenant, Tier


def tier_project_names() -> set[str]:
    """Every build project the tier mapping refers to (provisioning, deprovisioning and the operations)."""
    names: set[str] = set()
    fields = ("provision_project", "deprovision_project", "update_project", "suspend_project", "resume_project")
    for projects in Tier.objects.values_list(*fields):
        names.update(name for name in projects if name)
    return names


def tier_get(*, name: str) -> Tier | None:
    """The tier and its variables (one query each), or None. ``has_provision_pipeline`` says whether it
    provisions through a pipeline (answered in the same query: the provisioning handler asks it per event)."""
    provision_steps = PipelineStep.objects.filter(tier=OuterRef("pk"), operation=PipelineOperation.PROVISION)
    return (
        Tier.objects.filter(name=name)
        .annotate(has_provision_pipeline=Exists(provision_steps))
        .prefetch_related("variables")
        .first()
    )


# --- Staff portal and API reads ------------------------------------------------------------------


def tenant_search(queryset: QuerySet[Tenant], term: str) -> QuerySet[Tenant]:
    """Tenants whose id, key or name contains ``term`` (any case), or with a contact whose email is ``term``.

    The email is matched inside the stored document (JSON containment on PostgreSQL, text match elsewhere)
    and only for terms that look like an email, so ordinary searches never scan the documents.
    """
    term = term.strip()
    if not term:
        return queryset
    match = Q(id__icontains=term) | Q(key__icontains=term) | Q(name__icontains=term)
    if "@" in term:
        if connection.vendor == "postgresql":
            match |= Q(document__contacts__contains=[{"email": term}])
        else:
            match |= Q(document__icontains=f'"{term}"')
    return queryset.filter(match)


def tenant_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Tenant]:
    """Tenants, newest first, filtered by status, tier and a search term."""
    filters = filters or {}
    queryset = Tenant.objects.order_by("-created_at", "-id")
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("tier"):
        queryset = queryset.filter(tier=filters["tier"])
    if filters.get("search"):
        queryset = tenant_search(queryset, filters["search"])
    return queryset


def tenant_get(*, pk: str) -> Tenant:
    tenant = Tenant.objects.filter(pk=pk).first()
    if tenant is None:
        raise NotFoundError("No such tenant.")
    return tenant


def tenant_get_by_id_or_key(*, id_or_key: str) -> Tenant:
    tenant = Tenant.objects.filter(Q(pk=id_or_key) | Q(key=id_or_key)).first()
    if tenant is None:
        raise NotFoundError(f"No tenant with id or key {id_or_key!r}.")
    return tenant


def tier_list() -> QuerySet[Tier]:
    return Tier.objects.order_by("name").prefetch_related("variables")


def tier_get_by_name(*, name: str) -> Tier:
    tier = tier_get(name=name)
    if tier is None:
        raise NotFoundError("No such tier.")
    return tier


def build_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Build]:
    """Builds, newest first (environment deferred), filtered by tenant, status and purpose."""
    filters = filters or {}
    queryset = Build.objects.annotate(tenant_key=F("tenant__key")).defer("environment").order_by("-started_at", "-id")
    for name in ("status", "purpose"):
        if filters.get(name):
            queryset = queryset.filter(**{name: filters[name]})
    if filters.get("tenant"):
        queryset = queryset.filter(tenant_id=filters["tenant"])
    return queryset


def build_get(*, pk: int) -> Build:
    build = Build.objects.annotate(tenant_key=F("tenant__key")).filter(pk=pk).first()
    if build is None:
        raise NotFoundError("No such build.")
    return build


def tenant_provisioning_requested_at(*, tenant: Tenant) -> datetime:
    """When the tenant's provisioning was asked for: the event of its first provisioning build was received
    (its row's creation if no event started one, e.g. a build started by staff)."""
    received = (
        Build.objects.filter(tenant=tenant, purpose=BuildPurpose.PROVISION, event__isnull=False)
        .order_by("started_at", "pk")
        .values_list("event__received_at", flat=True)
        .first()
    )
    return received or tenant.created_at


def tenant_pipeline_runs(*, tenant: Tenant) -> QuerySet[PipelineRun]:
    """The tenant's runs, newest first, with their step runs (and who decided them)."""
    steps = StepRun.objects.select_related("decided_by").order_by("position")
    runs = PipelineRun.objects.filter(tenant=tenant).order_by("-created_at", "-id")
    return runs.prefetch_related(Prefetch("step_runs", queryset=steps))


def tier_with_pipelines_get(*, name: str) -> Tier:
    tier = Tier.objects.filter(name=name).prefetch_related("pipeline_steps").first()
    if tier is None:
        raise NotFoundError("No such tier.")
    return tier
