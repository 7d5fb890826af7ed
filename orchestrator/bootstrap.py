"""Idempotent creation of the AWS side: DynamoDB tables, the event bus, CodeBuild projects.

Each ``ensure_*`` step creates what is missing and leaves what exists alone, so ``bootstrap_aws`` can
run on every start. Against an emulator (an endpoint is configured) it also supplies what the emulator
needs to accept the calls (a placeholder service role); against real AWS it never invents resources
it cannot create properly (CodeBuild projects need ``CODEBUILD_SERVICE_ROLE_ARN``).
"""

import logging
import re
from collections.abc import Callable

from botocore.exceptions import ClientError
from django.conf import settings

from orchestrator.aws import aws_client, endpoint_url

logger = logging.getLogger(__name__)

EMULATOR_ROLE_ARN = "arn:aws:iam::123456789012:role/orchestrator-codebuild"
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$")
# A project that only reports its environment: real projects come from the platform team's IaC.
PLACEHOLDER_BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - env | sort\n"


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _table_definitions() -> dict[str, str]:
    return {settings.DYNAMODB_TENANT_TABLE: "tenantId", settings.DYNAMODB_TIER_TABLE: "tier"}


def ensure_tables() -> list[str]:
    client = aws_client("dynamodb")
    created = []
    for table, key in _table_definitions().items():
        try:
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            created.append(table)
        except ClientError as error:
            if _error_code(error) != "ResourceInUseException":
                raise
    return created


def delete_tables() -> None:
    client = aws_client("dynamodb")
    for table in _table_definitions():
        try:
            client.delete_table(TableName=table)
        except ClientError as error:
            if _error_code(error) != "ResourceNotFoundException":
                raise


def ensure_event_bus() -> list[str]:
    if settings.EVENT_BUS_NAME == "default":
        return []
    client = aws_client("events")
    try:
        client.describe_event_bus(Name=settings.EVENT_BUS_NAME)
        return []
    except ClientError as error:
        if _error_code(error) != "ResourceNotFoundException":
            raise
    client.create_event_bus(Name=settings.EVENT_BUS_NAME)
    return [settings.EVENT_BUS_NAME]


def codebuild_service_role() -> str | None:
    if settings.CODEBUILD_SERVICE_ROLE_ARN:
        return settings.CODEBUILD_SERVICE_ROLE_ARN
    return EMULATOR_ROLE_ARN if endpoint_url("codebuild") else None


def ensure_codebuild_projects() -> list[str]:
    """Create the CodeBuild projects the tier mapping names, where missing and where we can."""
    from tenants.selectors import tier_project_names

    role = codebuild_service_role()
    names = sorted(name for name in tier_project_names() if PROJECT_NAME.match(name))
    if not names:
        return []
    if role is None:
        logger.info("CODEBUILD_SERVICE_ROLE_ARN unset: not creating CodeBuild projects %s", names)
        return []
    client = aws_client("codebuild")
    existing = {project["name"] for project in client.batch_get_projects(names=names).get("projects", [])}
    created = []
    source = {"type": "NO_SOURCE", "buildspec": PLACEHOLDER_BUILDSPEC}
    if endpoint_url("codebuild"):
        source["location"] = "emulator"  # moto insists on a location even for NO_SOURCE; real AWS does not
    for name in names:
        if name in existing:
            continue
        client.create_project(
            name=name,
            source=source,
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_SMALL",
            },
            serviceRole=role,
        )
        created.append(name)
    return created


# Steps run in order; other apps append theirs (e.g. the EventBridge -> intake wiring).
BOOTSTRAP_STEPS: list[tuple[str, Callable[[], list[str]]]] = [
    ("dynamodb tables", ensure_tables),
    ("event bus", ensure_event_bus),
    ("codebuild projects", ensure_codebuild_projects),
]


def _ensure_intake_wiring() -> list[str]:
    from events.wiring import ensure_intake_wiring

    return ensure_intake_wiring()


BOOTSTRAP_STEPS.append(("eventbridge -> intake wiring", _ensure_intake_wiring))


def bootstrap_aws() -> dict[str, list[str]]:
    """Run every step; returns what each created (empty lists on a second run)."""
    return {name: step() for name, step in BOOTSTRAP_STEPS}
