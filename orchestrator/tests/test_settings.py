import re
import subprocess
import sys

import pytest
from django.conf import settings

CHECK = "import django; django.setup(); print('started')"
PRODUCTION = "orchestrator.settings.production"


def start_production(*, code: str = CHECK, **environment: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "orchestrator.settings.production", **environment}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        ({}, "DJANGO_SECRET_KEY must be set"),
        ({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be off"),
        ({"DJANGO_SECRET_KEY": "x" * 50, "LOCAL_BUILDER_ENABLED": "true"}, "LOCAL_BUILDER_ENABLED must be off"),
    ],
)
def test_production_refuses_to_start_misconfigured(environment, reason):
    result = start_production(**environment)
    assert result.returncode != 0
    assert reason in result.stderr


def test_production_starts_with_a_secret_key_and_debug_off():
    result = start_production(DJANGO_SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


def test_production_starts_with_the_local_builder_only_when_explicitly_allowed():
    result = start_production(
        DJANGO_SECRET_KEY="x" * 50, LOCAL_BUILDER_ENABLED="true", LOCAL_BUILDER_ALLOW_IN_PRODUCTION="true"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


@pytest.mark.parametrize(("module", "enabled"), [("base", False), ("production", False), ("local", True)])
def test_the_local_builder_is_off_unless_the_settings_turn_it_on(module, enabled):
    check = (
        "from django.conf import settings; "
        "print(settings.LOCAL_BUILDER_ENABLED, settings.LOCAL_BUILD_COMMANDS, settings.LOCAL_BUILD_USER)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": f"orchestrator.settings.{module}",
        "DJANGO_SECRET_KEY": "x" * 50,
    }
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    phases = ("provision", "deprovision", "update", "suspend", "resume")
    commands = str([f"demo/build.sh {phase}" for phase in phases]) if enabled else "[]"
    assert result.stdout.strip() == f"{enabled} {commands} nobody"


ROOT = settings.BASE_DIR
SECRET = "k3Yq9-" + "production-only-random-looking-secret-value-0123456789"
# What the README's deployment section sets for `check --deploy` to report nothing.
DOCUMENTED_PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": SECRET,
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_SECURE_HSTS_PRELOAD": "true",
}


def run(command: list[str], **environment: str) -> subprocess.CompletedProcess:
    """``command`` in the repository with only ``environment`` (no DJANGO_SETTINGS_MODULE unless given)."""
    env = {"PATH": "/usr/bin:/bin", **environment}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


SHOW_SETTINGS = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "manage.py", "shell", "-c", SHOW_SETTINGS],
        [sys.executable, "-c", f"import orchestrator.wsgi; {SHOW_SETTINGS}"],
        [sys.executable, "-c", f"import django, orchestrator.celery; django.setup(); {SHOW_SETTINGS}"],
    ],
    ids=["manage.py", "wsgi.py", "celery.py"],
)
def test_entry_points_default_to_production_settings(command):
    # without a settings module and a secret key, they refuse to start: production settings
    refused = run(command)
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY must be set in production" in refused.stderr

    started = run(command, DJANGO_SECRET_KEY=SECRET)
    assert started.returncode == 0, started.stderr
    assert started.stdout.split()[-2:] == ["orchestrator.settings.production", "False"]


@pytest.mark.parametrize("key", [settings.LOCAL_SECRET_KEY, "django-insecure-" + "x" * 50], ids=["local", "insecure"])
def test_production_refuses_development_keys(key):
    result = start_production(DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is a development key" in result.stderr


def test_check_deploy_is_clean_with_the_documented_environment():
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], **DOCUMENTED_PRODUCTION_ENV
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_leaves_only_the_opt_in_https_choices_by_default():
    result = run([sys.executable, "manage.py", "check", "--deploy"], DJANGO_SECRET_KEY=SECRET)
    assert result.returncode == 0, result.stderr
    found = set(re.findall(r"\((security\.W\d+)\)", result.stderr + result.stdout))
    assert found == {"security.W005", "security.W008", "security.W021"}  # subdomains, redirect, preload


HSTS_PROBE = (
    "import django; django.setup(); from django.test import Client; c = Client(HTTP_HOST='localhost'); "
    "print(c.get('/docs', HTTP_X_FORWARDED_PROTO='https').headers.get('Strict-Transport-Security')); "
    "print(c.get('/docs').headers.get('Strict-Transport-Security'))"
)


@pytest.mark.parametrize(
    ("environment", "header"),
    [
        ({}, "max-age=31536000"),
        ({"DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS": "true"}, "max-age=31536000; includeSubDomains"),
        ({"DJANGO_SECURE_HSTS_SECONDS": "0"}, "None"),
        ({"DJANGO_SECURE_PROXY_SSL_HEADER": ""}, "None"),  # the proxy's header is not trusted: not HTTPS
    ],
)
def test_production_sends_hsts_on_https_answers(environment, header):
    result = start_production(DJANGO_SECRET_KEY=SECRET, **environment, code=HSTS_PROBE)
    assert result.returncode == 0, result.stderr
    over_https, over_http = result.stdout.split("\n")[:2]
    assert over_https == header
    assert over_http == "None"  # never on plain HTTP


def test_the_local_stack_settings_pass_the_system_checks():
    # scripts/manage (and scripts/run, through devstack) run with the local settings
    result = run(["scripts/manage", "check"])
    assert result.returncode == 0, result.stderr
    shown = run(["scripts/manage", "shell", "-c", SHOW_SETTINGS])
    assert shown.stdout.split()[-2:] == ["orchestrator.settings.local", "True"], shown.stderr


def test_the_local_stack_runs_on_the_local_settings_whatever_the_package_import_defaulted():
    from devstack.__main__ import stack_environment

    # importing the orchestrator package puts the production default into the environment (celery.py)
    env = stack_environment(local={"DJANGO_SECRET_KEY": "generated"}, environ={"DJANGO_SETTINGS_MODULE": PRODUCTION})

    assert env["DJANGO_SETTINGS_MODULE"] == "orchestrator.settings.local"
    assert env["DJANGO_SECRET_KEY"] == "generated"
