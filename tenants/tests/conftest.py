import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from events.catalogue import DetailType
from events.models import ReceivedEvent
from orchestrator.aws import aws_client
from tenants.bootstrap import ensure_codebuild_projects
from tenants.models import Build, Tenant, TenantStatus, VariableType
from tenants.services.lifecycle import tenant_transition
from tenants.services.sync import from_dynamodb
from tenants.tests.factories import TierFactory, TierVariableFactory, tenant_document

API_KEY = "test-intake-key"


def envelope(detail_type: str, detail: dict[str, Any], *, event_id: str | None = None, source: str = "") -> dict:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source or ("aws.codebuild" if detail_type == "CodeBuild Build State Change" else "saas.tests"),
        "account": "123456789012",
        "time": "2025-01-15T10:30:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def provisioning_detail(
    *,
    tenant_id: str | None = None,
    key: str = "acme",
    tier: str = "BASIC",
    builder: str = "CODE_BUILD",
    override: dict[str, Any] | None = None,
    size: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tenant_id = tenant_id or str(uuid.uuid4())
    document = tenant_document(tenant_id, key)
    overrides = {
        "tenant": json.dumps(document, separators=(",", ":")),
        "secret": "hmac-secret-value",
        "context": "ctx-123",
    }
    overrides.update(override or {})
    return {
        "tenant": document,
        "planConfig": {"id": "plan-basic", "name": "Basic", "tier": tier, "sizeConfig": size or {"MAX_USERS": 50}},
        "builderConfig": {"type": builder, "config": {"environmentOverride": overrides}},
        "appConfig": {"preferredSubdomain": key},
    }


def outcome_detail(tenant_id: str, build_id: str = "", *, succeeding: str = "1", **extra: str) -> dict[str, Any]:
    detail = {
        "tenant": json.dumps({"id": tenant_id, "key": "acme"}),
        "secret": "hmac-secret-value",
        "context": "ctx-123",
        "API_ENDPOINT": "http://127.0.0.1:9/webhook",
        "TF_STATE_BUCKET": "bucket",
        "TF_KEY": "tenants/acme.tfstate",
        "CODEBUILD_BUILD_SUCCEEDING": succeeding,
        "CODEBUILD_BUILD_POSTBUILD": "1",
        **extra,
    }
    if build_id:
        detail["CODEBUILD_BUILD_ID"] = build_id
    return detail


def provisioning_started(send_event: Callable[[dict[str, Any]], ReceivedEvent]) -> tuple[Tenant, Build]:
    """A new tenant sent through the intake (TENANT_PROVISIONING): PROVISIONING, its build started."""
    detail = provisioning_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    return tenant, Build.objects.get(tenant=tenant)


def provisioning_failed(send_event: Callable[[dict[str, Any]], ReceivedEvent]) -> tuple[Tenant, Build]:
    """A tenant whose provisioning build reported failure (TENANT_PROVISIONING_FAILURE): PROVISION_FAILED."""
    tenant, build = provisioning_started(send_event)
    failure = outcome_detail(tenant.pk, build.build_id, succeeding="0")
    send_event(envelope(DetailType.TENANT_PROVISIONING_FAILURE, failure))
    return tenant, build


def admin_tier_form(*, variables: tuple[tuple[str, str, str], ...] = (), **fields: Any) -> dict[str, Any]:
    """The tier admin's form as a browser posts it, with its variables inline: ``(name, value, type)``."""
    data = {
        "deprovision_project": "",
        "allowed_builders": ["CODE_BUILD"],
        "description": "",
        **fields,
        "variables-TOTAL_FORMS": str(len(variables)),
        "variables-INITIAL_FORMS": "0",
        "variables-MIN_NUM_FORMS": "0",
        "variables-MAX_NUM_FORMS": "1000",
    }
    for index, variable in enumerate(variables):
        keys = (f"variables-{index}-name", f"variables-{index}-value", f"variables-{index}-type")
        data.update(zip(keys, variable, strict=True))
    return data


@pytest.fixture
def send_event(client, django_capture_on_commit_callbacks):
    """POST an envelope to the real intake; everything it queues (processing, sync, outbox) runs."""

    def send(body: dict[str, Any]) -> ReceivedEvent:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/api/events/", data=json.dumps(body), content_type="application/json", HTTP_X_API_KEY=API_KEY
            )
        assert response.status_code in (200, 202), response.content
        return ReceivedEvent.objects.get(event_id=body["id"])

    return send


@pytest.fixture
def run_commit_hooks(django_capture_on_commit_callbacks):
    """Run a block and then what it queued for after commit (tasks are eager in tests)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def build_root():
    """A LOCAL_BUILD_ROOT the build's unprivileged user can enter (pytest's tmp_path is private to its user)."""
    path = Path(tempfile.mkdtemp(prefix="orchestrator-build-root-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def codebuild_tier(db, aws):
    """Tier BASIC on CodeBuild (projects created in moto) with a variable of every type."""
    tier = TierFactory(name="BASIC")  # the factory names its projects orchestrator-basic-(de)provision
    TierVariableFactory(tier=tier, name="EKS_CLUSTER_NAME", value="demo-eks")
    TierVariableFactory(tier=tier, name="ACCESS_TOKEN_EXPIRATION", value="3600")
    TierVariableFactory(tier=tier, name="MAX_USERS", value="10")  # overridden by the plan's sizeConfig
    TierVariableFactory(tier=tier, name="DB_PASSWORD", value="/tenants/db-password", type=VariableType.PARAMETER_STORE)
    TierVariableFactory(tier=tier, name="API_TOKEN", value="tenants/api-token", type=VariableType.SECRETS_MANAGER)
    ensure_codebuild_projects()
    return tier


@pytest.fixture
def local_tier(transactional_db, aws):
    """Tier BASIC on the LOCAL builder (``demo/build.sh``)."""
    tier = TierFactory(
        name="BASIC",
        provision_project="demo/build.sh provision",
        deprovision_project="demo/build.sh deprovision",
        allowed_builders=["LOCAL"],
    )
    TierVariableFactory(tier=tier, name="NAMESPACE", value="demo")
    TierVariableFactory(tier=tier, name="DEMO_RECEIVER_URL", value="http://127.0.0.1:8199")
    return tier


@pytest.fixture
def live_intake(live_server):
    """The intake served on a real port; LOCAL builds post their outcomes to it. The emulated bus's relay back
    to the intake stays off: these tests follow a tenant to DEPLOYING, and a relay pass would also carry what
    earlier tests left on the shared queue (the relay has its own tests in events)."""
    with override_settings(ORCHESTRATOR_BASE_URL=live_server.url, EVENT_EMULATOR_RELAY=False):
        yield live_server


@pytest.fixture
def codebuild_calls():
    """Every CodeBuild request as sent over HTTP to moto_server: (operation, JSON body)."""
    client = aws_client("codebuild")
    captured: list[tuple[str, dict]] = []

    def hook(request: Any, **kwargs: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        captured.append((target.rsplit(".", 1)[-1], json.loads(body or "{}")))

    client.meta.events.register("before-send.codebuild", hook)
    yield captured
    client.meta.events.unregister("before-send.codebuild", hook)


def dynamodb_get(table: str, key: dict[str, str]) -> dict[str, Any] | None:
    response = aws_client("dynamodb").get_item(
        TableName=table, Key={name: {"S": value} for name, value in key.items()}, ConsistentRead=True
    )
    return from_dynamodb(response["Item"]) if "Item" in response else None


def tenant_item_of(tenant_id: str) -> dict[str, Any] | None:
    return dynamodb_get(settings.DYNAMODB_TENANT_TABLE, {"tenantId": tenant_id})


def tier_item_of(name: str) -> dict[str, Any] | None:
    return dynamodb_get(settings.DYNAMODB_TIER_TABLE, {"tier": name})


@pytest.fixture
def active_tenant(codebuild_tier, send_event, run_commit_hooks):
    """A tenant provisioned on ``codebuild_tier`` through the intake, then made ACTIVE (the deployment step's move)."""
    detail = provisioning_detail()
    send_event(envelope(DetailType.TENANT_PROVISIONING, detail))
    tenant = Tenant.objects.get(pk=detail["tenant"]["id"])
    build = Build.objects.get(tenant=tenant)
    send_event(envelope(DetailType.TENANT_PROVISIONING_SUCCESS, outcome_detail(tenant.pk, build.build_id)))
    with run_commit_hooks():
        tenant_transition(tenant=tenant, to=TenantStatus.ACTIVE)
    return tenant
