"""Writes for the tier mapping.

Staff change tiers through ``tier_create`` / ``tier_update`` / ``tier_delete``, from the API and the admin
alike, so both follow the same rules: a name is taken once and never changes (tenants refer to their tier
by name), a tier in use is not deleted, and a masked value sent back keeps the stored secret.
``tier_upsert`` is the bulk path of the seed and the DynamoDB import.

Every saved or deleted ``Tier`` / ``TierVariable`` reaches DynamoDB through the receivers in
``tenants.receivers`` → ``tenants.services.sync`` (version bump, write after commit).
"""

from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.db import transaction

from orchestrator.errors import ApplicationError, ConflictError
from orchestrator.redaction import MASK
from tenants.models import Tenant, TenantStatus, Tier, TierVariable, VariableType
from tenants.services import build_policy

RENAME_REFUSED = "A tier cannot be renamed (tenants refer to it by name); create a new tier instead."
# A variable as both edges send it: the API's JSON object, the admin's inline form (extra keys are ignored).
VariableRow = Mapping[str, str]


@transaction.atomic
def tier_upsert(
    *,
    name: str,
    provision_project: str,
    deprovision_project: str = "",
    update_project: str | None = None,
    suspend_project: str | None = None,
    resume_project: str | None = None,
    description: str | None = None,
    allowed_builders: list[str] | None = None,
    variables: dict[str, tuple[str, str]] | None = None,
    replace_variables: bool = False,
    create_only: bool = False,
) -> tuple[Tier, bool]:
    """Create or update a tier and its variables (``{name: (value, type)}``). Returns (tier, changed).

    ``create_only`` leaves an existing tier and existing variables alone and only adds what is missing
    (what ``seed_demo`` needs to be idempotent without clobbering staff edits). ``allowed_builders`` None
    keeps the tier's (a new tier: CODE_BUILD only), as None keeps an operation's project (a new tier: none).
    Invalid variable names raise ``ValueError``; a tier its builders do not allow (``build_policy.tier_validate``:
    a LOCAL tier's commands and variable names) raises ``ApplicationError`` with field errors and changes
    nothing. Saving schedules the DynamoDB write after commit.
    """
    operations = {
        field: value
        for field, value in (
            ("update_project", update_project),
            ("suspend_project", suspend_project),
            ("resume_project", resume_project),
        )
        if value is not None
    }
    tier = Tier.objects.select_for_update().filter(name=name).first()
    changed = False
    if tier is None:
        tier = Tier.objects.create(
            name=name,
            provision_project=provision_project,
            deprovision_project=deprovision_project,
            **operations,
            description=description or "",
            **({"allowed_builders": allowed_builders} if allowed_builders is not None else {}),
        )
        changed = True
    elif not create_only:
        wanted: dict[str, object] = {
            "provision_project": provision_project,
            "deprovision_project": deprovision_project,
            **operations,
        }
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
    build_policy.tier_validate(tier=tier)  # the whole saved state; raising rolls this transaction back
    return tier, changed


def tier_validate(*, tier: Tier | None, name: str) -> None:
    """The naming rules, for forms that check before saving: a new tier needs a free name, a tier keeps its own."""
    if tier is None:
        if Tier.objects.filter(name=name).exists():
            message = f"Tier {name} already exists."
            raise ConflictError(message, fields={"name": [message]})
    elif name != tier.name:
        raise ApplicationError(RENAME_REFUSED, code="rename_refused", fields={"name": [RENAME_REFUSED]})


def _variables_by_name(rows: Iterable[VariableRow] | None) -> dict[str, tuple[str, str]] | None:
    if rows is None:
        return None
    return {row["name"]: (row["value"], row.get("type") or VariableType.PLAINTEXT) for row in rows}


def _tier_save(
    *,
    name: str,
    provision_project: str,
    deprovision_project: str,
    description: str,
    allowed_builders: list[str] | None,
    variables: dict[str, tuple[str, str]] | None,
    operations: dict[str, str | None],
) -> Tier:
    """Write the tier; ``variables``, when given, replace its variables. An invalid variable is a 400."""
    try:
        tier, _changed = tier_upsert(
            name=name,
            provision_project=provision_project,
            deprovision_project=deprovision_project,
            description=description,
            allowed_builders=allowed_builders,
            variables=variables,
            replace_variables=variables is not None,
            update_project=operations["update_project"],
            suspend_project=operations["suspend_project"],
            resume_project=operations["resume_project"],
        )
    except ValueError as error:
        raise ApplicationError(str(error), fields={"variables": [str(error)]}) from None
    return tier


@transaction.atomic
def tier_create(
    *,
    name: str,
    provision_project: str,
    deprovision_project: str = "",
    update_project: str | None = None,
    suspend_project: str | None = None,
    resume_project: str | None = None,
    description: str = "",
    allowed_builders: list[str] | None = None,
    variables: Iterable[VariableRow] | None = None,
) -> Tier:
    """A new tier with its variables (``allowed_builders`` None: CODE_BUILD only). Refused (409) when the name
    is taken, with field errors when its builders do not allow it (``build_policy``)."""
    tier_validate(tier=None, name=name)
    return _tier_save(
        name=name,
        provision_project=provision_project,
        deprovision_project=deprovision_project,
        description=description,
        allowed_builders=allowed_builders,
        variables=_variables_by_name(variables),
        operations={
            "update_project": update_project,
            "suspend_project": suspend_project,
            "resume_project": resume_project,
        },
    )


@transaction.atomic
def tier_update(
    *,
    tier: Tier,
    name: str | None = None,
    provision_project: str | None = None,
    deprovision_project: str | None = None,
    update_project: str | None = None,
    suspend_project: str | None = None,
    resume_project: str | None = None,
    description: str | None = None,
    allowed_builders: list[str] | None = None,
    variables: Iterable[VariableRow] | None = None,
) -> Tier:
    """Change what is given (``None`` keeps the current value), so a partial update is a call with less.

    ``variables``, when given, replace the tier's variables; a value equal to the mask (what answers show for
    secret-like values) keeps the stored value. Renaming is refused.
    """
    stored = Tier.objects.select_for_update().get(pk=tier.pk)  # the stored name, not an edited copy's
    if name is not None:
        tier_validate(tier=stored, name=name)
    by_name = _variables_by_name(variables)
    if by_name is not None:
        values = {variable.name: variable.value for variable in stored.variables.all()}
        by_name = {
            var_name: (values[var_name] if value == MASK and var_name in values else value, var_type)
            for var_name, (value, var_type) in by_name.items()
        }
    return _tier_save(
        name=stored.name,
        provision_project=stored.provision_project if provision_project is None else provision_project,
        deprovision_project=stored.deprovision_project if deprovision_project is None else deprovision_project,
        description=stored.description if description is None else description,
        allowed_builders=allowed_builders,
        variables=by_name,
        operations={
            "update_project": update_project,
            "suspend_project": suspend_project,
            "resume_project": resume_project,
        },
    )


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
