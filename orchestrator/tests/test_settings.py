import subprocess
import sys

import pytest
from django.conf import settings

CHECK = "import django; django.setup(); print('started')"


def start_production(**environment: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "orchestrator.settings.production", **environment}
    return subprocess.run(
        [sys.executable, "-c", CHECK], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
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
    commands = "['demo/build.sh provision', 'demo/build.sh deprovision']" if enabled else "[]"
    assert result.stdout.strip() == f"{enabled} {commands} nobody"
