"""The orchestrator itself on ECS Fargate, from one image and one set of settings (README configuration table):

- ``web``: gunicorn behind an internet-facing load balancer (HTTPS; HTTP is redirected), applying the
  database migrations before it starts (a non-essential ``migrate`` container it waits for);
- ``worker``: ``celery worker -Q default`` (event handlers, builds' starts and polls);
- ``delivery-worker``: ``celery worker -Q webhooks,builds -P threads`` (callbacks wait on the network, LOCAL
  builds on their command: neither holds up an event handler);
- ``beat``: one task, stopped before its replacement starts on a deployment.

The tasks run in private subnets as one IAM role that may touch only the tables, the bus and the tier
projects (``grant_orchestrator``).
"""

from aws_cdk import Aws, Duration
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct
from infra.config import Config, Size
from infra.data import DATABASE_NAME, Broker, Database

WEB_PORT = 8000
CELERY = ["celery", "-A", "orchestrator"]
# ECS's longest wait between SIGTERM and SIGKILL: a Celery worker finishes its running tasks meanwhile.
WORKER_STOP_TIMEOUT = Duration.seconds(120)
# Each container's own metrics folder (prometheus_client's multiprocess mode; a new task starts it empty), and
# the port a worker serves its metrics on inside the VPC (web serves GET /metrics, with METRICS_TOKENS).
METRICS_DIR = "/tmp/orchestrator-metrics"  # noqa: S108
WORKER_METRICS_PORT = 9100


def commands(config: Config) -> dict[str, list[str]]:
    """Each service's command (the image's entry point runs it), as the README's "Running against real AWS"."""
    return {
        "migrate": ["python", "manage.py", "migrate", "--no-input"],
        "web": ["gunicorn", "orchestrator.wsgi:application", "--bind", f"0.0.0.0:{WEB_PORT}"],
        # No -l: the settings' LOGGING (LOG_LEVEL) governs workers and beat, as in docker-compose.yml.
        "worker": [*CELERY, "worker", "-Q", "default", "-c", str(config.worker_concurrency)],
        "delivery-worker": [
            *CELERY,
            "worker",
            *("-Q", "webhooks,builds", "-P", "threads", "-c", str(config.delivery_threads)),
        ],
        # RedBeat keeps the schedule and its lock in Redis (orchestrator/beat.py).
        "beat": [*CELERY, "beat"],
    }


def grant_orchestrator(
    role: iam.IRole,
    *,
    tables: list[dynamodb.ITable],
    buses: list[events.IEventBus],
    projects: list[codebuild.IProject],
) -> None:
    """What the orchestrator calls on AWS, on its own resources only (tenants/services/sync.py, events/publisher.py,
    tenants/builders/codebuild.py, orchestrator/health.py)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="MirrorTenantsAndTiers",
            actions=["dynamodb:DescribeTable", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan"],
            resources=[table.table_arn for table in tables],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="PublishEvents",
            actions=["events:PutEvents", "events:DescribeEventBus"],
            resources=[bus.event_bus_arn for bus in buses],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="RunTierBuilds",
            actions=["codebuild:StartBuild", "codebuild:BatchGetBuilds"],
            resources=[project.project_arn for project in projects],
        )
    )
    # The status endpoint's CodeBuild check lists projects; ListProjects has no resource-level permissions.
    role.add_to_principal_policy(
        iam.PolicyStatement(sid="StatusCheckListsProjects", actions=["codebuild:ListProjects"], resources=["*"])
    )


class Orchestrator(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: Config,
        vpc: ec2.IVpc,
        security_group: ec2.ISecurityGroup,
        task_role: iam.IRole,
        database: Database,
        broker: Broker,
        django_secret_key: secretsmanager.ISecret,
        intake_api_key: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, id)
        self._config = config
        self._security_group = security_group
        self._task_role = task_role
        self.cluster = ecs.Cluster(self, "Cluster", vpc=vpc)
        self._execution_role = iam.Role(
            self, "ExecutionRole", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
        )
        log_group = logs.LogGroup(self, "Logs")
        log_group.node.default_child.retention_in_days = config.log_retention_days
        self._log_group = log_group
        self._image = (
            ecs.ContainerImage.from_registry(config.image_uri)
            if config.image_uri
            else ecs.ContainerImage.from_ecr_repository(
                ecr.Repository.from_repository_name(self, "Repository", config.image_repository), config.image_tag
            )
        )
        self._environment = {
            "DJANGO_SETTINGS_MODULE": "orchestrator.settings.production",
            # The load balancer forwards only requests for domain_name (a listener rule; any other host gets its
            # 404), and its health checks carry the task's IP address as Host, so Django checks no host again.
            "DJANGO_ALLOWED_HOSTS": "*",
            "DJANGO_CSRF_TRUSTED_ORIGINS": config.base_url,
            "ORCHESTRATOR_BASE_URL": config.base_url,
            "DATABASE_HOST": database.instance.db_instance_endpoint_address,
            "DATABASE_PORT": database.instance.db_instance_endpoint_port,
            "DATABASE_NAME": DATABASE_NAME,
            "REDIS_URL": broker.url,
            "AWS_REGION": Aws.REGION,
            "DYNAMODB_TENANT_TABLE": config.tenant_table,
            "DYNAMODB_TIER_TABLE": config.tier_table,
            "EVENT_BUS_NAME": config.event_bus,
            "INTAKE_API_KEY_HEADER": config.api_key_header,
            # Builds run on CodeBuild; a LOCAL tier command must never run inside these containers.
            "LOCAL_BUILDER_ENABLED": "false",
            "PROMETHEUS_MULTIPROC_DIR": METRICS_DIR,
        }
        if config.sbt is not None:
            self._environment.update(
                EVENT_DIALECTS="original,sbt",
                SBT_EVENT_BUS_NAME=config.sbt.event_bus,
                SBT_CONTROL_PLANE_SOURCE=config.sbt.control_plane_source,
                SBT_APPLICATION_PLANE_SOURCE=config.sbt.application_plane_source,
            )
        self._secrets = {
            "DJANGO_SECRET_KEY": ecs.Secret.from_secrets_manager(django_secret_key),
            "INTAKE_API_KEYS": ecs.Secret.from_secrets_manager(intake_api_key),
            "DATABASE_USER": ecs.Secret.from_secrets_manager(database.secret, "username"),
            "DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password"),
        }
        run = commands(config)
        web = self._task("web", config.web, run["web"], extra_environment={"WEB_WORKERS": str(_cores(config.web))})
        web_container = web.find_container("web")
        web_container.add_port_mappings(ecs.PortMapping(container_port=WEB_PORT))
        migrate = self._container(web, "migrate", run["migrate"], essential=False)
        web_container.add_container_dependencies(
            ecs.ContainerDependency(container=migrate, condition=ecs.ContainerDependencyCondition.SUCCESS)
        )
        self.web = self._service("web", web, config.web, health_check_grace_period=Duration.minutes(2))
        metrics_port = {"METRICS_PORT": str(WORKER_METRICS_PORT)}
        for name, size in (("worker", config.worker), ("delivery-worker", config.delivery_worker)):
            task = self._task(name, size, run[name], stop_timeout=WORKER_STOP_TIMEOUT, extra_environment=metrics_port)
            self._service(name, task, size)
        # Never two beats at once, even during a deployment: the old task stops before the new one starts.
        self._service(
            "beat",
            self._task("beat", config.beat, run["beat"]),
            config.beat,
            min_healthy_percent=0,
            max_healthy_percent=100,
        )
        self.load_balancer = self._load_balancer(vpc)

    def _task(
        self,
        name: str,
        size: Size,
        command: list[str],
        *,
        extra_environment: dict[str, str] | None = None,
        stop_timeout: Duration | None = None,
    ) -> ecs.FargateTaskDefinition:
        task = ecs.FargateTaskDefinition(
            self,
            f"{name}-task",
            family=f"{self._config.stack_name}-{name}",
            cpu=size.cpu,
            memory_limit_mib=size.memory,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=getattr(ecs.CpuArchitecture, self._config.cpu_architecture),
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            task_role=self._task_role,
            execution_role=self._execution_role,
        )
        self._container(task, name, command, extra_environment=extra_environment, stop_timeout=stop_timeout)
        return task

    def _container(
        self,
        task: ecs.FargateTaskDefinition,
        name: str,
        command: list[str],
        *,
        essential: bool = True,
        extra_environment: dict[str, str] | None = None,
        stop_timeout: Duration | None = None,
    ) -> ecs.ContainerDefinition:
        return task.add_container(
            name,
            container_name=name,
            image=self._image,
            command=command,
            essential=essential,
            environment={**self._environment, **(extra_environment or {})},
            secrets=self._secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=self._log_group),
            stop_timeout=stop_timeout,
        )

    def _service(
        self,
        name: str,
        task: ecs.FargateTaskDefinition,
        size: Size,
        *,
        min_healthy_percent: int = 100,
        max_healthy_percent: int = 200,
        health_check_grace_period: Duration | None = None,
    ) -> ecs.FargateService:
        return ecs.FargateService(
            self,
            f"{name}-service",
            cluster=self.cluster,
            task_definition=task,
            desired_count=size.count,
            security_groups=[self._security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            min_healthy_percent=min_healthy_percent,
            max_healthy_percent=max_healthy_percent,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=health_check_grace_period,
        )

    def _load_balancer(self, vpc: ec2.IVpc) -> elbv2.ApplicationLoadBalancer:
        config = self._config
        load_balancer = elbv2.ApplicationLoadBalancer(
            self, "LoadBalancer", vpc=vpc, internet_facing=True, drop_invalid_header_fields=True
        )
        load_balancer.add_redirect(source_port=80, target_port=443)
        https = load_balancer.add_listener(
            "Https",
            port=443,
            certificates=[elbv2.ListenerCertificate.from_arn(config.certificate_arn)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            default_action=elbv2.ListenerAction.fixed_response(
                404, content_type="text/plain", message_body="Unknown host"
            ),
        )
        https.add_targets(
            "Web",
            priority=10,
            conditions=[elbv2.ListenerCondition.host_headers([config.domain_name])],
            port=WEB_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.web.load_balancer_target(container_name="web", container_port=WEB_PORT)],
            health_check=elbv2.HealthCheck(path=config.web_health_check_path, healthy_http_codes="200"),
            deregistration_delay=Duration.seconds(30),
        )
        return load_balancer


def _cores(size: Size) -> int:
    """gunicorn processes for a web task: one per vCPU (Fargate may show the host's cores to the container)."""
    return max(1, size.cpu // 1024)
