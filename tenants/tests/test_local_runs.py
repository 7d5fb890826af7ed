"""LOCAL builds under a lease, with their outcome stored before it is posted: a duplicate task skips a
build whose lease is live, a build whose runner died runs again with the same identity, an outcome the
intake could not take is posted again until it is accepted (once), against a live intake over HTTP."""

import json
import os
import textwrap
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from devstack.processes import free_port
from events.catalogue import DetailType
from events.models import ReceivedEvent
from tenants.builders.local import local_build_id
from tenants.models import Build, BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.local_builds import local_build_run
from tenants.services.local_runs import local_build_claim, local_build_outcome_deliver
from tenants.services.recovery import builds_recover
from tenants.tests.conftest import API_KEY, envelope, provisioning_detail
from tenants.tests.factories import BuildFactory, TenantFactory, TierFactory


def local_build(*, project: str = "demo/build.sh provision") -> Build:
    """A started LOCAL provisioning build whose tenant waits for it (its run task not delivered yet)."""
    tenant = TenantFactory(status=TenantStatus.PROVISIONING, provisioning_attempt=1)
    build = BuildFactory(
        tenant=tenant, builder_type="LOCAL", project=project, status=BuildStatus.IN_PROGRESS, build_id="", arn=""
    )
    Build.objects.filter(pk=build.pk).update(build_id=local_build_id(build))
    build.refresh_from_db()
    return build


def outcome_events(build: Build) -> list[ReceivedEvent]:
    return list(ReceivedEvent.objects.filter(tenant_id=build.tenant_id, detail_type__startswith="TENANT_PROVISIONING_"))


@pytest.mark.django_db
def test_a_duplicate_task_skips_a_build_whose_lease_is_live(local_tier):
    # Given a build a runner has claimed and is running
    build = local_build()
    lease = local_build_claim(build_pk=build.pk)
    assert not isinstance(lease, str)

    # When its task is delivered again
    result = local_build_run(build_pk=build.pk)

    # Then it is skipped: no second run, nothing reported
    assert result.startswith(f"skipped: leased to {lease.owner} until ")
    build.refresh_from_db()
    assert (build.runs, build.lease_owner, build.outcome, build.ended_at) == (1, lease.owner, None, None)
    assert not TenantHistory.objects.filter(tenant=build.tenant, summary__startswith="Local provision").exists()


def test_a_build_whose_runner_died_runs_again_with_the_same_identity_and_reports_once(local_tier, live_intake):
    # Given a build whose runner claimed it and died (its lease is never renewed)
    build = local_build()
    dead = local_build_claim(build_pk=build.pk)
    build.refresh_from_db()
    expires = build.lease_expires_at

    # When the recovery runs: nothing while the lease is live, a new run once it has run out
    assert builds_recover(now=expires - timedelta(seconds=1))["rerun"] == 0
    counts = builds_recover(now=expires + timedelta(seconds=1))

    # Then the build ran again and its one outcome took the tenant on
    assert counts["rerun"] == 1
    build.refresh_from_db()
    assert build.runs == 2
    assert build.lease_owner not in ("", dead.owner)
    assert build.status == BuildStatus.SUCCEEDED
    assert build.outcome_posted_at is not None
    assert Tenant.objects.get(pk=build.tenant_id).status == TenantStatus.DEPLOYING
    [outcome] = outcome_events(build)
    assert outcome.detail_type == DetailType.TENANT_PROVISIONING_SUCCESS
    assert outcome.event_id == str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"orchestrator:local-build:{build.idempotency_token}")
    )
    assert outcome.envelope["detail"]["CODEBUILD_BUILD_ID"] == build.build_id == f"local:{build.idempotency_token}"
    summaries = list(TenantHistory.objects.filter(tenant_id=build.tenant_id).values_list("summary", flat=True))
    assert any(s.startswith(f"Local runner {dead.owner} lost") and "run 2 of 3" in s for s in summaries), summaries
    assert any(s.startswith("Local provision command finished (run 2): succeeded") for s in summaries), summaries
    # and a later sweep finds nothing left to do
    assert builds_recover(now=timezone.now() + timedelta(hours=1)) == {
        "started": 0,
        "rerun": 0,
        "given_up": 0,
        "reposted": 0,
    }


def test_a_task_delivered_again_after_the_lease_ran_out_runs_the_build(local_tier, live_intake):
    # Given a build whose runner died, and whose lease has run out since
    build = local_build()
    dead = local_build_claim(build_pk=build.pk)
    Build.objects.filter(pk=build.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    # When its task is delivered again (the broker's visibility timeout, a worker lost with acks_late)
    result = local_build_run(build_pk=build.pk)

    # Then that task runs the build under a new lease, and its outcome is the build's one outcome
    assert result == "TENANT_PROVISIONING_SUCCESS delivered"
    build.refresh_from_db()
    assert build.runs == 2
    assert build.lease_owner != dead.owner
    assert [event.detail_type for event in outcome_events(build)] == [DetailType.TENANT_PROVISIONING_SUCCESS]
    assert Tenant.objects.get(pk=build.tenant_id).status == TenantStatus.DEPLOYING


@pytest.mark.django_db
def test_a_build_whose_runners_keep_dying_is_given_up_after_the_last_run(local_tier, settings):
    # Given a build on its last allowed run, whose runner died
    build = local_build()
    Build.objects.filter(pk=build.pk).update(runs=settings.LOCAL_BUILD_MAX_RUNS - 1)
    assert not isinstance(local_build_claim(build_pk=build.pk), str)
    build.refresh_from_db()

    # When its lease has run out
    counts = builds_recover(now=build.lease_expires_at + timedelta(seconds=1))

    # Then the build is a fault and the tenant failed with the reason; nothing runs it again
    assert (counts["rerun"], counts["given_up"]) == (0, 1)
    build.refresh_from_db()
    assert build.status == BuildStatus.FAULT
    assert build.lease_expires_at is None
    tenant = Tenant.objects.get(pk=build.tenant_id)
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert "The local runner was lost 3 times (LOCAL_BUILD_MAX_RUNS); giving up." in tenant.status_reason
    assert local_build_run(build_pk=build.pk) == "skipped: already finished (FAULT)"


SLOW_SCRIPT = """\
    #!/usr/bin/env bash
    echo $$ > "$PID_FILE"
    sleep 60
"""


def test_a_runner_that_lost_its_lease_kills_its_command_and_reports_nothing(transactional_db, aws, build_root):
    # Given a slow (allow-listed) command, run under a one-second lease, writing where its user may write
    script = build_root / "slow.sh"
    script.write_text(textwrap.dedent(SLOW_SCRIPT))
    script.chmod(0o755)
    scratch = build_root / "scratch"
    scratch.mkdir(mode=0o777)
    scratch.chmod(0o777)
    pid_file = scratch / "pid"
    tier = TierFactory(name="BASIC", provision_project="slow.sh", allowed_builders=["LOCAL"])
    tier.variables.create(name="PID_FILE", value=str(pid_file))
    build = local_build(project="slow.sh")
    results = []

    def runner():
        try:
            results.append(local_build_run(build_pk=build.pk))
        finally:
            connection.close()

    with override_settings(
        LOCAL_BUILD_ROOT=str(build_root), LOCAL_BUILD_COMMANDS=["slow.sh"], LOCAL_BUILD_LEASE_SECONDS=1
    ):
        thread = threading.Thread(target=runner)
        thread.start()
        try:
            deadline = timezone.now() + timedelta(seconds=30)
            while not pid_file.exists() or not pid_file.read_text().strip():
                assert timezone.now() < deadline, "the command never started"
                thread.join(0.05)
            # When another run takes the build over (this runner stalled past its lease, say)
            Build.objects.filter(pk=build.pk).update(lease_owner="another-runner")
        finally:
            thread.join(30)

    # Then the runner killed its command and reported nothing
    assert results == ["abandoned: another run owns the build now"]
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
    build.refresh_from_db()
    assert (build.outcome, build.ended_at, build.lease_owner) == (None, None, "another-runner")


def test_an_outcome_the_intake_could_not_take_is_stored_sealed_and_posted_again_until_accepted(
    local_tier, live_intake, client
):
    # Given the intake unreachable when the build ends
    detail = provisioning_detail(builder="LOCAL")
    body = envelope(DetailType.TENANT_PROVISIONING, detail)
    down = f"http://127.0.0.1:{free_port()}"
    with override_settings(ORCHESTRATOR_BASE_URL=down, LOCAL_BUILD_POST_ATTEMPTS=1):
        response = client.post(
            "/api/events/", json.dumps(body), content_type="application/json", HTTP_X_API_KEY=API_KEY
        )
        assert response.status_code == 202

        # Then the outcome is stored (secrets sealed at rest), not posted, and the tenant still waits
        build = Build.objects.get(tenant_id=detail["tenant"]["id"])
        assert build.status == BuildStatus.IN_PROGRESS
        assert build.ended_at is not None
        assert build.lease_expires_at is None
        assert build.outcome["detail-type"] == DetailType.TENANT_PROVISIONING_SUCCESS
        assert (build.outcome_posted_at, build.outcome_post_attempts) == (None, 1)
        assert build.outcome_post_error.startswith("ConnectionError reaching http://127.0.0.1:")
        with connection.cursor() as cursor:
            cursor.execute("SELECT CAST(outcome AS TEXT) FROM tenants_build WHERE id = %s", [build.pk])
            stored = cursor.fetchone()[0]
        assert build.outcome["detail"]["CLIENT_SECRET"] not in stored
        assert "hmac-secret-value" not in stored
        assert Tenant.objects.get(pk=build.tenant_id).status == TenantStatus.PROVISIONING
        assert outcome_events(build) == []

        # When the recovery posts it while the intake is still down: one more round, later again
        first_due = build.outcome_next_post_at
        assert builds_recover(now=first_due - timedelta(seconds=1))["reposted"] == 0
        assert builds_recover(now=first_due)["reposted"] == 1
        build.refresh_from_db()
        assert build.outcome_post_attempts == 2
        assert build.outcome_next_post_at > first_due

    # When the intake is back
    builds_recover(now=build.outcome_next_post_at)

    # Then the stored outcome was accepted as it was stored, and the tenant moved on
    build.refresh_from_db()
    assert build.outcome_posted_at is not None
    assert (build.outcome_next_post_at, build.outcome_post_error) == (None, "")
    assert build.status == BuildStatus.SUCCEEDED
    assert Tenant.objects.get(pk=build.tenant_id).status == TenantStatus.DEPLOYING
    [accepted] = outcome_events(build)
    assert accepted.envelope == build.outcome
    entries = TenantHistory.objects.filter(tenant_id=build.tenant_id, kind=HistoryKind.BUILD)
    assert entries.filter(summary__contains="not delivered to the intake yet").count() == 1
    assert entries.filter(summary__contains="accepted by the intake at post round 3").count() == 1

    # and posting it once more (a runner that died before recording the answer) is a duplicate, not a second outcome
    Build.objects.filter(pk=build.pk).update(outcome_posted_at=None, outcome_next_post_at=timezone.now())
    assert local_build_outcome_deliver(build_pk=build.pk) == "TENANT_PROVISIONING_SUCCESS delivered"
    assert outcome_events(build) == [accepted]


def test_an_outcome_the_intake_refuses_for_good_faults_the_build(local_tier, live_intake):
    # Given a stored outcome the intake cannot accept
    build = local_build()
    Build.objects.filter(pk=build.pk).update(
        outcome={"version": "0", "id": str(uuid.uuid4()), "detail-type": "NOT_AN_EVENT", "detail": {}},
        ended_at=timezone.now(),
        outcome_next_post_at=timezone.now(),
    )

    # When it is posted
    result = local_build_outcome_deliver(build_pk=build.pk)

    # Then it is not posted again; the build is a fault and the tenant failed with the intake's answer
    assert result.startswith("refused: intake answered 400")
    build.refresh_from_db()
    assert (build.status, build.outcome_next_post_at, build.outcome_posted_at) == (BuildStatus.FAULT, None, None)
    tenant = Tenant.objects.get(pk=build.tenant_id)
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason.startswith(
        "Provision build fault: The intake refused the build's outcome (intake answered 400"
    )
    assert builds_recover(now=timezone.now() + timedelta(hours=1))["reposted"] == 0
