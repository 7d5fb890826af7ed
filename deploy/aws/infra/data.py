"""Where the orchestrator keeps state: the DynamoDB tables it mirrors to, PostgreSQL, and Redis (the broker).

All three are encrypted at rest; PostgreSQL and Redis sit in isolated subnets, reachable only from the
orchestrator's tasks (their security group), and take TLS connections only.
"""

import string

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_rds as rds
from constructs import Construct
from infra.config import Config

DATABASE_NAME = "orchestrator"
DATABASE_USER = "orchestrator"
REDIS_PORT = 6379
REDIS_ENGINE_VERSION = "7.1"


class Tables(Construct):
    """The tenant data store (key ``tenantId``) and the tier mapping (key ``tier``), as ``ensure_tables``."""

    def __init__(self, scope: Construct, id: str, *, config: Config) -> None:
        super().__init__(scope, id)
        self.tenants = self._table("Tenants", name=config.tenant_table, key="tenantId")
        self.tiers = self._table("Tiers", name=config.tier_table, key="tier")

    def _table(self, id: str, *, name: str, key: str) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            id,
            table_name=name,
            partition_key=dynamodb.Attribute(name=key, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )


class Database(Construct):
    """PostgreSQL on RDS; its generated credentials live in a Secrets Manager secret."""

    def __init__(
        self, scope: Construct, id: str, *, config: Config, vpc: ec2.IVpc, clients: ec2.ISecurityGroup
    ) -> None:
        super().__init__(scope, id)
        settings = config.database
        version = settings["engine_version"]
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=rds.DatabaseInstanceEngine.postgres(
                version=rds.PostgresEngineVersion.of(version, version.split(".")[0])
            ),
            instance_type=ec2.InstanceType(settings["instance_type"]),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            database_name=DATABASE_NAME,
            # Letters and digits only: the image's entry point puts the password into DATABASE_URL.
            credentials=rds.Credentials.from_generated_secret(
                DATABASE_USER,
                secret_name=f"{config.stack_name}/database",
                exclude_characters=string.punctuation + " ",
            ),
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=settings["storage_gb"],
            max_allocated_storage=settings["max_storage_gb"],
            multi_az=settings["multi_az"],
            backup_retention=Duration.days(settings["backup_retention_days"]),
            deletion_protection=settings["deletion_protection"],
            removal_policy=RemovalPolicy.SNAPSHOT,
            copy_tags_to_snapshot=True,
            publicly_accessible=False,
            auto_minor_version_upgrade=True,
        )
        self.instance.connections.allow_default_port_from(clients, "Orchestrator tasks")
        self.secret = self.instance.secret


class Broker(Construct):
    """Redis on ElastiCache: TLS required, encrypted at rest, and no eviction (it holds Celery's queues)."""

    def __init__(
        self, scope: Construct, id: str, *, config: Config, vpc: ec2.IVpc, clients: ec2.ISecurityGroup
    ) -> None:
        super().__init__(scope, id)
        security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="Orchestrator Redis", allow_all_outbound=False
        )
        security_group.add_ingress_rule(clients, ec2.Port.tcp(REDIS_PORT), "Orchestrator tasks")
        subnets = elasticache.CfnSubnetGroup(
            self,
            "Subnets",
            description="Orchestrator Redis",
            subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )
        parameters = elasticache.CfnParameterGroup(
            self,
            "Parameters",
            cache_parameter_group_family="redis7",
            description="Orchestrator Redis: a broker must never drop queued tasks to make room",
            properties={"maxmemory-policy": "noeviction"},
        )
        replicated = config.cache_replicas > 0
        self.group = elasticache.CfnReplicationGroup(
            self,
            "Redis",
            replication_group_description="Orchestrator broker (Celery) and endpoint slots",
            engine="redis",
            engine_version=REDIS_ENGINE_VERSION,
            cache_node_type=config.cache_node_type,
            num_cache_clusters=1 + config.cache_replicas,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            port=REDIS_PORT,
            cache_subnet_group_name=subnets.ref,
            cache_parameter_group_name=parameters.ref,
            security_group_ids=[security_group.security_group_id],
            snapshot_retention_limit=1,
        )

    @property
    def url(self) -> str:
        """REDIS_URL: TLS (``rediss``) with the server's certificate checked."""
        address = self.group.attr_primary_end_point_address
        return f"rediss://{address}:{self.group.attr_primary_end_point_port}/0?ssl_cert_reqs=required"
