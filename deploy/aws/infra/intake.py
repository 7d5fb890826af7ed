"""EventBridge -> intake: what ``events/wiring.py`` (a ``bootstrap_aws`` step) creates, here as code.

- the bus the orchestrator publishes to and the tenant events arrive on (none for ``default``);
- a connection with API-key auth (header ``intake.api_key_header``, key from the intake key secret);
- an API destination ``POST https://<domain_name>/api/events/`` limited to ``intake.rate_limit_per_second``;
- a rule on the bus for the catalogue's detail-types, and one on the ``default`` bus for AWS's own
  ``CodeBuild Build State Change`` (source ``aws.codebuild``);
- with an ``sbt`` section in the config, a rule on sbt-aws's bus for its control plane's requests
  (``events.dialects.sbt.bus_rule_pattern``);
- each targets the API destination with the full event (no input transform), retried for 24 hours
  (185 attempts, as EventBridge allows), then sent to the dead-letter queue ``<prefix>-dlq``.
"""

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from infra.config import Config

# events.catalogue.BUS_DETAIL_TYPES (the orchestrator's code cannot be imported here; a test keeps them equal).
BUS_DETAIL_TYPES = (
    "TENANT_PROVISIONING",
    "TENANT_DEPROVISIONING",
    "TENANT_PROVISIONING_SUCCESS",
    "TENANT_PROVISIONING_FAILURE",
    "TENANT_DEPLOYMENT",
    "TENANT_DEPLOYMENT_SUCCESS",
    "TENANT_DEPLOYMENT_FAILURE",
    "TENANT_UPDATE",
    "TENANT_SUSPEND",
    "TENANT_RESUME",
)
CODEBUILD_SOURCE = "aws.codebuild"
CODEBUILD_DETAIL_TYPE = "CodeBuild Build State Change"
# events.dialects.sbt.SbtDetailType.REQUESTS (a test keeps them equal).
SBT_REQUEST_DETAIL_TYPES = (
    "sbt_aws_onboardingRequest",
    "sbt_aws_offboardingRequest",
    "sbt_aws_activateRequest",
    "sbt_aws_deactivateRequest",
)
# events.wiring.TARGET_ID and RETRY_POLICY.
TARGET_ID = "orchestrator-intake"
RETRY_ATTEMPTS = 185
MAX_EVENT_AGE = Duration.hours(24)
DEAD_LETTER_RETENTION = Duration.days(14)  # SQS's longest: time to look at what the intake refused


class Intake(Construct):
    def __init__(self, scope: Construct, id: str, *, config: Config, api_key: secretsmanager.ISecret) -> None:
        super().__init__(scope, id)
        prefix = config.intake_resources
        if config.event_bus == "default":
            self.bus = events.EventBus.from_event_bus_name(self, "Bus", "default")
        else:
            self.bus = events.EventBus(self, "Bus", event_bus_name=config.event_bus)
        connection = events.Connection(
            self,
            "Connection",
            connection_name=prefix,
            description="Orchestrator intake: API key header",
            authorization=events.Authorization.api_key(config.api_key_header, api_key.secret_value),
        )
        self.endpoint = f"{config.base_url}/api/events/"
        self.destination = events.ApiDestination(
            self,
            "Destination",
            api_destination_name=prefix,
            description="Orchestrator event intake",
            connection=connection,
            endpoint=self.endpoint,
            http_method=events.HttpMethod.POST,
            rate_limit_per_second=config.rate_limit_per_second,
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=f"{prefix}-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        target = targets.ApiDestination(
            self.destination,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
        )
        self._rule(
            "BusRule",
            name=prefix,
            bus=self.bus,
            pattern=events.EventPattern(detail_type=list(BUS_DETAIL_TYPES)),
            description="Catalogue detail-types to the intake",
            target=target,
        )
        self._rule(
            "CodeBuildRule",
            name=f"{prefix}-codebuild",
            bus=None,  # the default bus: AWS services publish there
            pattern=events.EventPattern(source=[CODEBUILD_SOURCE], detail_type=[CODEBUILD_DETAIL_TYPE]),
            description="CodeBuild state changes to the intake",
            target=target,
        )
        # sbt-aws's bus belongs to its control plane's stack: named here, never created.
        self.sbt_bus: events.IEventBus | None = None
        if config.sbt is not None:
            self.sbt_bus = events.EventBus.from_event_bus_name(self, "SbtBus", config.sbt.event_bus)
            self._rule(
                "SbtRule",
                name=f"{prefix}-sbt",
                bus=self.sbt_bus,
                pattern=events.EventPattern(
                    source=[config.sbt.control_plane_source], detail_type=list(SBT_REQUEST_DETAIL_TYPES)
                ),
                description="sbt-aws requests to the intake",
                target=target,
            )

    def _rule(
        self,
        id: str,
        *,
        name: str,
        bus: events.IEventBus | None,
        pattern: events.EventPattern,
        description: str,
        target: events.IRuleTarget,
    ) -> None:
        rule = events.Rule(
            self, id, rule_name=name, event_bus=bus, event_pattern=pattern, description=description, targets=[target]
        )
        # The target id bootstrap_aws uses, so both set-ups look the same in the console and to scripts.
        rule.node.default_child.add_property_override("Targets.0.Id", TARGET_ID)
