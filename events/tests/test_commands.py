"""Management commands: send_sample_event against a live intake over HTTP; relay_emulator_events."""

import pytest
from django.core.management import CommandError, call_command

from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("detail_type", [DetailType.TENANT_PROVISIONING, DetailType.TENANT_DEPLOYMENT])
def test_send_sample_event_posts_to_the_intake(live_server, recorder, capsys, detail_type):
    call_command(
        "send_sample_event", detail_type, "--tenant-id", "tenant-42", "--url", f"{live_server.url}/api/events/"
    )

    output = capsys.readouterr().out
    assert output.startswith("202 ")
    event = ReceivedEvent.objects.get()
    assert event.detail_type == detail_type
    assert event.tenant_id == "tenant-42"
    assert event.status == EventStatus.PROCESSED
    assert event.event_id in output


def test_send_sample_event_reports_a_refusal(live_server, recorder, capsys):
    url = f"{live_server.url}/orchestrator/events/TENANT_PROVISIONING"  # the path names another type

    with pytest.raises(CommandError, match="400"):
        call_command("send_sample_event", DetailType.TENANT_DEPROVISIONING, "--url", url)

    assert "detail-type" in capsys.readouterr().out
    assert ReceivedEvent.objects.count() == 0


def test_send_sample_event_unreachable_intake_is_an_error():
    from devstack.processes import free_port

    with pytest.raises(CommandError, match="Could not reach"):
        call_command("send_sample_event", DetailType.TENANT_DEPROVISIONING, "--url", f"http://127.0.0.1:{free_port()}/")


def test_provisioning_sample_is_a_new_local_tenant_each_time(live_server, recorder, capsys):
    url = f"{live_server.url}/api/events/"

    call_command("send_sample_event", DetailType.TENANT_PROVISIONING, "--url", url)
    call_command("send_sample_event", DetailType.TENANT_PROVISIONING, "--url", url)

    events = list(ReceivedEvent.objects.order_by("id"))
    assert len(events) == 2
    tenants = [event.detail["tenant"] for event in events]
    assert tenants[0]["id"] != tenants[1]["id"]
    assert tenants[0]["key"] != tenants[1]["key"]
    assert all(event.detail["builderConfig"]["type"] == "LOCAL" for event in events)
    override_tenant = events[0].detail["builderConfig"]["config"]["environmentOverride"]["tenant"]
    assert f'"id":"{tenants[0]["id"]}"' in override_tenant
    assert "/admin/tenants/tenant/" in capsys.readouterr().out


def test_the_sbt_onboarding_sample_is_a_new_registration_each_time(live_server, recorder, settings):
    settings.EVENT_DIALECTS = ["original", "sbt"]
    url = f"{live_server.url}/api/events/"

    call_command("send_sample_event", "sbt_aws_onboardingRequest", "--url", url)
    call_command("send_sample_event", "sbt_aws_onboardingRequest", "--url", url)

    details = [event.detail for event in ReceivedEvent.objects.order_by("id")]
    assert [detail["tier"] for detail in details] == ["basic", "basic"]
    assert details[0]["tenantId"] != details[1]["tenantId"]
    assert details[0]["tenantRegistrationId"] != details[1]["tenantRegistrationId"]
