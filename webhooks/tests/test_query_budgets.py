"""Statements per tenant of a TENANT_DEPLOYMENT: the chain written, its four steps sent one after the other
against a real receiver (tasks eager), the tenant made ACTIVE and DEPLOYMENT_SUCCESS put in the outbox. The
budget is per tenant and must not grow with the number of tenants deployed. Lower it when a change saves
statements; never raise it to make a change pass."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.models import Tenant, TenantStatus
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.tests.factories import DeployingTenantFactory, WebhookEndpointFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]

# The event row, the chain's deliveries and history, four steps each with its attempt, the ACTIVE transition,
# the outbox row and the DynamoDB write (101 before issue #17).
DEPLOYMENT = 85


def test_a_deployment_costs_a_constant_number_of_statements_per_tenant(receiver, run_deployment):
    # given a subscriber and deploying tenants (one chain run first, so nothing is counted once per process)
    base = receiver.url("")
    WebhookEndpointFactory(url=receiver.url("/subscriber"))
    run_deployment(DeployingTenantFactory(), base=base)
    single, batch = DeployingTenantFactory(), DeployingTenantFactory.create_batch(4)

    # when one tenant's deployment event is handled, then four tenants'
    with CaptureQueriesContext(connection) as one:
        run_deployment(single, base=base)
    with CaptureQueriesContext(connection) as four:
        for tenant in batch:
            run_deployment(tenant, base=base)

    # then every tenant is active with every step delivered, within the per-tenant budget
    assert Tenant.objects.filter(status=TenantStatus.ACTIVE).count() == 6
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()
    assert len(one) <= DEPLOYMENT, f"one deployment cost {len(one)} statements; the budget is {DEPLOYMENT}"
    assert len(four) <= 4 * len(one), f"four deployments cost {len(four)}, more than four times one ({len(one)})"
