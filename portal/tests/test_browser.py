"""The staff portal in a real browser: headless Chromium (Debian's package) driven by Playwright.

An operator opens a tenant whose deployment callback failed against a live receiver on 127.0.0.1, sees
the failure in the timeline, clicks "Retry failed callbacks" and, after a reload, sees the delivery
succeed; a read-only user sees no action buttons. Screenshots go to the test artifacts folder.

Skips (with the reason) when the ``playwright`` package or ``/usr/bin/chromium`` is missing (the ``browser``
fixture, ``devstack``); never downloads a browser.
"""

import json
import urllib.request
import uuid

import pytest
from django.utils import timezone

from devstack.browser import loopback_only
from devstack.receivers import Reply
from events.catalogue import DetailType
from events.samples import sample_envelope
from orchestrator.tests.factories import PASSWORD, staff_user
from portal.tests.factories import seed_dashboard_activity
from portal.tests.test_charts import NEEDS_PERCENTILES
from tenants.models import TenantStatus
from webhooks.models import DeliveryStatus, DeliveryStep, WebhookDelivery
from webhooks.tests.factories import TenantFactory, deployment_detail

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(browser, live_server, user):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")
    expect(page.locator("#portal-dashboard")).to_be_visible()
    return page


def send_deployment_event(live_server, tenant, base: str) -> None:
    """TENANT_DEPLOYMENT through the real intake over HTTP; the chain runs in the server (eager tasks)."""
    body = sample_envelope(DetailType.TENANT_DEPLOYMENT)
    body["id"] = str(uuid.uuid4())
    body["detail"] = deployment_detail(tenant, base)
    request = urllib.request.Request(
        f"{live_server.url}/api/events/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-api-key": "test-intake-key"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202


@pytest.fixture
def failed_deployment(aws, live_server, receiver, settings):
    """A tenant whose control-plane webhook answered 500 (no automatic retries), then 204 from now on."""
    settings.WEBHOOK_RETRY_SCHEDULE = []
    settings.WEBHOOK_RETRY_WINDOW = 0
    receiver.script("/webhook", Reply(500, body=b"control plane unavailable"))
    tenant = TenantFactory(key="acme", name="Acme Inc", status=TenantStatus.DEPLOYING)
    send_deployment_event(live_server, tenant, receiver.url(""))
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOY_FAILED
    return tenant


def test_operator_retries_a_failed_callback_and_sees_it_succeed(
    browser, live_server, receiver, failed_deployment, artifacts_dir
):
    tenant = failed_deployment
    page = log_in(browser, live_server, staff_user("operator", username="olivia"))
    expect(page.locator('[data-figure="failed-deliveries"]')).to_have_text("1")
    page.screenshot(path=str(artifacts_dir / "portal-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/tenants/tenant/")
    expect(page.locator("#result_list [data-status=DEPLOY_FAILED]")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "portal-tenants.png"), full_page=True)

    # the failure is in the tenant's timeline
    page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")
    failure = page.locator("li.entry.tone-red[data-kind=callback]", has_text="Control-plane webhook")
    expect(failure).to_contain_text("failed for good")
    expect(failure).to_contain_text("HTTP 500")
    expect(page.locator("#tenant-summary [data-status=DEPLOY_FAILED]")).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "portal-tenant-failed.png"), full_page=True)

    # click retry; the receiver answers 204 now
    with page.expect_navigation():
        page.click("button[data-action=retry_callbacks]")
    expect(page.locator("ul.messagelist")).to_contain_text("queued")
    page.reload()

    success = page.locator("li.entry.tone-green[data-kind=callback]", has_text="Control-plane webhook")
    expect(success).to_contain_text("delivered (HTTP 204)")
    expect(page.locator("li.entry[data-kind=staff_action]")).to_contain_text("by olivia")
    expect(page.locator("#tenant-summary [data-status=ACTIVE]")).to_be_visible()
    expect(page.locator("button[data-action=retry_callbacks]")).to_have_count(0)
    page.screenshot(path=str(artifacts_dir / "portal-tenant.png"), full_page=True)
    page.context.close()

    delivery = WebhookDelivery.objects.get(tenant=tenant, step=DeliveryStep.CONTROL_PLANE_WEBHOOK)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [request.path for request in receiver.requests].count("/webhook") == 2


def test_read_only_staff_see_the_story_but_no_action_buttons(browser, live_server, failed_deployment, artifacts_dir):
    tenant = failed_deployment
    page = log_in(browser, live_server, staff_user("read_only", username="rita"))

    page.goto(f"{live_server.url}/admin/tenants/tenant/{tenant.pk}/change/")

    expect(page.locator("li.entry.tone-red[data-kind=callback]")).to_have_count(1)
    expect(page.locator("#tenant-actions button")).to_have_count(0)
    expect(page.locator("#tenant-actions")).to_contain_text("Read-only access")
    page.screenshot(path=str(artifacts_dir / "portal-tenant-read-only.png"), full_page=True)
    page.context.close()


@NEEDS_PERCENTILES
def test_the_dashboard_draws_its_charts_from_the_data(browser, live_server, artifacts_dir):
    # Given events, onboardings and deliveries in and out of the charts' windows
    seeded = seed_dashboard_activity(timezone.now())

    # When staff open the dashboard (nothing may be fetched from another host)
    page = log_in(browser, live_server, staff_user("read_only", username="carla"))
    refused = loopback_only(page.context)
    page.reload()

    # Then the events chart has one line per outcome with the counts of the last hour
    processed = page.locator('#chart-events [data-series="processed"]')
    expect(processed).to_have_attribute("data-total", "5")
    values = [int(value) for value in processed.get_attribute("data-values").split(",")]
    assert len(values) == 60
    assert [value for value in values if value] == [2, 3]  # 30 and 5 minutes ago, in order
    expect(page.locator('#chart-events [data-series="failed"]')).to_have_attribute("data-total", "1")
    expect(page.locator("#chart-events desc")).to_contain_text("Processed 5")
    # onboarding p50/p95 per tier, and deliveries by outcome
    for tier, (p50, p95) in seeded.onboarding.items():
        expect(page.locator(f'#chart-onboarding [data-bar="{tier}-p50"]')).to_have_attribute("data-value", f"{p50:g}")
        expect(page.locator(f'#chart-onboarding [data-bar="{tier}-p95"]')).to_have_attribute("data-value", f"{p95:g}")
    expect(page.locator('#chart-onboarding [data-bar="BASIC-p95"] text.value')).to_have_text("4 m 48 s")
    for status, count in seeded.deliveries.items():
        expect(page.locator(f'#chart-deliveries [data-bar="{status}"]')).to_have_attribute("data-value", str(count))
    # drawn at a readable size, with nothing fetched from elsewhere
    box = page.locator("#chart-events").bounding_box()
    assert box["width"] > 300
    assert box["height"] > 60
    assert refused == []
    page.locator("#portal-charts").screenshot(path=str(artifacts_dir / "portal-dashboard-charts.png"))
    page.screenshot(path=str(artifacts_dir / "portal-dashboard-with-charts.png"), full_page=True)
    page.context.close()
