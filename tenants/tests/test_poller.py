"""The build poller: BatchGetBuilds for builds running longer than BUILD_POLL_AFTER_SECONDS.

moto's CodeBuild flips every build to SUCCEEDED on its first BatchGetBuilds and never fails one, so
the failure paths use a fake CodeBuild client injected at the builder boundary only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tenants.builders import registry
from tenants.builders.codebuild import CodeBuildBuilder
from tenants.models import Build, BuildStatus, Tenant, TenantStatus
from tenants.services.builds import builds_poll
from tenants.tasks import poll_builds
from tenants.tests.conftest import provisioning_started

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_build(codebuild_tier, send_event):
    _, build = provisioning_started(send_event)
    Build.objects.filter(pk=build.pk).update(started_at=timezone.now() - timedelta(hours=1))
    return build


class FakeCodeBuild:
    """Answers BatchGetBuilds with the given status, as CodeBuild shapes it."""

    def __init__(self, status, phases=()):
        self.status, self.phases, self.calls = status, list(phases), []

    def batch_get_builds(self, ids):
        self.calls.append(list(ids))
        return {
            "builds": [
                {
                    "id": build_id,
                    "buildStatus": self.status,
                    "phases": self.phases,
                    "logs": {"deepLink": "https://logs"},
                }
                for build_id in ids
            ]
        }


def test_poller_against_moto_marks_success_and_waits_for_the_event(running_build, codebuild_calls, run_commit_hooks):
    with run_commit_hooks():
        counts = poll_builds.delay().get()

    assert counts == {"polled": 1, "updated": 1}
    assert [operation for operation, _ in codebuild_calls] == ["BatchGetBuilds"]
    running_build.refresh_from_db()
    assert running_build.status == BuildStatus.SUCCEEDED
    assert running_build.awaiting_outcome_event is True
    assert Tenant.objects.get(pk=running_build.tenant_id).status == TenantStatus.PROVISIONING


@pytest.mark.parametrize("status", ["FAILED", "FAULT", "TIMED_OUT", "STOPPED"])
def test_terminal_failure_with_no_event_fails_the_tenant(running_build, status):
    phases = [{"phaseType": "BUILD", "phaseStatus": status, "contexts": [{"message": "exit status 1"}]}]
    fake = FakeCodeBuild(status, phases)

    with registry.override("CODE_BUILD", CodeBuildBuilder(client=fake)):
        builds_poll()

    assert fake.calls == [[running_build.build_id]]
    running_build.refresh_from_db()
    assert running_build.status == status
    tenant = Tenant.objects.get(pk=running_build.tenant_id)
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == f"Provision build {BuildStatus(status).label.lower()}: BUILD {status}: exit status 1"


def test_recent_builds_are_not_polled(codebuild_tier, send_event):
    provisioning_started(send_event)
    fake = FakeCodeBuild("FAILED")

    with registry.override("CODE_BUILD", CodeBuildBuilder(client=fake)):
        counts = builds_poll()

    assert counts["polled"] == 0
    assert fake.calls == []


def test_still_running_build_is_polled_again_only_after_the_interval(running_build):
    fake = FakeCodeBuild("IN_PROGRESS")

    with registry.override("CODE_BUILD", CodeBuildBuilder(client=fake)):
        builds_poll()
        builds_poll()

    assert fake.calls == [[running_build.build_id]]
    running_build.refresh_from_db()
    assert running_build.status == BuildStatus.IN_PROGRESS
    assert running_build.last_polled_at is not None
