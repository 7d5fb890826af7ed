"""Reads for the tenant lifecycle."""

from tenants.models import Tier


def tier_project_names() -> set[str]:
    """Every build project the tier mapping refers to (provisioning and deprovisioning)."""
    names: set[str] = set()
    for provision, deprovision in Tier.objects.values_list("provision_project", "deprovision_project"):
        names.update(name for name in (provision, deprovision) if name)
    return names
