"""The LOCAL builder end to end: the tier's script runs as a subprocess with the build environment and
its outcome comes back through the real intake over HTTP (a live server), like CodeBuild's post-build step."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from django.test import override_settings

from events.catalogue import DetailType
from events.models import OutboxEvent, ReceivedEvent
from orchestrator.aws import aws_client
from tenants.models import Build, BuildPurpose, BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from tenants.services.lifecycle import tenant_transition
from tenants.services.local_builds import parse_outputs
from tenants.tests.conftest import API_KEY, envelope, provisioning_detail, tenant_item_of
from tenants.tests.factories import TierFactory, TierVariableFactory


def post(client, detail_type, detail):
    body = envelope(detail_type, detail)
    response = client.post(
        "/api/events/", data=json.dumps(body), content_type="application/json", HTTP_X_API_KEY=API_KEY
    )
    assert response.status_code == 202, response.content
    return ReceivedEvent.objects.get(event_id=body["id"])


def provision_locally(client) -> Tenant:
    """A new tenant's TENANT_PROVISIONING for the LOCAL builder through the intake; the tenant once its build
    (run before the intake answers) has reported back."""
    detail = provisioning_detail(builder="LOCAL")
    post(client, DetailType.TENANT_PROVISIONING, detail)
    return Tenant.objects.get(pk=detail["tenant"]["id"])


def test_local_build_takes_a_tenant_from_event_to_deploying(local_tier, live_intake, client):
    detail = provisioning_detail(builder="LOCAL")

    post(client, DetailType.TENANT_PROVISIONING, detail)

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.DEPLOYING, tenant.status_reason
    build = Build.objects.get(tenant=tenant)
    assert build.build_id == f"local:{tenant.pk}:provision:1"
    assert build.status == BuildStatus.SUCCEEDED
    # the outcome came back through the intake as the post-build step would send it
    outcome = ReceivedEvent.objects.get(detail_type=DetailType.TENANT_PROVISIONING_SUCCESS)
    assert outcome.source == "saas.tenant.provisioning.codebuild"
    assert outcome.tenant_id == tenant.pk
    sent = outcome.envelope["detail"]
    assert sent["CODEBUILD_BUILD_ID"] == build.build_id
    assert sent["CODEBUILD_BUILD_SUCCEEDING"] == "1"
    assert sent["CODEBUILD_BUILD_POSTBUILD"] == "1"
    assert sent["API_ENDPOINT"] == "http://127.0.0.1:8199/webhook"
    assert sent["USER_CALLBACK_ENDPOINT"] == "http://127.0.0.1:8199/acme/user-callback"
    assert sent["APP_PLANE_ENDPOINT_FEATURE_SERVICE"] == "http://127.0.0.1:8199/acme/feature-service"
    assert sent["APP_PLANE_REDIRECT_URL"] == "http://127.0.0.1:8199/acme/app"
    assert (sent["TF_STATE_BUCKET"], sent["TF_KEY"]) == ("demo-terraform-state", "tenants/acme/terraform.tfstate")
    assert sent["CLIENT_ID"] == "demo-acme"
    assert len(sent["CLIENT_SECRET"]) == 32
    assert (sent["secret"], sent["context"], sent["TENANT_ID"]) == ("hmac-secret-value", "ctx-123", tenant.pk)
    assert json.loads(sent["tenant"])["id"] == tenant.pk
    # and the deployment step gets it all plus the stored plan
    deployment = OutboxEvent.objects.get(detail_type=DetailType.TENANT_DEPLOYMENT)
    assert deployment.detail == {**sent, "planConfig": detail["planConfig"]}
    assert tenant_item_of(tenant.pk)["status"] == "DEPLOYING"
    log = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.BUILD, summary__startswith="Local provision")
    assert log.details["exit_code"] == 0
    assert any("tenant acme provisioned" in line for line in log.details["log_tail"])


def test_local_build_failure_on_demand_fails_the_tenant(local_tier, live_intake, client):
    TierVariableFactory(tier=local_tier, name="FAIL_BUILD", value="1")

    tenant = provision_locally(client)

    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == "The command exited with 1: [provision] FAIL_BUILD=1 set: failing on purpose"
    assert Build.objects.get(tenant=tenant).status == BuildStatus.FAILED
    failure = ReceivedEvent.objects.get(detail_type=DetailType.TENANT_PROVISIONING_FAILURE)
    assert failure.envelope["detail"]["CODEBUILD_BUILD_SUCCEEDING"] == "0"
    assert not OutboxEvent.objects.exists()


def test_local_deprovisioning_ends_inactive_with_the_item_kept(local_tier, live_intake, client):
    tenant = provision_locally(client)
    tenant_transition(tenant=tenant, to=TenantStatus.ACTIVE)

    post(client, DetailType.TENANT_DEPROVISIONING, {"tenant": {"id": tenant.pk}})

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.INACTIVE, tenant.status_reason
    build = Build.objects.get(tenant=tenant, purpose=BuildPurpose.DEPROVISION)
    assert build.status == BuildStatus.SUCCEEDED
    assert tenant_item_of(tenant.pk)["status"] == "INACTIVE"


def test_local_deprovisioning_failure_is_deprovision_failed(local_tier, live_intake, client):
    TierVariableFactory(tier=local_tier, name="FAIL_BUILD", value="deprovision")
    tenant = provision_locally(client)
    assert tenant.status == TenantStatus.DEPLOYING
    tenant_transition(tenant=tenant, to=TenantStatus.ACTIVE)

    post(client, DetailType.TENANT_DEPROVISIONING, {"tenant": {"id": tenant.pk}})

    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.DEPROVISION_FAILED
    assert "FAIL_BUILD=deprovision" in tenant.status_reason


SECRET_SCRIPT = """\
    #!/usr/bin/env bash
    set -eu
    out="$ORCHESTRATOR_OUTPUT_FILE"
    echo "connecting with password $DB_PASSWORD and token $API_TOKEN"
    printf 'PASSWORD_SHA=%s\\n' "$(printf '%s' "$DB_PASSWORD" | sha256sum | cut -d' ' -f1)" >> "$out"
    printf 'TOKEN_SHA=%s\\n' "$(printf '%s' "$API_TOKEN" | sha256sum | cut -d' ' -f1)" >> "$out"
    printf 'LEAKED_ENV=%s\\n' "${DATABASE_URL:-none}${DJANGO_SECRET_KEY:-}" >> "$out"
"""


def test_secret_variables_are_resolved_for_the_script_but_never_echoed(
    transactional_db, aws, live_intake, client, build_root, monkeypatch
):
    # Given a script under the build root that uses an SSM parameter and a Secrets Manager secret
    script = build_root / "build.sh"
    script.write_text(textwrap.dedent(SECRET_SCRIPT))
    script.chmod(0o755)
    aws_client("ssm").put_parameter(Name="/demo/db-password", Value="hunter2-db", Type="SecureString")
    aws_client("secretsmanager").create_secret(Name="demo/api", SecretString=json.dumps({"token": "tok-12345"}))
    monkeypatch.setenv("DATABASE_URL", "postgres://should-not-leak")
    tier = TierFactory(name="BASIC", provision_project="build.sh", deprovision_project="", allowed_builders=["LOCAL"])
    TierVariableFactory(tier=tier, name="DB_PASSWORD", value="/demo/db-password", type="PARAMETER_STORE")
    TierVariableFactory(tier=tier, name="API_TOKEN", value="demo/api:token", type="SECRETS_MANAGER")
    detail = provisioning_detail(builder="LOCAL")

    with override_settings(LOCAL_BUILD_ROOT=str(build_root), LOCAL_BUILD_COMMANDS=["build.sh"]):
        post(client, DetailType.TENANT_PROVISIONING, detail)

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.DEPLOYING, tenant.status_reason
    sent = ReceivedEvent.objects.get(detail_type=DetailType.TENANT_PROVISIONING_SUCCESS).envelope["detail"]
    assert sent["PASSWORD_SHA"] == hashlib.sha256(b"hunter2-db").hexdigest()
    assert sent["TOKEN_SHA"] == hashlib.sha256(b"tok-12345").hexdigest()
    assert sent["LEAKED_ENV"] == "none"  # the worker's own environment does not reach the script
    assert "DB_PASSWORD" not in sent
    assert "API_TOKEN" not in sent
    everything = json.dumps(list(TenantHistory.objects.values_list("details", "summary"))) + json.dumps(sent)
    assert "hunter2-db" not in everything
    assert "tok-12345" not in everything
    log = TenantHistory.objects.get(tenant=tenant, summary__startswith="Local provision")
    assert log.details["log_tail"] == ["connecting with password ******** and token ********"]


@pytest.mark.django_db
def test_command_outside_the_build_root_is_refused_even_when_listed(aws, send_event):
    TierFactory(name="BASIC", provision_project="../../../bin/sh -c id", allowed_builders=["LOCAL"])
    detail = provisioning_detail(builder="LOCAL")

    with override_settings(LOCAL_BUILD_COMMANDS=["../../../bin/sh -c id"]):
        send_event(envelope(DetailType.TENANT_PROVISIONING, detail))

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert "must be a script inside" in tenant.status_reason


def test_outputs_file_parsing():
    text = "A=1\n\n# comment\nexport B='two words'\nC=x=y\nbad-name=1\nCODEBUILD_BUILD_POSTBUILD=1\nNOEQUALS\n"

    assert parse_outputs(text) == {"A": "1", "B": "two words", "C": "x=y", "CODEBUILD_BUILD_POSTBUILD": "1"}


RUNNER = """
import subprocess, django
django.setup()
from tenants.services.local_builds import _die_with_parent
command = subprocess.Popen(["sleep", "60"], start_new_session=True, preexec_fn=_die_with_parent)
print(command.pid, flush=True)
command.wait()
"""


def _dead(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_the_command_dies_with_its_runner():
    # Given a runner process with a command in its own session (killing the runner's group misses it)
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "orchestrator.settings.test"},
    )
    command = psutil.Process(int(runner.stdout.readline()))
    assert not _dead(command)

    # When the runner is killed
    runner.kill()
    runner.wait()

    # Then so is the command (it never outlives its runner into the next run)
    deadline = time.monotonic() + 10
    while not _dead(command) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(command)


def test_local_update_to_another_tier_runs_its_update_command_and_moves_the_tenant(local_tier, live_intake, client):
    # given an active LOCAL tenant on BASIC and a PREMIUM tier whose updates run demo/build.sh update
    premium = TierFactory(
        name="PREMIUM", provision_project="demo/build.sh provision", update_project="demo/build.sh update"
    )
    premium.allowed_builders = ["LOCAL"]
    premium.save()
    detail = provisioning_detail(builder="LOCAL")
    post(client, DetailType.TENANT_PROVISIONING, detail)
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    tenant_transition(tenant=tenant, to=TenantStatus.ACTIVE)

    # when the control plane moves it to PREMIUM
    plan = {"id": "plan-premium", "name": "Premium", "tier": "PREMIUM"}
    post(client, DetailType.TENANT_UPDATE, {"tenant": {"id": tenant.pk}, "planConfig": plan})

    # then the command ran with both tier names, reported through the intake, and the tenant is on PREMIUM
    tenant.refresh_from_db()
    assert (tenant.status, tenant.tier, tenant.plan["id"]) == (TenantStatus.ACTIVE, "PREMIUM", "plan-premium")
    build = Build.objects.get(tenant=tenant, purpose=BuildPurpose.UPDATE)
    assert (build.build_id, build.status) == (f"local:{tenant.pk}:update:1", BuildStatus.SUCCEEDED)
    log = TenantHistory.objects.get(tenant=tenant, kind=HistoryKind.BUILD, summary__startswith="Local update")
    assert any("update done (tier BASIC -> PREMIUM)" in line for line in log.details["log_tail"])
    assert tenant_item_of(tenant.pk)["planConfig"]["tier"] == "PREMIUM"
