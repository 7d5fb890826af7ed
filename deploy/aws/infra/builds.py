"""The tiers' CodeBuild projects and the service role they run as (``CODEBUILD_SERVICE_ROLE_ARN`` of
``bootstrap_aws``). A tier's buildspec reports its outcome by ``PutEvents`` to the orchestrator's bus (the
role may), or the orchestrator learns it from CodeBuild's own state-change event.
"""

from aws_cdk import Duration
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct
from infra.config import Config, Tier

BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0  # as bootstrap_aws's projects


class TierBuilds(Construct):
    def __init__(self, scope: Construct, id: str, *, config: Config, bus: events.IEventBus) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description="Orchestrator tier builds (CodeBuild service role)",
            managed_policies=[
                iam.ManagedPolicy.from_managed_policy_arn(self, f"Policy{index}", arn)
                for index, arn in enumerate(config.codebuild_managed_policy_arns)
            ],
        )
        bus.grant_put_events_to(self.role)
        self.projects = [self._project(tier=tier, name=name) for tier in config.tiers for name in tier.projects]

    def _project(self, *, tier: Tier, name: str) -> codebuild.Project:
        purpose = "provisions" if name == tier.provision_project else "deprovisions"
        return codebuild.Project(
            self,
            name,
            project_name=name,
            description=f"Orchestrator: {purpose} tenants of tier {tier.name}",
            role=self.role,
            build_spec=codebuild.BuildSpec.from_object_to_yaml(tier.buildspec),
            environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType[tier.compute_type]
            ),
            timeout=Duration.minutes(tier.timeout_minutes),
        )
