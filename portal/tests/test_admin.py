"""Staff portal in the admin: dashboard, tenant list at scale, the tenant page's timeline and action
buttons, POST-only permission-checked actions recorded with the staff user, and the staff groups."""

import importlib
import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devstack.receivers import Reply
from events.models import EventStatus
from events.tests.factories import ReceivedEventFactory
from orchestrator.staff import OPERATORS_GROUP, READ_ONLY_GROUP, STAFF_APPS, staff_groups_ensure
from orchestrator.tests.factories import staff_user
from tenants.admin import EstimatedCountPaginator
from tenants.models import Build, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.tests.factories import BuildFactory, TenantFactory, TierFactory
from webhooks.models import DeliveryStatus, DeliveryStep, WebhookDelivery
from webhooks.tests.conftest import receiver, run_deployment  # noqa: F401 - fixtures
from webhooks.tests.factories import WebhookEndpointFactory, make_delivery

pytestmark = pytest.mark.django_db


def logged_in(client, level):
    client.user = staff_user(level)
    client.force_login(client.user)
    return client


@pytest.fixture
def operator(client):
    return logged_in(client, "operator")


@pytest.fixture
def read_only(client):
    return logged_in(client, "read_only")


def change_url(tenant):
    return reverse("admin:tenants_tenant_change", args=[tenant.pk])


def action_url(tenant, name):
    return reverse(f"admin:tenants_tenant_{name}", args=[tenant.pk])


def buttons(response) -> list[str]:
    return re.findall(r'data-action="([a-z_]+)"', response.content.decode())


# --- Staff groups -------------------------------------------------------------------------------------


def test_staff_groups_hold_view_permissions_and_operators_the_actions():
    staff_groups_ensure()
    staff_groups_ensure()  # idempotent

    read_only = set(
        Group.objects.get(name=READ_ONLY_GROUP).permissions.values_list("content_type__app_label", "codename")
    )
    operators = set(
        Group.objects.get(name=OPERATORS_GROUP).permissions.values_list("content_type__app_label", "codename")
    )

    assert {app for app, _ in read_only} == set(STAFF_APPS)
    assert all(codename.startswith("view_") for _, codename in read_only)
    assert ("tenants", "view_tenanthistory") in read_only
    assert ("webhooks", "view_deliveryattempt") in read_only
    assert operators - read_only == {
        ("tenants", "retry_provisioning_tenant"),
        ("tenants", "deprovision_tenant"),
        ("tenants", "resync_tenant"),
        ("tenants", "update_tenant"),
        ("tenants", "suspend_tenant"),
        ("events", "replay_receivedevent"),
        ("webhooks", "retry_webhookdelivery"),
    }
    assert not {codename for _, codename in operators} & {"change_tier", "add_tier", "change_webhookendpoint"}


def test_the_data_migration_creates_the_groups_from_the_historical_models():
    # given no groups (as on a fresh database before the migration)
    Group.objects.filter(name__in=[READ_ONLY_GROUP, OPERATORS_GROUP]).delete()
    migration = importlib.import_module("tenants.migrations.0003_staff_permissions_and_groups")
    state = MigrationLoader(connection).project_state(("tenants", "0003_staff_permissions_and_groups"))

    # when the migration's data step runs with the models as they were then
    migration.create_groups(state.apps, None)

    # then both groups exist with their permissions
    operators = Group.objects.get(name=OPERATORS_GROUP).permissions
    assert operators.filter(codename="resync_tenant").exists()
    assert operators.filter(codename="replay_receivedevent").exists()
    assert Group.objects.get(name=READ_ONLY_GROUP).permissions.filter(codename="view_webhookdelivery").exists()


# --- Dashboard ----------------------------------------------------------------------------------------


def test_dashboard_shows_counts_failures_and_links_to_filtered_lists(read_only):
    TenantFactory.create_batch(2, status=TenantStatus.ACTIVE)
    failed = TenantFactory(key="broken", status=TenantStatus.PROVISION_FAILED, status_reason="Unknown tier 'GOLDD'")
    BuildFactory(tenant=failed)  # in progress
    make_delivery(WebhookEndpointFactory(), tenant=failed, status=DeliveryStatus.FAILED, status_reason="HTTP 500")
    ReceivedEventFactory(status=EventStatus.FAILED, last_error="handler exploded")

    response = read_only.get(reverse("admin:index"))

    page = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'data-figure="tenants">3<', page)
    assert re.search(r'data-figure="builds-in-progress">1<', page)
    assert re.search(r'data-figure="failed-deliveries">1<', page)
    assert re.search(r'data-figure="failed-events">1<', page)
    assert re.search(r'data-status-count="ACTIVE">.*?<span class="n">2</span>', page, re.S)
    assert "Unknown tier &#x27;GOLDD&#x27;" in page
    assert "handler exploded" in page
    assert "HTTP 500" in page
    # every card and status links to a list that opens (filters the admin accepts)
    links = set(re.findall(r'href="(/admin/[^"]+\?[^"]+)"', page))
    assert len(links) == 3 + len(TenantStatus.choices)
    for link in links:
        assert read_only.get(link.replace("&amp;", "&")).status_code == 200, link


def test_dashboard_is_not_shown_without_the_view_permission(client):
    user = staff_user("read_only")
    user.groups.clear()
    client.force_login(user)

    assert "portal-dashboard" not in client.get(reverse("admin:index")).content.decode()


# --- Tenant list --------------------------------------------------------------------------------------


def test_tenant_list_badges_filters_and_search_by_contact_email(read_only):
    TierFactory(name="GOLD")
    TenantFactory(key="acme", tier="GOLD", status=TenantStatus.ACTIVE)
    TenantFactory(key="globex", status=TenantStatus.DEPLOY_FAILED)
    url = reverse("admin:tenants_tenant_changelist")

    page = read_only.get(url).content.decode()
    by_tier = read_only.get(url, {"tier": "GOLD"})
    by_status = read_only.get(url, {"status__exact": "DEPLOY_FAILED"})
    by_email = read_only.get(url, {"q": "ops@globex.example"})

    assert 'class="badge badge-red" data-status="DEPLOY_FAILED"' in page
    assert 'class="badge badge-green" data-status="ACTIVE"' in page
    assert [t.key for t in by_tier.context["cl"].result_list] == ["acme"]
    assert [t.key for t in by_status.context["cl"].result_list] == ["globex"]
    assert [t.key for t in by_email.context["cl"].result_list] == ["globex"]
    assert "action-checkbox" not in page  # read-only staff get no bulk actions


@pytest.mark.parametrize("rows", [5, 120])
def test_tenant_list_query_budget_is_constant(read_only, django_assert_max_num_queries, rows):
    TierFactory(name="BASIC")
    Tenant.objects.bulk_create(
        [Tenant(id=f"t-{rows}-{n}", key=f"k-{rows}-{n}", name=f"T {n}", tier="BASIC") for n in range(rows)]
    )

    with django_assert_max_num_queries(8):  # session, user, permissions (2), tiers, count, page, ...
        response = read_only.get(reverse("admin:tenants_tenant_changelist"))

    assert response.status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the estimate reads PostgreSQL's statistics")
def test_tenant_list_on_a_big_table_counts_from_statistics_not_count_star(read_only, monkeypatch):
    monkeypatch.setattr(EstimatedCountPaginator, "EXACT_BELOW", 50)
    Tenant.objects.bulk_create([Tenant(id=f"big-{n}", key=f"big-{n}", tier="BASIC") for n in range(80)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tenants_tenant")

    with CaptureQueriesContext(connection) as unfiltered:
        response = read_only.get(reverse("admin:tenants_tenant_changelist"))
    with CaptureQueriesContext(connection):
        filtered_response = read_only.get(reverse("admin:tenants_tenant_changelist"), {"status__exact": "ACTIVE"})

    assert response.status_code == filtered_response.status_code == 200
    sql = [q["sql"].upper() for q in unfiltered.captured_queries]
    assert not any("COUNT(" in q and "TENANTS_TENANT" in q for q in sql)
    assert any("RELTUPLES" in q for q in sql)
    assert response.context["cl"].result_count == 80
    assert filtered_response.context["cl"].result_count == 0  # a quick exact count when filtered
    with connection.cursor() as cursor:  # the count's statement timeout did not outlive it
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


# --- Tenant page: timeline ----------------------------------------------------------------------------


def story(tenant, entries: int):
    """A tenant's history of ``entries`` rows referring to events, builds and deliveries."""
    endpoint = WebhookEndpointFactory()
    rows = []
    for n in range(entries):
        kind = n % 4
        if kind == 0:
            ref = ("event", ReceivedEventFactory(tenant_id=tenant.pk).pk, HistoryKind.EVENT, {})
        elif kind == 1:
            build = BuildFactory(tenant=tenant, attempt=n, logs_url=f"https://logs.example/{n}")
            ref = ("build", build.pk, HistoryKind.BUILD, {})
        elif kind == 2:
            delivery = make_delivery(endpoint, tenant=tenant, dedupe_key=f"story:{tenant.pk}:{n}", attempts=2)
            ref = (
                "delivery",
                delivery.pk,
                HistoryKind.CALLBACK,
                {"status": "failed", "status_code": 500, "attempts": 2},
            )
        else:
            ref = ("", "", HistoryKind.TRANSITION, {"from": "DEPLOYING", "to": "DEPLOY_FAILED"})
        ref_type, ref_id, history_kind, details = ref
        rows.append(
            TenantHistory(
                tenant=tenant,
                kind=history_kind,
                summary=f"entry {n}",
                details=details,
                ref_type=ref_type,
                ref_id=ref_id,
            )
        )
    TenantHistory.objects.bulk_create(rows)


@pytest.mark.parametrize("entries", [8, 200])
def test_tenant_page_query_budget_is_constant(operator, django_assert_max_num_queries, entries):
    tenant = TenantFactory(status=TenantStatus.DEPLOY_FAILED)
    story(tenant, entries)

    with django_assert_max_num_queries(12):  # session, user, tenant (2), permissions (2), history + 3 refs, ...
        response = operator.get(change_url(tenant))

    assert response.status_code == 200
    assert response.content.decode().count('<li class="entry') == entries


def test_tenant_page_shows_one_timeline_with_details_links_and_staff_actor(operator):
    tenant = TenantFactory(status=TenantStatus.DEPLOY_FAILED, status_reason="Control-plane webhook failed")
    story(tenant, 4)
    TenantHistory.objects.create(
        tenant=tenant,
        kind=HistoryKind.STAFF_ACTION,
        summary="Retry requested",
        actor="alice",
        details={"secret": "staff-secret-x1"},
    )

    page = operator.get(change_url(tenant)).content.decode()

    kinds = re.findall(r'<li class="entry tone-\w+" data-kind="(\w+)"', page)
    assert kinds == ["event", "build", "callback", "transition", "staff_action"]
    assert 'href="https://logs.example/1"' in page  # the build's logs
    assert "HTTP 500" in page  # the delivery's status code...
    assert "2 attempts" in page  # ...and attempts
    assert "by alice" in page
    assert "staff-secret-x1" not in page  # details are shown redacted
    assert 'class="entry tone-red" data-kind="transition"' in page
    assert "Control-plane webhook failed" in page
    # the related lists open filtered to this tenant
    for name in ("tenants_build", "webhooks_webhookdelivery", "events_receivedevent"):
        link = re.search(rf'href="({reverse(f"admin:{name}_changelist")}\?[^"]+)"', page).group(1)
        listed = operator.get(link.replace("&amp;", "&"))
        assert listed.status_code == 200
        assert listed.context["cl"].result_count == 1, name


# --- Tenant page: buttons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "failed_delivery", "expected"),
    [
        (TenantStatus.PROVISION_FAILED, False, ["retry_provisioning", "resync"]),
        (TenantStatus.PENDING_PROVISION, False, ["retry_provisioning", "resync"]),
        (TenantStatus.DEPLOY_FAILED, True, ["retry_callbacks", "resync"]),
        (TenantStatus.ACTIVE, False, ["deprovision", "update_plan", "suspend", "resync"]),
        (TenantStatus.DEPROVISION_FAILED, False, ["deprovision", "resync"]),
        (TenantStatus.UPDATE_FAILED, False, ["retry_update", "roll_back_update", "resync"]),
        (TenantStatus.SUSPENDED, False, ["deprovision", "resume", "resync"]),
        (TenantStatus.SUSPEND_FAILED, False, ["suspend", "resync"]),
        (TenantStatus.RESUME_FAILED, False, ["resume", "resync"]),
        (TenantStatus.UPDATING, False, ["resync"]),
        (TenantStatus.PROVISIONING, False, ["resync"]),
        (TenantStatus.INACTIVE, False, ["resync"]),
    ],
)
def test_operator_sees_the_buttons_that_fit_the_status(operator, status, failed_delivery, expected):
    tenant = TenantFactory(status=status)
    if failed_delivery:
        make_delivery(WebhookEndpointFactory(), tenant=tenant, status=DeliveryStatus.FAILED)

    assert buttons(operator.get(change_url(tenant))) == expected


def test_read_only_staff_see_no_buttons_and_cannot_post_actions(read_only):
    tenant = TenantFactory(status=TenantStatus.ACTIVE)
    make_delivery(WebhookEndpointFactory(), tenant=tenant, status=DeliveryStatus.FAILED)

    page = read_only.get(change_url(tenant))

    assert page.status_code == 200
    assert buttons(page) == []
    assert "Read-only access" in page.content.decode()
    for name in ("retry_callbacks", "retry_provisioning", "deprovision", "resync"):
        assert read_only.post(action_url(tenant, name), {"confirm": "yes"}).status_code == 403
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert not TenantHistory.objects.filter(tenant=tenant, kind=HistoryKind.STAFF_ACTION).exists()


def test_actions_are_post_only(operator):
    tenant = TenantFactory(status=TenantStatus.ACTIVE)

    for name in ("retry_callbacks", "retry_provisioning", "deprovision", "resync"):
        assert operator.get(action_url(tenant, name)).status_code == 405
    assert tenant.history.count() == 0


def test_non_staff_are_sent_to_the_login_page(client, django_user_model):
    tenant = TenantFactory(status=TenantStatus.ACTIVE)
    client.force_login(django_user_model.objects.create_user("plain", password="pw"))

    response = client.post(action_url(tenant, "resync"))

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- Actions ------------------------------------------------------------------------------------------


def test_deprovision_asks_for_confirmation_then_starts_the_build(operator, codebuild_tier):
    tenant = TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC")

    confirmation = operator.post(action_url(tenant, "deprovision"))

    assert confirmation.status_code == 200
    assert 'id="deprovision-confirmation"' in confirmation.content.decode()
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert not Build.objects.exists()

    done = operator.post(action_url(tenant, "deprovision"), {"confirm": "yes"}, follow=True)

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPROVISIONING
    assert Build.objects.get(tenant=tenant).build_id
    assert any("deprovisioning attempt 1 started" in str(m) for m in done.context["messages"])
    assert TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION).actor_user == operator.user
    # idempotent: a second confirmation is a message, not a second build
    again = operator.post(action_url(tenant, "deprovision"), {"confirm": "yes"}, follow=True)
    assert any("already deprovisioning" in str(m) for m in again.context["messages"])
    assert Build.objects.count() == 1


def test_bulk_deprovision_asks_for_confirmation(operator, codebuild_tier):
    tenants = [TenantFactory(status=TenantStatus.ACTIVE, tier="BASIC") for _ in range(2)]
    data = {"action": "deprovision", "_selected_action": [t.pk for t in tenants]}

    confirmation = operator.post(reverse("admin:tenants_tenant_changelist"), data)
    done = operator.post(reverse("admin:tenants_tenant_changelist"), {**data, "confirm": "yes"})

    assert confirmation.status_code == 200
    assert "Deprovision 2 tenants?" in confirmation.content.decode()
    assert done.status_code == 302
    assert set(Tenant.objects.values_list("status", flat=True)) == {TenantStatus.DEPROVISIONING}


def test_resync_from_the_tenant_page_is_recorded_with_the_staff_user(operator):
    tenant = TenantFactory(status=TenantStatus.ACTIVE)
    version = Tenant.objects.get(pk=tenant.pk).version

    response = operator.post(action_url(tenant, "resync"), follow=True)

    assert response.redirect_chain[-1][0] == change_url(tenant)
    tenant.refresh_from_db()
    assert tenant.version == version + 1
    entry = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION)
    assert entry.actor_user == operator.user
    assert f"by {operator.user.username}" in response.content.decode()


def test_retry_provisioning_of_a_tenant_that_cannot_is_refused_and_recorded(operator):
    tenant = TenantFactory(status=TenantStatus.ACTIVE)

    response = operator.post(action_url(tenant, "retry_provisioning"), follow=True)

    assert any("not an allowed transition" in str(m) for m in response.context["messages"])
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    assert TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.TRANSITION_REFUSED).actor_user == operator.user


def test_retry_failed_callbacks_resumes_the_chain_against_a_live_receiver(
    operator,
    receiver,  # noqa: F811 - the webhooks tests' fixture
    run_deployment,  # noqa: F811 - the webhooks tests' fixture
    settings,
    django_capture_on_commit_callbacks,
):
    # given a deployment whose control-plane webhook answered 500 (no automatic retries here)
    settings.WEBHOOK_RETRY_SCHEDULE = []
    settings.WEBHOOK_RETRY_WINDOW = 0
    receiver.script("/webhook", Reply(500, body=b"upstream down"))
    tenant, _event, _ = run_deployment(base=receiver.url(""))
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPLOY_FAILED
    failed = WebhookDelivery.objects.get(tenant=tenant, status=DeliveryStatus.FAILED)
    assert failed.step == DeliveryStep.CONTROL_PLANE_WEBHOOK
    assert buttons(operator.get(change_url(tenant))) == ["retry_callbacks", "resync"]

    # when an operator clicks "Retry failed callbacks" (the receiver answers 204 now)
    with django_capture_on_commit_callbacks(execute=True):  # the send runs after the action's commit
        clicked = operator.post(action_url(tenant, "retry_callbacks"))
    response = operator.get(clicked["Location"])

    # then the delivery succeeded, the tenant is active, and the page tells the story
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.SUCCEEDED
    assert [a.status_code for a in failed.attempt_log.order_by("number")] == [500, 204]
    assert receiver.paths().count("/webhook") == 2
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.ACTIVE
    page = response.content.decode()
    assert "queued" in page  # the action's message
    assert re.search(r"Control-plane webhook to .*?: delivered", page)
    assert TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.STAFF_ACTION).actor_user == operator.user
    assert buttons(response) == ["deprovision", "update_plan", "suspend", "resync"]


# --- Other admin pages --------------------------------------------------------------------------------


def test_tiers_endpoints_and_tokens_are_changed_by_superusers_only(client):
    tier = TierFactory(name="BASIC")
    endpoint = WebhookEndpointFactory()
    logged_in(client, "operator")

    assert client.get(reverse("admin:tenants_tier_change", args=[tier.pk])).status_code == 200  # view only
    assert client.post(reverse("admin:tenants_tier_change", args=[tier.pk]), {"name": "X"}).status_code == 403
    assert client.get(reverse("admin:tenants_tier_add")).status_code == 403
    assert client.get(reverse("admin:webhooks_webhookendpoint_add")).status_code == 403
    assert (
        client.post(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]), {"url": "x"}).status_code
        == 403
    )
    assert client.get(reverse("admin:authtoken_tokenproxy_add")).status_code == 403
    logged_in(client, "superuser")
    assert client.get(reverse("admin:tenants_tier_add")).status_code == 200
    assert client.get(reverse("admin:webhooks_webhookendpoint_add")).status_code == 200
    assert client.get(reverse("admin:authtoken_tokenproxy_add")).status_code == 200  # API tokens for machines


def test_event_replay_and_delivery_retry_need_the_operator_permissions(client):
    event = ReceivedEventFactory(status=EventStatus.FAILED)
    delivery = make_delivery(WebhookEndpointFactory(), status=DeliveryStatus.FAILED)
    replay = reverse("admin:events_receivedevent_replay", args=[event.pk])
    deliveries = reverse("admin:webhooks_webhookdelivery_changelist")
    retry = {"action": "retry_selected", "_selected_action": [delivery.pk]}

    logged_in(client, "read_only")
    assert client.post(replay).status_code == 403
    assert replay not in client.get(reverse("admin:events_receivedevent_change", args=[event.pk])).content.decode()
    client.post(deliveries, retry)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED

    logged_in(client, "operator")
    assert client.post(replay).status_code == 302
    event.refresh_from_db()
    assert event.replay_requested_at is not None
    client.post(deliveries, retry)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


@pytest.mark.parametrize("rows", [5, 40])
def test_deliveries_list_query_budget_is_constant(read_only, django_assert_max_num_queries, rows):
    endpoint = WebhookEndpointFactory()
    tenant = TenantFactory()
    for n in range(rows):
        make_delivery(endpoint, tenant=tenant, dedupe_key=f"admin-list:{n}", status=DeliveryStatus.FAILED)

    with django_assert_max_num_queries(11):
        response = read_only.get(reverse("admin:webhooks_webhookdelivery_changelist"), {"status__exact": "failed"})

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_builds_list_shows_badges_and_logs_links(read_only):
    BuildFactory(status="FAILED", logs_url="https://logs.example/b1", ended_at=timezone.now())

    page = read_only.get(reverse("admin:tenants_build_changelist")).content.decode()

    assert 'data-status="FAILED"' in page
    assert 'href="https://logs.example/b1"' in page
