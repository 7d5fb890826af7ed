"""The tenants' metrics: tenants and builds by status from the database, and how long a real provisioning took
from its event to ACTIVE, per tier."""

from datetime import timedelta

import pytest

from events.catalogue import DetailType
from events.models import OutboxEvent, ReceivedEvent
from orchestrator.tests.scraping import scrape
from tenants.models import Build, BuildPurpose, BuildStatus, Tenant, TenantStatus
from tenants.tests.conftest import envelope, outcome_detail, provisioning_detail
from tenants.tests.factories import BuildFactory, TenantFactory

pytestmark = pytest.mark.django_db

PROVISIONING = "orchestrator_tenant_provisioning_duration_seconds"


def test_tenants_by_status_and_tier_and_builds_by_purpose_and_status(client, settings):
    for status, tier in [
        (TenantStatus.ACTIVE, "BASIC"),
        (TenantStatus.ACTIVE, "BASIC"),
        (TenantStatus.ACTIVE, "PREMIUM"),
        (TenantStatus.PROVISION_FAILED, "BASIC"),
    ]:
        tenant = TenantFactory(status=status, tier=tier)
        BuildFactory(
            tenant=tenant, status=BuildStatus.SUCCEEDED if status == TenantStatus.ACTIVE else BuildStatus.FAILED
        )
    BuildFactory(purpose=BuildPurpose.DEPROVISION, status=BuildStatus.IN_PROGRESS)  # its tenant: pending, BASIC

    metrics = scrape(client, settings)

    assert metrics.value("orchestrator_tenants", status="ACTIVE", tier="BASIC") == 2
    assert metrics.value("orchestrator_tenants", status="ACTIVE", tier="PREMIUM") == 1
    assert metrics.value("orchestrator_tenants", status="PROVISION_FAILED", tier="BASIC") == 1
    assert metrics.value("orchestrator_tenants", status="PENDING_PROVISION", tier="BASIC") == 1
    assert metrics.value("orchestrator_builds", purpose="provision", status="SUCCEEDED") == 3
    assert metrics.value("orchestrator_builds", purpose="provision", status="FAILED") == 1
    assert metrics.value("orchestrator_builds", purpose="deprovision", status="IN_PROGRESS") == 1


def test_the_gauges_are_read_again_only_after_the_refresh_interval(client, settings, django_assert_num_queries):
    # Given a scrape that read the tenants (no caching)
    settings.METRICS_DATABASE_REFRESH_SECONDS = 0
    TenantFactory(status=TenantStatus.ACTIVE, tier="GOLD")
    assert scrape(client, settings).value("orchestrator_tenants", status="ACTIVE", tier="GOLD") == 1

    # When a tenant is added and the next scrape comes within the refresh interval
    TenantFactory(status=TenantStatus.ACTIVE, tier="GOLD")
    settings.METRICS_DATABASE_REFRESH_SECONDS = 3600
    with django_assert_num_queries(0):
        cached = scrape(client, settings)

    # Then the database was not asked again; once the interval is over, it is
    settings.METRICS_DATABASE_REFRESH_SECONDS = 0
    assert cached.value("orchestrator_tenants", status="ACTIVE", tier="GOLD") == 1
    assert scrape(client, settings).value("orchestrator_tenants", status="ACTIVE", tier="GOLD") == 2


def test_the_time_from_the_provisioning_event_to_active_is_observed_per_tier(
    client, settings, codebuild_tier, send_event
):
    # Given a tenant provisioned on CodeBuild (moto) whose provisioning event arrived ten minutes ago
    settings.WEBHOOK_CHAIN_STEPS = ["subscribers"]  # nobody subscribed: the chain completes at once
    before = scrape(client, settings)
    detail = provisioning_detail()
    tenant_id = detail["tenant"]["id"]
    provisioning = send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    ReceivedEvent.objects.filter(pk=provisioning.pk).update(
        received_at=provisioning.received_at - timedelta(minutes=10)
    )
    build = Build.objects.get(tenant_id=tenant_id)
    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant_id, build.build_id)))
    midway = scrape(client, settings)

    # When its deployment completes
    deployment = OutboxEvent.objects.get(detail_type=DetailType.TENANT_DEPLOYMENT, tenant_id=tenant_id)
    send_event(envelope(DetailType.TENANT_DEPLOYMENT, deployment.detail))

    # Then one onboarding of about ten minutes was observed for its tier, and none before it was ACTIVE
    after = scrape(client, settings)
    assert Tenant.objects.get(pk=tenant_id).status == TenantStatus.ACTIVE
    assert midway.value(f"{PROVISIONING}_count", tier="BASIC") == before.value(f"{PROVISIONING}_count", tier="BASIC")
    assert after.value(f"{PROVISIONING}_count", tier="BASIC") - before.value(f"{PROVISIONING}_count", tier="BASIC") == 1
    seconds = after.value(f"{PROVISIONING}_sum", tier="BASIC") - before.value(f"{PROVISIONING}_sum", tier="BASIC")
    assert 600 <= seconds < 660
    within = {
        le: after.value(f"{PROVISIONING}_bucket", tier="BASIC", le=le)
        - before.value(f"{PROVISIONING}_bucket", tier="BASIC", le=le)
        for le in ("600.0", "900.0")
    }
    assert within == {"600.0": 0, "900.0": 1}
    assert after.value("orchestrator_tenants", status="ACTIVE", tier="BASIC") == 1
