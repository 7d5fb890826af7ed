"""The tenants app's AWS resources, two ``bootstrap_aws`` steps (registered in ``TenantsConfig.ready``): the
DynamoDB tables tenants and tiers are mirrored to, and the CodeBuild projects the tier mapping names.

Against an emulator (an endpoint is configured) the projects get what the emulator needs to accept them (a
placeholder service role); against real AWS projects are created only with ``CODEBUILD_SERVICE_ROLE_ARN``
(usually the platform team's IaC owns them).
"""

import logging
import re

from botocore.exceptions import ClientError
from django.conf import settings

from orchestrator.aws import aws_client, endpoint_url
from tenants.selectors import tier_project_names

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


def codebuild_service_role() -> str | None:
    if settings.CODEBUILD_SERVICE_ROLE_ARN:
        return settings.CODEBUILD_SERVICE_ROLE_ARN
    return EMULATOR_ROLE_ARN if endpoint_url("codebuild") else None


def ensure_codebuild_projects() -> list[str]:
    """Create the CodeBuild projects the tier mapping names, where missing and where we can."""
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
