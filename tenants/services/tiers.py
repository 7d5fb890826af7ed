"""Writes for the tier mapping.

Every saved or deleted ``Tier`` / ``TierVariable`` (here, in the admin, anywhere) reaches DynamoDB through
the receivers in ``tenants.receivers`` → ``tenants.services.sync`` (version bump, write after commit).
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from orchestrator.errors import ConflictError
from tenants.models import Tenant, TenantStatus, Tier, TierVariable, VariableType
from tenants.services.build_policy import tier_validate


@transaction.atomic
def tier_upsert(
    *,
    name: str,
    provision_project: str,
    deprovision_project: str = "",
    description: str | None = None,
    allowed_builders: list[str] | None = None,
    variables: dict[str, tuple[str, str]] | None = None,
    replace_variables: bool = False,
    create_only: bool = False,
) -> tuple[Tier, bool]:
    """Create or update a tier and its variables (``{name: (value, type)}``). Returns (tier, changed).

    ``create_only`` leaves an existing tier and existing variables alone and only adds what is missing
    (what ``seed_demo`` needs to be idempotent without clobbering staff edits). ``allowed_builders`` None
    keeps the tier's (a new tier: CODE_BUILD only). Invalid variable names raise ``ValueError``; a tier
    its builders do not allow (``build_policy.tier_validate``: a LOCAL tier's commands and variable names)
    raises ``ApplicationError`` with field errors and changes nothing. Saving schedules the DynamoDB write
    after commit.
    """
    tier = Tier.objects.select_for_update().filter(name=name).first()
    changed = False
    if tier is None:
        tier = Tier.objects.create(
            name=name,
            provision_project=provision_project,
            deprovision_project=deprovision_project,
            description=description or "",
            **({"allowed_builders": allowed_builders} if allowed_builders is not None else {}),
        )
        changed = True
    elif not create_only:
        wanted = {"provision_project": provision_project, "deprovision_project": deprovision_project}
        if description is not None:
            wanted["description"] = description
        if allowed_builders is not None:
            wanted["allowed_builders"] = allowed_builders
        if any(getattr(tier, attribute) != value for attribute, value in wanted.items()):
            for attribute, value in wanted.items():
                setattr(tier, attribute, value)
            tier.save()
            changed = True

    existing = {variable.name: variable for variable in tier.variables.all()}
    for var_name, (value, var_type) in (variables or {}).items():
        var_type = var_type or VariableType.PLAINTEXT
        current = existing.get(var_name)
        if current is None:
            variable = TierVariable(tier=tier, name=var_name, value=value, type=var_type)
            try:
                variable.full_clean(exclude=["tier"])
            except ValidationError as error:
                raise ValueError(f"variable {var_name!r}: {'; '.join(error.messages)}") from None
            variable.save()
            changed = True
        elif not create_only and (current.value != value or current.type != var_type):
            current.value, current.type = value, var_type
            current.save()
            changed = True
    if replace_variables and not create_only:
        stale = [var_name for var_name in existing if var_name not in (variables or {})]
        if stale:
            for variable in TierVariable.objects.filter(tier=tier, name__in=stale):
                variable.delete()  # one by one: each delete bumps the tier's version (receivers)
            changed = True
    tier.refresh_from_db()
    tier_validate(tier=tier)  # the whole saved state; raising rolls this transaction back
    return tier, changed


@transaction.atomic
def tier_delete(*, tier: Tier) -> None:
    """Delete a tier (its DynamoDB item is deleted after commit, by ``tenants.receivers``).

    Refused while tenants that are not inactive use it: their retries and deprovisioning need its projects.
    """
    in_use = Tenant.objects.filter(tier=tier.name).exclude(status=TenantStatus.INACTIVE).count()
    if in_use:
        raise ConflictError(
            f"{in_use} tenant(s) still use tier {tier.name}; deprovision them first.", code="tier_in_use"
        )
    tier.delete()
