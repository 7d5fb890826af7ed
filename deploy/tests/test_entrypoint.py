"""The image's entry point (deploy/entrypoint.py), run as the container runs it: a process that gets the
database's parts in its environment and executes the command with DATABASE_URL built from them."""

import os
import subprocess
import sys
from pathlib import Path

import environ
import pytest
from django.conf import settings
from django.db import connection

ENTRYPOINT = Path(settings.BASE_DIR) / "deploy" / "entrypoint.py"
PRINT_URL = [sys.executable, "-c", "import os; print(os.environ['DATABASE_URL'])"]
PARTS = {
    "DATABASE_HOST": "db.internal",
    "DATABASE_PORT": "6543",
    "DATABASE_NAME": "orchestrator",
    "DATABASE_USER": "orchestrator",
    "DATABASE_PASSWORD": "p@ss:w/rd%?#&x",
}


def run(command: list[str], **variables: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("DATABASE_")}
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *command],
        env={**environment, **variables},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        timeout=60,
    )


def test_builds_database_url_from_the_parts_with_the_password_intact():
    result = run(PRINT_URL, **PARTS)

    assert result.returncode == 0, result.stderr
    parsed = environ.Env.db_url_config(result.stdout.strip())
    assert parsed["ENGINE"] == "django.db.backends.postgresql"
    assert (parsed["HOST"], parsed["PORT"], parsed["NAME"]) == ("db.internal", 6543, "orchestrator")
    assert (parsed["USER"], parsed["PASSWORD"]) == ("orchestrator", "p@ss:w/rd%?#&x")
    assert parsed["OPTIONS"] == {"sslmode": "require"}


def test_leaves_a_given_database_url_alone():
    result = run(PRINT_URL, DATABASE_URL="postgres://given@elsewhere:5432/db", **PARTS)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "postgres://given@elsewhere:5432/db"


def test_refuses_to_start_with_only_some_of_the_parts():
    result = run(PRINT_URL, DATABASE_HOST="db.internal", DATABASE_NAME="orchestrator")

    assert result.returncode != 0
    assert "DATABASE_USER, DATABASE_PASSWORD" in result.stderr


@pytest.mark.django_db
def test_the_built_url_connects_django_to_the_database():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL)")
    params = connection.get_connection_params()
    check = "from django.db import connection; connection.ensure_connection(); print(connection.settings_dict['NAME'])"

    result = run(
        [sys.executable, "manage.py", "shell", "-c", check],
        DATABASE_HOST=params["host"],
        DATABASE_PORT=str(params["port"]),
        DATABASE_NAME=params["dbname"],
        DATABASE_USER=params["user"],
        DATABASE_PASSWORD=params.get("password") or "unused-with-trust-auth",
        DATABASE_SSLMODE="prefer",  # the local server may have no TLS; RDS gets the default, require
        DJANGO_SETTINGS_MODULE="orchestrator.settings.local",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == params["dbname"]
