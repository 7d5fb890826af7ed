"""Statements per tenant for each lifecycle handler, run as the worker runs them (a task message's events claimed
together, each handled in its own transaction, the build start and the DynamoDB write after commit). The budget
is per tenant and must not grow with the number of tenants in a batch: a batch of four costs four times one
tenant's statements plus nothing (the claim is shared). Lower a budget when a change saves statements; never
raise one to make a change pass."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devstack.receivers import Receiver
from events.catalogue import DetailType
from events.intake.envelope import envelope_validate
from events.intake.store import events_store
from events.services import events_run
from tenants.models import Build, Tenant, TenantStatus
from tenants.tests.conftest import envelope, outcome_detail, provisioning_detail

pytestmark = [pytest.mark.django_db(transaction=True)]

# The statements one tenant costs in each handler, measured when the budgets were set (issue #17).
PROVISIONING = 21  # handler, finish; build started after commit; DynamoDB write (was 33)
SUCCESS = 22  # handler, transition, outbox row, finish; DynamoDB write (was 34)
FAILURE = 41  # handler, transition, the control plane's failure callback sent, tenant.provision_failed; DynamoDB write
DEPROVISIONING = 21  # handler, finish; build started after commit; DynamoDB write (was 33)
# What a batch shares, whatever its size: the claim's transaction (BEGIN, lock, UPDATE, INSERT, COMMIT).
CLAIM = 5


def stored(bodies: list[dict]) -> list[int]:
    """The events stored as the intake stores them, not processed yet."""
    pks = events_store([envelope_validate(body) for body in bodies])
    assert None not in pks
    return [pk for pk in pks if pk is not None]


def statements_of(event_pks: list[int]) -> int:
    """Statements the worker sends to handle these events as one task message; every event must succeed."""
    with CaptureQueriesContext(connection) as captured:
        outcomes = events_run(event_pks=event_pks)
    assert [outcome.outcome for outcome in outcomes] == ["succeeded"] * len(event_pks), outcomes
    return len(captured)


def provisioned(count: int, *, prefix: str) -> list[Tenant]:
    """Tenants whose provisioning build has started (their events processed, not counted)."""
    keys = [f"{prefix}-{number}" for number in range(count)]
    statements_of(stored([envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(key=key)) for key in keys]))
    return list(Tenant.objects.filter(key__in=keys).order_by("key"))


def outcomes(tenants: list[Tenant], *, succeeding: str, control_plane: str = "http://127.0.0.1:9") -> list[int]:
    """Their builds' outcome events, stored; a failure is reported to the control plane at ``control_plane``."""
    builds = {build.tenant_id: build.build_id for build in Build.objects.filter(tenant__in=tenants)}
    detail_type = (
        DetailType.TENANT_PROVISIONING_SUCCESS if succeeding == "1" else DetailType.TENANT_PROVISIONING_FAILURE
    )
    return stored(
        [
            envelope(
                detail_type,
                outcome_detail(
                    tenant.pk, builds[tenant.pk], succeeding=succeeding, API_ENDPOINT=f"{control_plane}/webhook"
                ),
            )
            for tenant in tenants
        ]
    )


def assert_within(*, one: int, four: int, budget: int) -> None:
    assert one <= budget + CLAIM, f"one tenant cost {one} statements; the budget is {budget} + {CLAIM}"
    assert four - CLAIM <= 4 * (one - CLAIM), f"four tenants cost {four}, more than four times one ({one})"


def test_provisioning_costs_a_constant_number_of_statements_per_tenant(codebuild_tier):
    # given provisioning events for one tenant and for four (the tier read, the claim warmed up by a first one)
    provisioned(1, prefix="warm")
    single = stored([envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(key="single"))])
    batch = stored([envelope(DetailType.TENANT_PROVISIONING, provisioning_detail(key=f"b-{n}")) for n in range(4)])

    # when the worker handles each as one task message
    one, four = statements_of(single), statements_of(batch)

    # then every tenant's build started, within the per-tenant budget
    assert Tenant.objects.filter(status=TenantStatus.PROVISIONING).count() == 6
    assert Build.objects.exclude(build_id="").count() == 6
    assert_within(one=one, four=four, budget=PROVISIONING)


def test_a_provisioning_success_costs_a_constant_number_of_statements_per_tenant(codebuild_tier):
    # given tenants whose builds started
    single, batch = (
        outcomes(provisioned(1, prefix="s"), succeeding="1"),
        outcomes(provisioned(4, prefix="b"), succeeding="1"),
    )

    # when their builds' success events are handled
    one, four = statements_of(single), statements_of(batch)

    # then every tenant is deploying, within the per-tenant budget
    assert Tenant.objects.filter(status=TenantStatus.DEPLOYING).count() == 5
    assert_within(one=one, four=four, budget=SUCCESS)


def test_a_provisioning_failure_costs_a_constant_number_of_statements_per_tenant(codebuild_tier):
    # given tenants whose builds started, and the control plane listening for failures
    control_plane = Receiver()
    try:
        single = outcomes(provisioned(1, prefix="s"), succeeding="0", control_plane=control_plane.url(""))
        batch = outcomes(provisioned(4, prefix="b"), succeeding="0", control_plane=control_plane.url(""))

        # when their builds' failure events are handled
        one, four = statements_of(single), statements_of(batch)
    finally:
        control_plane.close()

    # then every tenant failed and the control plane heard of each, within the per-tenant budget
    assert Tenant.objects.filter(status=TenantStatus.PROVISION_FAILED).count() == 5
    assert control_plane.paths() == ["/webhook"] * 5
    assert_within(one=one, four=four, budget=FAILURE)


def test_deprovisioning_costs_a_constant_number_of_statements_per_tenant(codebuild_tier):
    # given active tenants
    tenants = provisioned(5, prefix="d")
    Tenant.objects.filter(pk__in=[tenant.pk for tenant in tenants]).update(status=TenantStatus.ACTIVE)
    events = stored(
        [envelope(DetailType.TENANT_DEPROVISIONING, provisioning_detail(tenant_id=t.pk, key=t.key)) for t in tenants]
    )

    # when their deprovisioning events are handled, one alone and four together
    one, four = statements_of(events[:1]), statements_of(events[1:])

    # then every tenant is deprovisioning, within the per-tenant budget
    assert Tenant.objects.filter(status=TenantStatus.DEPROVISIONING).count() == 5
    assert_within(one=one, four=four, budget=DEPROVISIONING)
