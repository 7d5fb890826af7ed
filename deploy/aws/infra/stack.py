"""Everything the orchestrator needs on AWS, and the orchestrator itself, as one environment-agnostic stack."""

from aws_cdk import Aws, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from infra.builds import TierBuilds
from infra.config import Config
from infra.data import Broker, Database, Tables
from infra.intake import Intake
from infra.services import Orchestrator, grant_orchestrator


class OrchestratorStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config) -> None:
        super().__init__(scope, id, description="Orchestrator: control plane for multi-tenant SaaS")
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,  # an environment-agnostic stack knows two availability zones
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        # Outbound to anywhere: webhook receivers, CodeBuild and the other AWS APIs.
        tasks = ec2.SecurityGroup(self, "TaskSecurityGroup", vpc=vpc, description="Orchestrator tasks")
        django_secret_key = self._secret("DjangoSecretKey", config, name="django-secret-key", length=64)
        intake_api_key = self._secret("IntakeApiKey", config, name="intake-api-key", length=48)

        tables = Tables(self, "Tables", config=config)
        intake = Intake(self, "Intake", config=config, api_key=intake_api_key)
        builds = TierBuilds(self, "Builds", config=config, bus=intake.bus)
        database = Database(self, "Database", config=config, vpc=vpc, clients=tasks)
        broker = Broker(self, "Broker", config=config, vpc=vpc, clients=tasks)

        task_role = iam.Role(
            self,
            "TaskRole",
            description="Orchestrator tasks (web, workers, beat)",
            # Only ECS tasks of this account and region may take the role (no confused deputy).
            assumed_by=iam.ServicePrincipal(
                "ecs-tasks.amazonaws.com",
                conditions={
                    "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:ecs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"},
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                },
            ),
        )
        grant_orchestrator(
            task_role,
            tables=[tables.tenants, tables.tiers],
            buses=[bus for bus in (intake.bus, intake.sbt_bus) if bus is not None],
            projects=builds.projects,
        )
        orchestrator = Orchestrator(
            self,
            "Orchestrator",
            config=config,
            vpc=vpc,
            security_group=tasks,
            task_role=task_role,
            database=database,
            broker=broker,
            django_secret_key=django_secret_key,
            intake_api_key=intake_api_key,
        )

        outputs = {
            "LoadBalancerDnsName": (orchestrator.load_balancer.load_balancer_dns_name, "point domain_name here"),
            "IntakeUrl": (intake.endpoint, "the API destination's endpoint"),
            "DeadLetterQueueUrl": (intake.dead_letter_queue.queue_url, "events the intake never took"),
            "ClusterName": (orchestrator.cluster.cluster_name, "ECS cluster (run one-off commands here)"),
            "DjangoSecretKeyArn": (django_secret_key.secret_arn, "DJANGO_SECRET_KEY"),
            "IntakeApiKeyArn": (intake_api_key.secret_arn, "INTAKE_API_KEYS and the connection's key"),
            "DatabaseSecretArn": (database.secret.secret_arn, "PostgreSQL credentials"),
            "CodeBuildServiceRoleArn": (builds.role.role_arn, "CODEBUILD_SERVICE_ROLE_ARN"),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

    def _secret(self, id: str, config: Config, *, name: str, length: int) -> secretsmanager.Secret:
        """A generated secret, kept when the stack is deleted (the Django key also unseals stored secrets)."""
        return secretsmanager.Secret(
            self,
            id,
            secret_name=f"{config.stack_name}/{name}",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=length, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
