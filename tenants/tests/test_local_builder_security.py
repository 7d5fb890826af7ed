"""Security finding H1 (issue #14): the event's sender ran commands on the worker through the LOCAL builder.

Every exploit goes through the real intake, as EventBridge would post it. A canary file the payload (or
the command it names) would create must never appear; the event is refused with its reason (a 400 at the
intake, or a failed event); the tenant never becomes ACTIVE; no build process runs.
"""

import json
import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from devstack.processes import free_port
from events.catalogue import DetailType
from events.models import EventStatus, ReceivedEvent
from orchestrator.tests.factories import SuperuserFactory
from tenants.models import Build, BuildStatus, Tenant, TenantStatus, Tier
from tenants.services.provisioning import tenant_retry_provisioning
from tenants.tests.conftest import API_KEY, admin_tier_form, envelope, provisioning_detail
from tenants.tests.factories import TenantFactory, TierFactory

WRITE_CANARY = "$(id > {canary})"  # what bash expands when it reads BASH_ENV, PS4...
CANARY_SCRIPT = "#!/bin/sh\nid -u > {canary}\n"
RUNS_AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop only happens for a root worker")


@pytest.fixture
def canary():
    """Where an exploit would write; writable by anyone, so an unprivileged build could create it too."""
    directory = Path(tempfile.mkdtemp(prefix="orchestrator-canary-"))
    directory.chmod(0o777)
    yield directory / "canary"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def no_outcome_receiver():
    """A build that runs by mistake reports to nobody, at once (only the canary tells what it did)."""
    with override_settings(ORCHESTRATOR_BASE_URL=f"http://127.0.0.1:{free_port()}", LOCAL_BUILD_POST_ATTEMPTS=1):
        yield


@pytest.fixture
def post(client, django_capture_on_commit_callbacks, aws, no_outcome_receiver):
    """POST an envelope to the intake and run what it queued (processing, the LOCAL build)."""

    def send(detail: dict, *, detail_type: str = DetailType.TENANT_PROVISIONING):
        body = envelope(detail_type, detail)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/events/", data=json.dumps(body), content_type="application/json", HTTP_X_API_KEY=API_KEY
            )
        return response, ReceivedEvent.objects.filter(event_id=body["id"]).first()

    return send


def local_tier(*, project: str = "demo/build.sh provision", builders: tuple[str, ...] = ("LOCAL",)) -> Tier:
    """Tier BASIC allowing ``builders``, written as staff could have before any check existed."""
    tier = TierFactory(name="BASIC", provision_project=project, deprovision_project="")
    tier.allowed_builders = list(builders)
    tier.save()
    return tier


@pytest.fixture
def canary_command(build_root, canary):
    """``canary.sh`` under the build root: running it at all creates the canary (with the uid it ran as)."""
    script = build_root / "canary.sh"
    script.write_text(CANARY_SCRIPT.format(canary=canary))
    script.chmod(0o755)
    with override_settings(LOCAL_BUILD_ROOT=str(build_root), LOCAL_BUILD_COMMANDS=["canary.sh"]):
        yield "canary.sh"


def assert_nothing_ran(canary: Path, tenant_id: str) -> None:
    assert not canary.exists(), f"the payload ran as uid {canary.read_text().strip()}"
    assert not Tenant.objects.filter(pk=tenant_id, status=TenantStatus.ACTIVE).exists()
    assert not Build.objects.filter(tenant_id=tenant_id).exclude(status=BuildStatus.FAILED).exists()


# --- Names that change how a shell, the loader or an interpreter behaves: a 400 at the intake ----------

EXPLOITS = {
    "BASH_ENV (the finding)": ("environmentOverride", {"BASH_ENV": WRITE_CANARY}),
    "BASH_ENV in sizeConfig": ("sizeConfig", {"BASH_ENV": WRITE_CANARY}),
    "ENV": ("environmentOverride", {"ENV": WRITE_CANARY}),
    "LD_PRELOAD": ("environmentOverride", {"LD_PRELOAD": "/tmp/evil.so"}),
    "LD_LIBRARY_PATH in sizeConfig": ("sizeConfig", {"LD_LIBRARY_PATH": "/tmp"}),
    "PYTHONSTARTUP and PYTHONPATH": ("environmentOverride", {"PYTHONSTARTUP": "/tmp/e.py", "PYTHONPATH": "/tmp"}),
    "PATH": ("environmentOverride", {"PATH": "/tmp"}),
    "PS4 with SHELLOPTS=xtrace": ("environmentOverride", {"SHELLOPTS": "xtrace", "PS4": WRITE_CANARY}),
    "PROMPT_COMMAND and IFS": ("environmentOverride", {"PROMPT_COMMAND": WRITE_CANARY, "IFS": "/"}),
    "HOME and TMPDIR": ("sizeConfig", {"HOME": "/tmp", "TMPDIR": "/tmp"}),
    "interpreter options": ("environmentOverride", {"NODE_OPTIONS": "-r /tmp/e", "PERL5OPT": "-Me", "RUBYOPT": "-re"}),
    "lower case bash_env": ("environmentOverride", {"bash_env": WRITE_CANARY}),
    "mixed case Ld_Preload in sizeConfig": ("sizeConfig", {"Ld_Preload": "/tmp/evil.so"}),
    "lower case http_proxy": ("environmentOverride", {"http_proxy": "http://attacker.example:3128"}),
    "GIT_SSH_COMMAND": ("environmentOverride", {"GIT_SSH_COMMAND": WRITE_CANARY}),
}
FIELDS = {
    "environmentOverride": "detail.builderConfig.config.environmentOverride",
    "sizeConfig": "detail.planConfig.sizeConfig",
}


@pytest.mark.parametrize(("where", "variables"), list(EXPLOITS.values()), ids=list(EXPLOITS))
def test_exploit_names_are_refused_at_the_intake_and_nothing_runs(db, post, canary, where, variables):
    # Given a tier that allows the LOCAL builder (the demo set-up)
    local_tier()
    variables = {name: value.format(canary=canary) for name, value in variables.items()}
    detail = provisioning_detail(builder="LOCAL", override=variables if where == "environmentOverride" else None)
    if where == "sizeConfig":
        detail["planConfig"]["sizeConfig"] = variables

    # When the exploit is posted
    response, event = post(detail)

    # Then nothing runs, and the intake refuses it, naming every refused variable and why; nothing is stored
    assert_nothing_ran(canary, detail["tenant"]["id"])
    assert response.status_code == 400, response.content
    reasons = response.json()["error"]["fields"][FIELDS[where]]
    assert len(reasons) == len(variables)
    for name, reason in zip(variables, reasons, strict=True):
        assert reason.startswith(f"{name!r} is reserved: it ")
    assert event is None
    assert not Tenant.objects.exists()


def test_path_to_a_planted_program_is_refused(db, post, canary, build_root):
    # Given a directory holding a program named like the interpreter of the demo build (#!/usr/bin/env bash)
    planted = build_root / "bin"
    planted.mkdir(mode=0o755)
    (planted / "bash").write_text(CANARY_SCRIPT.format(canary=canary))
    (planted / "bash").chmod(0o755)
    local_tier()

    # When an event points PATH at it
    response, event = post(provisioning_detail(builder="LOCAL", override={"PATH": str(planted)}))

    # Then the planted program never runs, and the event is refused
    assert not canary.exists(), "the planted program ran"
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [FIELDS["environmentOverride"]]
    assert event is None


def test_codebuild_keeps_accepting_lowercase_names_that_are_not_reserved(db, post, canary):
    # The control plane's own tenant/secret/context and any other plain name still reach CodeBuild builds
    TierFactory(name="BASIC")
    detail = provisioning_detail(override={"custom_flag": "1"})
    detail["planConfig"]["sizeConfig"] = {"maxUsers": 50}

    response, event = post(detail)

    assert response.status_code == 202, response.content
    event.refresh_from_db()
    assert event.status == EventStatus.PROCESSED, event.last_error


# --- The tier decides which builders an event may pick; LOCAL must be enabled --------------------------


@pytest.mark.parametrize(
    ("builders", "enabled", "reason"),
    [
        (["CODE_BUILD"], True, "Tier BASIC does not allow builder LOCAL (builderConfig.type); it allows CODE_BUILD."),
        (["LOCAL"], False, "The LOCAL builder is disabled on this deployment (LOCAL_BUILDER_ENABLED)."),
    ],
    ids=["LOCAL for a CodeBuild-only tier", "LOCAL disabled on the deployment"],
)
def test_an_event_may_only_pick_a_builder_its_tier_allows_and_the_deployment_enables(
    db, post, canary, canary_command, builders, enabled, reason
):
    # Given a tier whose project would create the canary on the LOCAL runner
    local_tier(project=canary_command, builders=builders)

    # When an event asks for the LOCAL builder
    with override_settings(LOCAL_BUILDER_ENABLED=enabled):
        response, event = post(provisioning_detail(builder="LOCAL"))

    # Then nothing runs, and the event is refused with the reason; no tenant or build is stored
    assert not canary.exists(), "the tier's command ran"
    assert response.status_code == 202
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED
    assert event.last_error == f"EventRejected: TENANT_PROVISIONING refused: {reason}"
    assert not Tenant.objects.exists()
    assert not Build.objects.exists()


def test_local_names_outside_the_local_rule_fail_the_attempt_before_anything_runs(db, post, canary):
    local_tier()
    detail = provisioning_detail(builder="LOCAL", override={"custom_flag": WRITE_CANARY.format(canary=canary)})

    response, _event = post(detail)

    assert_nothing_ran(canary, detail["tenant"]["id"])
    assert not Build.objects.exists()
    assert response.status_code == 202
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason.startswith(
        "Environment variable 'custom_flag' in builderConfig.config.environmentOverride is not allowed for a "
        "LOCAL build: use upper-case letters"
    )


# --- A LOCAL tier's projects come from LOCAL_BUILD_COMMANDS ----------------------------------------------

ROGUE_COMMAND = "manage.py shell -c \"open('/tmp/pwned', 'w').write('x')\""


@pytest.mark.django_db
def test_admin_refuses_a_local_tier_command_outside_the_allow_list(client):
    client.force_login(SuperuserFactory())
    data = admin_tier_form(name="ROGUE", provision_project=ROGUE_COMMAND, allowed_builders=["LOCAL"])

    response = client.post(reverse("admin:tenants_tier_add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["provision_project"] == [
        "A LOCAL tier may only run a command of LOCAL_BUILD_COMMANDS "
        "(demo/build.sh provision; demo/build.sh deprovision; demo/build.sh update; demo/build.sh suspend; "
        "demo/build.sh resume)."
    ]
    assert not Tier.objects.exists()


@pytest.mark.django_db
def test_admin_refuses_a_reserved_variable_on_a_local_tier(client):
    client.force_login(SuperuserFactory())
    data = admin_tier_form(
        name="DEMO",
        provision_project="demo/build.sh provision",
        deprovision_project="demo/build.sh deprovision",
        allowed_builders=["LOCAL"],
        variables=(("BASH_ENV", "$(id)", "PLAINTEXT"),),
    )

    response = client.post(reverse("admin:tenants_tier_add"), data)

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.non_form_errors()
    assert errors == ["'BASH_ENV' is reserved: it changes how a shell starts or runs commands."]
    assert not Tier.objects.exists()


@pytest.mark.django_db
def test_api_refuses_a_local_tier_command_outside_the_allow_list():
    client = APIClient()
    client.force_authenticate(SuperuserFactory())

    created = client.post(
        "/api/tiers/",
        {"name": "ROGUE", "provision_project": ROGUE_COMMAND, "allowed_builders": ["LOCAL"]},
        format="json",
    )
    reserved_variable = client.post(
        "/api/tiers/",
        {
            "name": "DEMO",
            "provision_project": "demo/build.sh provision",
            "allowed_builders": ["LOCAL"],
            "variables": [{"name": "LD_PRELOAD", "value": "/tmp/evil.so"}],
        },
        format="json",
    )
    local_disabled = TierFactory(name="CB")
    with override_settings(LOCAL_BUILDER_ENABLED=False):
        widened = client.patch("/api/tiers/CB/", {"allowed_builders": ["CODE_BUILD", "LOCAL"]}, format="json")

    assert created.status_code == 400
    assert created.json()["error"]["fields"] == {
        "provision_project": [
            "A LOCAL tier may only run a command of LOCAL_BUILD_COMMANDS "
            "(demo/build.sh provision; demo/build.sh deprovision; demo/build.sh update; demo/build.sh suspend; "
            "demo/build.sh resume)."
        ]
    }
    assert not Tier.objects.filter(name="ROGUE").exists()
    assert reserved_variable.status_code == 400
    assert reserved_variable.json()["error"]["fields"] == {
        "variables": ["'LD_PRELOAD' is reserved: it changes what the dynamic loader or the C library loads."]
    }
    assert not Tier.objects.filter(name="DEMO").exists()
    assert widened.status_code == 400
    assert widened.json()["error"]["fields"] == {
        "allowed_builders": ["The LOCAL builder is disabled on this deployment (LOCAL_BUILDER_ENABLED)."]
    }
    local_disabled.refresh_from_db()
    assert local_disabled.allowed_builders == ["CODE_BUILD"]


def test_a_command_forced_into_the_database_is_refused_at_run_time(db, post, canary, build_root):
    # Given a LOCAL tier whose project was written straight into the database: a script under the build
    # root that is not in LOCAL_BUILD_COMMANDS
    script = build_root / "maintenance.sh"
    script.write_text(CANARY_SCRIPT.format(canary=canary))
    script.chmod(0o755)
    local_tier(project="maintenance.sh")
    detail = provisioning_detail(builder="LOCAL")

    # When an event provisions a tenant on it
    with override_settings(LOCAL_BUILD_ROOT=str(build_root)):
        response, _event = post(detail)

    # Then the build is refused before anything runs, with the reason on the tenant
    assert_nothing_ran(canary, detail["tenant"]["id"])
    assert response.status_code == 202
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == (
        "Provision build failed: LOCAL build command 'maintenance.sh' is not one of LOCAL_BUILD_COMMANDS."
    )


def test_staff_retry_of_an_exploit_stored_before_the_fix_runs_nothing(db, canary, aws, no_outcome_receiver):
    # Given a tenant whose stored request carries the exploit, on a tier that allows LOCAL
    local_tier()
    tenant = TenantFactory(
        status=TenantStatus.PROVISION_FAILED,
        builder_config={"type": "LOCAL", "config": {"environmentOverride": {"BASH_ENV": f"$(id > {canary})"}}},
    )

    # When staff retry its provisioning
    tenant_retry_provisioning(tenant=tenant, actor_user=SuperuserFactory())

    # Then nothing ran and the attempt fails with the reason
    assert_nothing_ran(canary, tenant.pk)
    tenant.refresh_from_db()
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert tenant.status_reason == (
        "Environment variable 'BASH_ENV' in builderConfig.config.environmentOverride is reserved: "
        "it changes how a shell starts or runs commands."
    )


# --- A LOCAL build never runs as root -----------------------------------------------------------------

IDENTITY_SCRIPT = """\
#!/bin/sh
{
  echo "BUILD_UID=$(id -u)"
  echo "BUILD_GROUPS=$(id -G)"
  echo "BUILD_HOME=$HOME"
  echo "BUILD_PATH=$PATH"
  echo "PASSED=${DEMO_PASSED:-none}"
  echo "CODEBUILD_BUILD_POSTBUILD=1"
} >> "$ORCHESTRATOR_OUTPUT_FILE"
touch "$HOME/written" "$TMPDIR/written"
"""


@RUNS_AS_ROOT
def test_a_root_worker_runs_the_build_as_the_unprivileged_user_with_a_fixed_base(
    transactional_db, aws, live_server, client, build_root, monkeypatch
):
    # Given a root worker whose environment has its own PATH/HOME and a variable it passes through
    script = build_root / "identity.sh"
    script.write_text(IDENTITY_SCRIPT)
    script.chmod(0o755)
    local_tier(project="identity.sh")
    monkeypatch.setenv("DEMO_PASSED", "yes")
    nobody = pwd.getpwnam("nobody")

    # When a tenant is provisioned with the LOCAL builder
    with override_settings(
        ORCHESTRATOR_BASE_URL=live_server.url,
        EVENT_EMULATOR_RELAY=False,  # the tenant stops at DEPLOYING (see the live_intake fixture)
        LOCAL_BUILD_ROOT=str(build_root),
        LOCAL_BUILD_COMMANDS=["identity.sh"],
        LOCAL_BUILD_PASSTHROUGH_ENV=["PATH", "HOME", "DEMO_PASSED"],
    ):
        detail = provisioning_detail(builder="LOCAL")
        body = envelope(DetailType.TENANT_PROVISIONING, detail)
        response = client.post(
            "/api/events/", data=json.dumps(body), content_type="application/json", HTTP_X_API_KEY=API_KEY
        )

    # Then the command ran as nobody, without supplementary groups, with the runner's PATH and a scratch HOME
    # it could write to; the passed-through variable arrived, the worker's PATH and HOME did not
    assert response.status_code == 202
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.DEPLOYING, tenant.status_reason
    sent = ReceivedEvent.objects.get(detail_type=DetailType.TENANT_PROVISIONING_SUCCESS).envelope["detail"]
    assert sent["BUILD_UID"] == str(nobody.pw_uid) != "0"
    assert sent["BUILD_GROUPS"] == str(nobody.pw_gid)
    assert sent["BUILD_PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert sent["BUILD_HOME"].startswith(tempfile.gettempdir())
    assert sent["BUILD_HOME"].endswith("/home")
    assert sent["BUILD_HOME"] != os.environ["HOME"]
    assert sent["PASSED"] == "yes"


@RUNS_AS_ROOT
@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("no-such-user", "The worker runs as root and LOCAL_BUILD_USER 'no-such-user' is not a user of this machine"),
        ("root", "LOCAL_BUILD_USER 'root' is root (or in group root)"),
        ("0", "LOCAL_BUILD_USER '0' is root (or in group root)"),
    ],
)
def test_a_root_worker_that_cannot_step_down_runs_nothing(db, post, canary, canary_command, user, reason):
    local_tier(project=canary_command)
    detail = provisioning_detail(builder="LOCAL")

    with override_settings(LOCAL_BUILD_USER=user):
        post(detail)

    assert_nothing_ran(canary, detail["tenant"]["id"])
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert reason in tenant.status_reason


@RUNS_AS_ROOT
def test_a_script_the_build_user_cannot_read_fails_the_build_with_the_reason(db, post, build_root):
    # Given an allow-listed script that only root may read (a root worker's own access check would pass)
    script = build_root / "private.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o700)
    local_tier(project="private.sh")
    detail = provisioning_detail(builder="LOCAL")

    with override_settings(LOCAL_BUILD_ROOT=str(build_root), LOCAL_BUILD_COMMANDS=["private.sh"]):
        post(detail)

    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    assert tenant.status == TenantStatus.PROVISION_FAILED
    assert f"LOCAL build command '{script}' cannot be read and run by LOCAL_BUILD_USER 'nobody'" in tenant.status_reason
