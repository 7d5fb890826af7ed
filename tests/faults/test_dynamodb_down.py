"""The DynamoDB endpoint goes away: tenant changes still commit in Django, the mirror catches up when it
returns, and ``manage.py dynamodb_sync --check`` finds no drift."""

from urllib.parse import urlsplit

import pytest
from django.db.models import F

from devstack.stack import TcpProxy
from tests.faults.support import DrillSummary, count_statuses, post_event, provisioning_envelope, report, wait_for

pytestmark = pytest.mark.faults

EVENTS = 5


def test_tenant_changes_commit_while_dynamodb_is_down_and_sync_catches_up_without_drift(
    request, make_stack, basic_tier, aws
):
    from events.models import EventStatus
    from tenants.models import Tenant, TenantStatus

    # Given the stack's DynamoDB endpoint behind a proxy, and beat sweeping unsynced rows every 2 s
    dynamodb = urlsplit(aws["dynamodb_url"])
    with TcpProxy(dynamodb.hostname, dynamodb.port) as proxy:
        stack = make_stack(
            extra_env={
                "AWS_ENDPOINT_URL_DYNAMODB": proxy.url,
                "DYNAMODB_SYNC_SWEEP_SECONDS": "2",
                "AWS_CONNECT_TIMEOUT": "1",
                "AWS_READ_TIMEOUT": "2",
            }
        )
        web = stack.start_web(workers=2, threads=4)
        stack.start_worker(queues=["default", "builds", "webhooks"], concurrency=2)
        stack.start_beat()

        # When DynamoDB is unreachable while provisioning events arrive
        proxy.cut()
        envelopes = [provisioning_envelope() for _ in range(EVENTS)]
        ids = [envelope["id"] for envelope in envelopes]
        tenant_ids = [envelope["detail"]["tenant"]["id"] for envelope in envelopes]
        assert [post_event(web.url, envelope) for envelope in envelopes] == [202] * EVENTS
        wait_for(
            lambda: count_statuses(ids).get(EventStatus.PROCESSED, 0) == EVENTS,
            timeout=60,
            what=f"every event processed (now {dict(count_statuses(ids))})",
        )

        # Then the tenant changes committed, and their mirror writes are pending
        tenants = Tenant.objects.filter(pk__in=tenant_ids)
        assert tenants.filter(status=TenantStatus.PROVISIONING).count() == EVENTS
        assert tenants.filter(synced_version__lt=F("version")).count() == EVENTS
        check_while_down = stack.manage("dynamodb_sync", "--check", check=False)
        assert check_while_down.returncode != 0

        # When DynamoDB returns, the sync catches up and the drift check is clean
        proxy.restore()
        wait_for(
            lambda: not tenants.filter(synced_version__lt=F("version")).exists(),
            timeout=90,
            what="every tenant synced to DynamoDB",
        )
        check = stack.manage("dynamodb_sync", "--check", check=False)

    assert check.returncode == 0, check.stdout + check.stderr
    assert "DynamoDB matches Django" in check.stdout
    summary = DrillSummary("dynamodb down", sent=EVENTS, accepted=EVENTS, processed=EVENTS)
    summary.notes.append(f"{EVENTS} tenants committed while DynamoDB was down; synced after; --check: no drift")
    report(request, summary)
