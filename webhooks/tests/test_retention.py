"""Retention of the webhooks app: attempts of finished deliveries go after their days; a delivery that may
still send keeps its attempts, and the delivery rows themselves stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from webhooks.models import AttemptOutcome, DeliveryAttempt, DeliveryStatus, DeliveryStep, WebhookDelivery
from webhooks.retention import delivery_attempts_purge
from webhooks.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
CUTOFF = NOW - timedelta(days=30)


def delivery_with_attempts(*, tenant, status: str, started_at, outcomes: list[str]) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(
        dedupe_key=f"test:{status}:{started_at.timestamp()}:{len(outcomes)}",
        tenant=tenant,
        step=DeliveryStep.SUBSCRIBER,
        event_type="tenant.deployed",
        url="http://127.0.0.1:9/hook",
        signing_scheme="standard",
        status=status,
        attempts=len(outcomes),
    )
    for number, outcome in enumerate(outcomes, 1):
        DeliveryAttempt.objects.create(delivery=delivery, number=number, started_at=started_at, outcome=outcome)
    return delivery


def test_attempts_of_finished_deliveries_older_than_the_cutoff_go_and_the_deliveries_stay():
    tenant = TenantFactory()
    old = NOW - timedelta(days=31)
    succeeded = delivery_with_attempts(
        tenant=tenant,
        status=DeliveryStatus.SUCCEEDED,
        started_at=old,
        outcomes=[AttemptOutcome.RETRY, AttemptOutcome.SUCCEEDED],
    )
    failed = delivery_with_attempts(
        tenant=tenant, status=DeliveryStatus.FAILED, started_at=old, outcomes=[AttemptOutcome.FAILED]
    )
    recent = delivery_with_attempts(
        tenant=tenant,
        status=DeliveryStatus.SUCCEEDED,
        started_at=NOW - timedelta(days=29),
        outcomes=[AttemptOutcome.SUCCEEDED],
    )
    retrying = delivery_with_attempts(
        tenant=tenant, status=DeliveryStatus.RETRYING, started_at=old, outcomes=[AttemptOutcome.RETRY]
    )
    pending = delivery_with_attempts(
        tenant=tenant, status=DeliveryStatus.PENDING, started_at=old, outcomes=[AttemptOutcome.INTERRUPTED]
    )

    purged = delivery_attempts_purge(cutoff=CUTOFF)

    assert purged == 3
    remaining = dict(DeliveryAttempt.objects.values_list("delivery_id", "number"))
    assert set(remaining) == {recent.pk, retrying.pk, pending.pk}
    assert WebhookDelivery.objects.count() == 5
    succeeded.refresh_from_db()
    failed.refresh_from_db()
    assert (succeeded.status, succeeded.attempts, failed.attempts) == (DeliveryStatus.SUCCEEDED, 2, 1)
