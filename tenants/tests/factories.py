import uuid

import factory

from tenants.models import (
    Build,
    BuildPurpose,
    PipelineOperation,
    PipelineStep,
    Tenant,
    TenantStatus,
    Tier,
    TierVariable,
    VariableType,
)


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    name = factory.Sequence(lambda n: f"TIER{n}")
    provision_project = factory.LazyAttribute(lambda o: f"orchestrator-{o.name.lower()}-provision")
    deprovision_project = factory.LazyAttribute(lambda o: f"orchestrator-{o.name.lower()}-deprovision")
    description = "test tier"


class TierVariableFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TierVariable

    tier = factory.SubFactory(TierFactory)
    name = factory.Sequence(lambda n: f"VAR_{n}")
    value = "value"
    type = VariableType.PLAINTEXT


def tenant_document(tenant_id: str, key: str) -> dict:
    return {
        "id": tenant_id,
        "key": key,
        "name": f"{key.title()} Inc",
        "contacts": [{"email": f"ops@{key}.example", "firstName": "Ada", "lastName": "L", "isPrimary": True}],
    }


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    key = factory.Sequence(lambda n: f"tenant{n}")
    name = factory.LazyAttribute(lambda o: f"{o.key.title()} Inc")
    document = factory.LazyAttribute(lambda o: tenant_document(o.id, o.key))
    tier = "BASIC"
    plan = factory.LazyAttribute(lambda o: {"id": "plan-basic", "tier": o.tier, "sizeConfig": {"MAX_USERS": "50"}})
    builder_config = factory.LazyFunction(
        lambda: {"type": "CODE_BUILD", "config": {"environmentOverride": {"secret": "s3cr3t", "context": "ctx"}}}
    )
    status = TenantStatus.PENDING_PROVISION


class BuildFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Build

    tenant = factory.SubFactory(TenantFactory)
    purpose = BuildPurpose.PROVISION
    attempt = 1
    builder_type = "CODE_BUILD"
    project = "orchestrator-basic-provision"
    idempotency_token = factory.LazyAttribute(lambda o: f"{o.tenant.pk}:{o.purpose}:{o.attempt}")
    build_id = factory.LazyFunction(lambda: f"orchestrator-basic-provision:{uuid.uuid4()}")
    arn = factory.LazyAttribute(lambda o: f"arn:aws:codebuild:us-east-1:123456789012:build/{o.build_id}")


class PipelineStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PipelineStep

    tier = factory.SubFactory(TierFactory)
    operation = PipelineOperation.PROVISION
    position = factory.Sequence(lambda n: n + 1)
    name = factory.LazyAttribute(lambda o: f"step-{o.position}")
    kind = "approval"
    config = factory.LazyFunction(dict)
    timeout_seconds = 3600
    max_attempts = 1
    backoff_seconds = 1


def local_build_step(*, tier: Tier, position: int = 1, **fields: object) -> PipelineStep:
    """A build step running the demo script on the LOCAL builder."""
    config = {"project": "demo/build.sh provision", "builders": ["LOCAL"]}
    return PipelineStepFactory(tier=tier, position=position, name="build", kind="build", config=config, **fields)


def pipeline_operator():
    """Read-only staff who may also approve and reject steps, and redrive and cancel runs."""
    from django.contrib.auth.models import Permission

    from orchestrator.tests.factories import staff_user

    user = staff_user("read_only")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="tenants", codename__in=["approve_pipeline_step", "manage_pipeline_run"]
        )
    )
    return type(user).objects.get(pk=user.pk)  # permissions are cached on the instance
