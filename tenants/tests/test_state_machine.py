"""Every status-by-status pair: allowed moves happen (and are recorded), every other one is refused,
recorded and leaves the tenant untouched."""

import itertools

import pytest

from tenants.models import ALLOWED_TRANSITIONS, FAILED_TENANT_STATUSES, HistoryKind, TenantHistory, TenantStatus
from tenants.services.lifecycle import TransitionRefused, tenant_transition
from tenants.signals import tenant_status_changed
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

PAIRS = list(itertools.product(TenantStatus.values, TenantStatus.values))
ALLOWED = [(a, b) for a, b in PAIRS if b in ALLOWED_TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in PAIRS if b not in ALLOWED_TRANSITIONS[a]]


def test_the_table_is_the_issue_s_lifecycle():
    assert set(ALLOWED) == {
        ("PENDING_PROVISION", "PROVISIONING"),
        ("PENDING_PROVISION", "PROVISION_FAILED"),
        ("PROVISIONING", "DEPLOYING"),
        ("PROVISIONING", "PROVISION_FAILED"),
        ("PROVISION_FAILED", "PROVISIONING"),
        ("DEPLOYING", "ACTIVE"),
        ("DEPLOYING", "DEPLOY_FAILED"),
        ("DEPLOY_FAILED", "DEPLOYING"),
        ("ACTIVE", "DEPROVISIONING"),
        ("DEPROVISIONING", "INACTIVE"),
        ("DEPROVISIONING", "DEPROVISION_FAILED"),
        ("DEPROVISION_FAILED", "DEPROVISIONING"),
        ("ACTIVE", "UPDATING"),
        ("UPDATING", "ACTIVE"),
        ("UPDATING", "UPDATE_FAILED"),
        ("UPDATE_FAILED", "UPDATING"),
        ("UPDATE_FAILED", "ACTIVE"),
        ("ACTIVE", "SUSPENDING"),
        ("SUSPENDING", "SUSPENDED"),
        ("SUSPENDING", "SUSPEND_FAILED"),
        ("SUSPEND_FAILED", "SUSPENDING"),
        ("SUSPENDED", "RESUMING"),
        ("SUSPENDED", "DEPROVISIONING"),
        ("RESUMING", "ACTIVE"),
        ("RESUMING", "RESUME_FAILED"),
        ("RESUME_FAILED", "RESUMING"),
    }


def test_every_failure_status_is_retryable_and_every_status_has_a_row():
    assert set(ALLOWED_TRANSITIONS) == set(TenantStatus.values)
    for failed in FAILED_TENANT_STATUSES:
        assert ALLOWED_TRANSITIONS[failed], f"{failed} is a dead end"


@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_allowed_transition_moves_bumps_version_and_signals(source, target):
    tenant = TenantFactory(status=source)
    version = tenant.version
    received = []

    def listener(*, change, **_):
        received.append((change.from_status, change.to_status))

    tenant_status_changed.connect(listener)
    try:
        tenant_transition(tenant=tenant, to=target, reason="because")
    finally:
        tenant_status_changed.disconnect(listener)

    tenant.refresh_from_db()
    assert tenant.status == target
    assert tenant.version == version + 1
    assert received == [(source, target)]
    assert TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.TRANSITION).count() == 1


@pytest.mark.parametrize(("source", "target"), REFUSED)
def test_disallowed_transition_is_refused_recorded_and_changes_nothing(source, target):
    tenant = TenantFactory(status=source, status_reason="before")
    version = tenant.version

    with pytest.raises(TransitionRefused) as error:
        tenant_transition(tenant=tenant, to=target, reason="nope")

    assert "is not an allowed transition" in error.value.message
    tenant.refresh_from_db()
    assert (tenant.status, tenant.status_reason, tenant.version) == (source, "before", version)
    refusal = TenantHistory.objects.get(tenant=tenant)
    assert refusal.kind == HistoryKind.TRANSITION_REFUSED
    assert refusal.details["from"] == source
    assert refusal.details["to"] == target
