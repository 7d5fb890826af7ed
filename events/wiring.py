"""EventBridge -> intake wiring, as a user deploys it on AWS (``bootstrap_aws`` steps; idempotent).

- the **event bus** ``EVENT_BUS_NAME`` (unless it is ``default``);

- a **connection** with API-key auth: header ``INTAKE_API_KEY_HEADER``, key = the first of
  ``INTAKE_API_KEYS`` (re-applied on every run, so a rotated key reaches EventBridge);
- an **API destination** ``POST {ORCHESTRATOR_BASE_URL}/api/events/`` limited to
  ``EVENT_API_DESTINATION_RATE_PER_SECOND`` invocations per second;
- a **rule** on ``EVENT_BUS_NAME`` matching the catalogue's detail-types (less the requests of a dialect
  that is off), a second rule on the ``default`` bus for AWS's own ``CodeBuild Build State Change`` (source
  ``aws.codebuild``), and, with the ``sbt`` dialect on, a third on sbt-aws's bus (``SBT_EVENT_BUS_NAME``)
  matching its control plane's requests by source and detail-type, as its EventManager's rules do (removed
  again when the dialect is turned off);
- each rule targets the API destination, with a retry policy (24 h, as EventBridge allows) and an SQS
  **dead-letter queue** for what the intake refuses (4xx) or what never got through.

Emulator (moto) limitation, checked against moto 5.2.5 with ``MOTO_EVENTS_INVOKE_HTTP=true``: moto calls
an API destination with an **empty body** and **without the connection's auth header** (only the
target's ``HttpParameters`` headers and query string are sent), ignores the answer (no retries, no
dead-letter queue), and fails ``PutEvents`` as a whole when the endpoint cannot be reached. So against an
emulator (an AWS endpoint is configured) and with ``EVENT_EMULATOR_RELAY`` on (the default), the rules
target a **relay queue** instead, with an input transformer that keeps the full envelope; the relay
(``events.emulator``, beat task ``events.relay_emulator_events``) posts each queued event to the intake
over HTTP with the API key header, as the API destination would. The connection and API destination
are still created, so the resources match AWS. Against real AWS nothing of this applies.
"""

import json
import logging
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings

from events import dialects
from events.catalogue import BUS_DETAIL_TYPES, CODEBUILD_SOURCE, DetailType
from events.dialects import sbt
from orchestrator.aws import aws_client, endpoint_url

logger = logging.getLogger(__name__)

EMULATOR_ROLE_ARN = "arn:aws:iam::123456789012:role/orchestrator-eventbridge-invoke"
TARGET_ID = "orchestrator-intake"
# Retry like EventBridge's maximum: 24 hours, 185 attempts; then the dead-letter queue.
RETRY_POLICY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
# The full envelope (moto's default template for queues drops ``account``).
RELAY_INPUT_PATHS = {
    "id": "$.id",
    "detailType": "$.detail-type",
    "source": "$.source",
    "account": "$.account",
    "time": "$.time",
    "region": "$.region",
    "resources": "$.resources",
    "detail": "$.detail",
}
RELAY_INPUT_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detailType>", "source": "<source>", '
    '"account": "<account>", "time": "<time>", "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)


def resource_names() -> dict[str, str]:
    base = settings.EVENT_INTAKE_RESOURCE_NAME
    return {
        "connection": base,
        "destination": base,
        "rule": base,
        "codebuild_rule": f"{base}-codebuild",
        "sbt_rule": f"{base}-sbt",
        "dead_letter_queue": f"{base}-dlq",
        "relay_queue": f"{base}-relay",
    }


def intake_url() -> str:
    return settings.ORCHESTRATOR_BASE_URL.rstrip("/") + "/api/events/"


def is_emulator() -> bool:
    return bool(endpoint_url("events"))


def relay_enabled() -> bool:
    return is_emulator() and settings.EVENT_EMULATOR_RELAY


def bus_rule_pattern() -> dict[str, Any]:
    refused = dialects.refused_detail_types()
    return {"detail-type": [name for name in BUS_DETAIL_TYPES if name not in refused]}


def codebuild_rule_pattern() -> dict[str, Any]:
    return {"source": [CODEBUILD_SOURCE], "detail-type": [DetailType.CODEBUILD_BUILD_STATE_CHANGE]}


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _auth_parameters() -> dict[str, Any]:
    return {
        "ApiKeyAuthParameters": {
            "ApiKeyName": settings.INTAKE_API_KEY_HEADER,
            "ApiKeyValue": settings.INTAKE_API_KEYS[0],
        }
    }


def _ensure_connection(client: Any, created: list[str]) -> str:
    name = resource_names()["connection"]
    try:
        client.describe_connection(Name=name)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        response = client.create_connection(
            Name=name,
            Description="Orchestrator intake: API key header",
            AuthorizationType="API_KEY",
            AuthParameters=_auth_parameters(),
        )
        created.append(f"connection {name}")
        return response["ConnectionArn"]
    # Re-apply the key on every run: the secret cannot be read back to compare, and a rotated key
    # (new first entry of INTAKE_API_KEYS) must reach EventBridge.
    response = client.update_connection(Name=name, AuthorizationType="API_KEY", AuthParameters=_auth_parameters())
    return response["ConnectionArn"]


def _ensure_destination(client: Any, connection_arn: str, created: list[str]) -> str:
    name = resource_names()["destination"]
    wanted = {
        "ConnectionArn": connection_arn,
        "InvocationEndpoint": intake_url(),
        "HttpMethod": "POST",
        "InvocationRateLimitPerSecond": settings.EVENT_API_DESTINATION_RATE_PER_SECOND,
    }
    try:
        current = client.describe_api_destination(Name=name)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        response = client.create_api_destination(Name=name, Description="Orchestrator event intake", **wanted)
        created.append(f"api destination {name} -> {intake_url()}")
        return response["ApiDestinationArn"]
    if any(current.get(key) != value for key, value in wanted.items()):
        client.update_api_destination(Name=name, **wanted)
    return current["ApiDestinationArn"]


def _ensure_queue(
    client: Any, name: str, created: list[str], attributes: dict[str, str] | None = None
) -> tuple[str, str]:
    try:
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if _code(error) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        url = client.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"]
        created.append(f"queue {name}")
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # EventBridge may send to the queue (dead letters from the rules, or relayed events).
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowEventBridge",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            }
        ],
    }
    client.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy), **(attributes or {})})
    return url, arn


def _ensure_rule(
    client: Any, *, name: str, bus: str, pattern: dict[str, Any], description: str, created: list[str]
) -> None:
    try:
        client.describe_rule(Name=name, EventBusName=bus)
        exists = True
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        exists = False
    client.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps(pattern), State="ENABLED", Description=description
    )
    if not exists:
        created.append(f"rule {name} on {bus}")


def _ensure_bus(client: Any, name: str, created: list[str]) -> None:
    """sbt-aws's bus belongs to its control plane; only an emulator gets one created here."""
    if name == "default" or not is_emulator():
        return
    try:
        client.describe_event_bus(Name=name)
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        client.create_event_bus(Name=name)
        created.append(f"event bus {name}")


def _remove_rule(client: Any, *, name: str, bus: str) -> None:
    """Take a rule and its targets away (a dialect that was turned off); nothing to do if it is absent."""
    try:
        targets = client.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"]
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
        return
    if targets:
        client.remove_targets(Rule=name, EventBusName=bus, Ids=[target["Id"] for target in targets])
    client.delete_rule(Name=name, EventBusName=bus)


def _intake_target(destination_arn: str, dead_letter_arn: str) -> dict[str, Any]:
    role = settings.EVENT_INTAKE_ROLE_ARN or (EMULATOR_ROLE_ARN if is_emulator() else "")
    target: dict[str, Any] = {
        "Id": TARGET_ID,
        "Arn": destination_arn,
        "RetryPolicy": RETRY_POLICY,
        "DeadLetterConfig": {"Arn": dead_letter_arn},
    }
    if role:
        target["RoleArn"] = role
    return target


def _relay_target(relay_arn: str) -> dict[str, Any]:
    return {
        "Id": TARGET_ID,
        "Arn": relay_arn,
        "InputTransformer": {"InputPathsMap": RELAY_INPUT_PATHS, "InputTemplate": RELAY_INPUT_TEMPLATE},
    }


def ensure_event_bus() -> list[str]:
    """The bus the orchestrator publishes to and the intake rule listens on (``EVENT_BUS_NAME``)."""
    if settings.EVENT_BUS_NAME == "default":
        return []
    client = aws_client("events")
    try:
        client.describe_event_bus(Name=settings.EVENT_BUS_NAME)
        return []
    except ClientError as error:
        if _code(error) != "ResourceNotFoundException":
            raise
    client.create_event_bus(Name=settings.EVENT_BUS_NAME)
    return [settings.EVENT_BUS_NAME]


def ensure_intake_wiring() -> list[str]:
    """Create or update the connection, API destination, rules, targets and queues; returns what was new."""
    if not settings.EVENT_INTAKE_WIRING:
        return []
    if not settings.INTAKE_API_KEYS:
        logger.warning("INTAKE_API_KEYS is empty: not wiring EventBridge to the intake (it would be refused)")
        return []
    if not is_emulator() and not settings.EVENT_INTAKE_ROLE_ARN:
        logger.warning("EVENT_INTAKE_ROLE_ARN is unset: EventBridge needs a role to invoke the API destination")
    events = aws_client("events")
    sqs = aws_client("sqs")
    names = resource_names()
    created: list[str] = []

    connection_arn = _ensure_connection(events, created)
    destination_arn = _ensure_destination(events, connection_arn, created)
    _, dead_letter_arn = _ensure_queue(sqs, names["dead_letter_queue"], created)
    if relay_enabled():
        redrive = json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": "185"})
        _, relay_arn = _ensure_queue(
            sqs, names["relay_queue"], created, {"VisibilityTimeout": "30", "RedrivePolicy": redrive}
        )
        target = _relay_target(relay_arn)
    else:
        target = _intake_target(destination_arn, dead_letter_arn)

    rules = [
        (names["rule"], settings.EVENT_BUS_NAME, bus_rule_pattern(), "Catalogue detail-types to the intake"),
        (names["codebuild_rule"], "default", codebuild_rule_pattern(), "CodeBuild state changes to the intake"),
    ]
    if dialects.dialect_enabled(dialects.SBT):
        _ensure_bus(events, sbt.sbt_event_bus(), created)
        rules.append((names["sbt_rule"], sbt.sbt_event_bus(), sbt.bus_rule_pattern(), "sbt-aws requests to the intake"))
    else:
        _remove_rule(events, name=names["sbt_rule"], bus=sbt.sbt_event_bus())
    for name, bus, pattern, description in rules:
        _ensure_rule(events, name=name, bus=bus, pattern=pattern, description=description, created=created)
        events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
    return created
