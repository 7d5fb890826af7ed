"""Fixtures for the fault drills: a live stack (gunicorn, Celery worker, beat, embedded Redis) on the
test database, and the BASIC tier on moto's CodeBuild.

Drills that run several processes sharing one database need PostgreSQL (``DATABASE_URL``); with SQLite
they are skipped with that reason. Every process's log is kept in ``$TEST_ARTIFACTS_DIR/faults/<test>/``.
"""

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

from devstack.stack import LiveStack
from tests.faults.support import API_KEY, PROVISION_PROJECT, TIER

NEEDS_POSTGRES = (
    "this drill runs the web server and Celery workers as separate processes sharing one database: "
    "it needs PostgreSQL (set DATABASE_URL=postgres://...)"
)


@pytest.fixture
def postgres_url(transactional_db: None) -> str:
    """The URL of the (committed-to) test database, for the stack's processes; skips without PostgreSQL."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(NEEDS_POSTGRES)
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or "5432"
    return f"postgres://{credentials}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def drill_logs(request: pytest.FixtureRequest, artifacts_dir: Path) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    path = artifacts_dir / "faults" / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def stack_env(live_services: dict[str, str]) -> dict[str, str]:
    """What the stack's processes need to see the same AWS side and tables as this test process."""
    env = {
        "DYNAMODB_TENANT_TABLE": settings.DYNAMODB_TENANT_TABLE,
        "DYNAMODB_TIER_TABLE": settings.DYNAMODB_TIER_TABLE,
        "EVENT_EMULATOR_RELAY": "false",
        "LOG_LEVEL": "INFO",
    }
    if live_services["dynamodb_url"] != live_services["moto_url"]:
        env["AWS_ENDPOINT_URL_DYNAMODB"] = live_services["dynamodb_url"]
    if settings.CODEBUILD_SERVICE_ROLE_ARN:
        env["CODEBUILD_SERVICE_ROLE_ARN"] = settings.CODEBUILD_SERVICE_ROLE_ARN
    return env


@pytest.fixture
def make_stack(postgres_url: str, aws: dict[str, str], drill_logs: Path) -> Iterator[Callable[..., LiveStack]]:
    """``make_stack(extra_env=..., database_url=..., redis_url=...)``: a LiveStack with its own embedded Redis
    (or another stack's), on the test database and the test session's moto, with the test settings' secret key
    and intake API key."""
    stacks: list[LiveStack] = []

    def make(
        *, extra_env: dict[str, str] | None = None, database_url: str | None = None, redis_url: str | None = None
    ) -> LiveStack:
        stack = LiveStack(
            database_url=database_url or postgres_url,
            redis_url=redis_url,
            aws_endpoint_url=aws["moto_url"],
            settings_module="orchestrator.settings.production",
            secret_key=settings.SECRET_KEY,
            api_key=API_KEY,
            extra_env={**stack_env(aws), **(extra_env or {})},
            log_dir=drill_logs / f"stack{len(stacks)}",
        )
        stacks.append(stack)
        stack.__enter__()
        return stack

    yield make
    for stack in stacks:
        stack.close()


@pytest.fixture
def basic_tier(transactional_db: None, aws: dict[str, str]) -> str:
    """Tier BASIC whose provisioning project exists in moto's CodeBuild."""
    from tenants.bootstrap import ensure_codebuild_projects
    from tenants.models import Tier

    Tier.objects.update_or_create(
        name=TIER,
        defaults={"provision_project": PROVISION_PROJECT, "deprovision_project": "orchestrator-basic-deprovision"},
    )
    ensure_codebuild_projects()
    return TIER
