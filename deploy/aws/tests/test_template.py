"""The CDK app's CloudFormation template (deploy/aws): synthesized offline from the sample config with other
values (so a value the app ignored, or hard-coded, shows), linted by cfn-lint, and held to what matters on AWS
and to what the orchestrator's own code expects (events/wiring.py, the settings it reads).

Needs the CDK app's virtualenv (deploy/aws/.venv, which deploy/aws/synth installs) and node; skips without them.
"""

import ast
import copy
import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.test import override_settings

from events.catalogue import BUS_DETAIL_TYPES
from events.dialects import sbt
from events.wiring import RETRY_POLICY, TARGET_ID, codebuild_rule_pattern, resource_names
from orchestrator.tests.test_compose import AWS_SDK_VARIABLES, app_services, variables_read_by_settings

ROOT = Path(settings.BASE_DIR)
CDK_DIR = ROOT / "deploy" / "aws"
CDK_PYTHON = CDK_DIR / ".venv" / "bin" / "python"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.py"
SAMPLE = yaml.safe_load((CDK_DIR / "config.yaml").read_text())

# Statements that AWS only accepts on every resource, and why each is needed.
WILDCARD_ACTIONS = {
    # The status endpoint's CodeBuild check (orchestrator/health.py); ListProjects has no resource-level form.
    "codebuild:ListProjects",
    # Pulling the image from ECR starts with a registry-wide token (the pull itself is on the repository only).
    "ecr:GetAuthorizationToken",
}


def _test_config() -> dict:
    """The sample config with every value the tests check changed."""
    config = copy.deepcopy(SAMPLE)
    config["domain_name"] = "orchestrator.tests.example"
    config["certificate_arn"] = "arn:aws:acm:eu-west-1:111122223333:certificate/11111111-2222-3333-4444-555555555555"
    config["names"] = {
        "tenant_table": "t-tenants",
        "tier_table": "t-tiers",
        "event_bus": "t-bus",
        "intake_resources": "t-intake",
    }
    config["intake"] = {"api_key_header": "x-orchestrator-key", "rate_limit_per_second": 123}
    config["sbt"] = {"event_bus": "t-sbt-bus", "control_plane_source": "t.sbt.control"}
    config["web"].update(count=3, health_check_path="/healthz-probe")
    config["worker"].update(count=2, concurrency=3)
    config["delivery_worker"].update(count=4, threads=6)
    config["tiers"].append(
        {
            "name": "GOLD",
            "provision_project": "t-gold-up",
            "deprovision_project": "t-gold-down",
            "compute_type": "LARGE",
            "buildspec": {"version": "0.2", "phases": {"build": {"commands": ["./provision.sh"]}}},
        }
    )
    return config


CONFIG = _test_config()


def _synthesize(directory: Path) -> dict:
    config_path = directory / "config.yaml"
    config_path.write_text(yaml.safe_dump(CONFIG))
    environment = {
        **os.environ,
        "CDK_OUTDIR": str(directory / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps({"config": str(config_path)}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [str(CDK_PYTHON), str(CDK_DIR / "app.py")], env=environment, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((directory / "cdk.out" / f"{CONFIG['stack_name']}.template.json").read_text())


@pytest.fixture(scope="session")
def template_path(tmp_path_factory) -> Path:
    if not CDK_PYTHON.exists():
        pytest.skip(
            "the CDK app's virtualenv deploy/aws/.venv is missing: deploy/aws/synth creates it (.ci/run runs it)"
        )
    if shutil.which("node") is None:
        pytest.skip("node is not installed: aws-cdk-lib runs its constructs in node")
    # One synthesis per run, shared by the xdist workers: the first synthesizes, the others wait and read.
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    directory = shared / "cdk-template"
    directory.mkdir(exist_ok=True)
    path = directory / "template.json"
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            path.write_text(json.dumps(_synthesize(directory)))
    return path


@pytest.fixture(scope="session")
def template(template_path) -> dict:
    return json.loads(template_path.read_text())


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == kind}


def only(template: dict, kind: str, **properties) -> tuple[str, dict]:
    """The one resource of ``kind`` whose properties include ``properties``."""
    found = [
        (name, resource)
        for name, resource in resources(template, kind).items()
        if all(resource["Properties"].get(key) == value for key, value in properties.items())
    ]
    assert len(found) == 1, f"{kind} {properties}: {len(found)} found"
    return found[0]


def logical_id(value) -> str:
    """The resource a ``Ref`` or ``Fn::GetAtt`` points at."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def statements(template: dict) -> list[dict]:
    found = []
    for resource in resources(template, "AWS::IAM::Policy").values():
        found += resource["Properties"]["PolicyDocument"]["Statement"]
    for resource in resources(template, "AWS::IAM::Role").values():
        for policy in resource["Properties"].get("Policies", []):
            found += policy["PolicyDocument"]["Statement"]
    return found


def containers(template: dict) -> dict[str, dict]:
    return {
        container["Name"]: container
        for task in resources(template, "AWS::ECS::TaskDefinition").values()
        for container in task["Properties"]["ContainerDefinitions"]
    }


def test_template_passes_cfn_lint(template_path):
    result = subprocess.run(
        [str(CDK_PYTHON.with_name("cfn-lint")), str(template_path)], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stdout + result.stderr


def setting_defaults() -> dict[str, object]:
    """Each ``env("NAME", default=...)`` default in the base settings (the tests' own settings differ)."""
    defaults = {}
    for node in ast.walk(ast.parse((ROOT / "orchestrator" / "settings" / "base.py").read_text())):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            default = next((keyword.value for keyword in node.keywords if keyword.arg == "default"), None)
            if isinstance(default, ast.Constant):
                defaults[node.args[0].value] = default.value
    return defaults


def test_sample_config_names_what_the_settings_default_to():
    defaults = setting_defaults()

    assert SAMPLE["names"] == {
        "tenant_table": defaults["DYNAMODB_TENANT_TABLE"],
        "tier_table": defaults["DYNAMODB_TIER_TABLE"],
        "event_bus": defaults["EVENT_BUS_NAME"],
        "intake_resources": defaults["EVENT_INTAKE_RESOURCE_NAME"],
    }
    assert SAMPLE["intake"] == {
        "api_key_header": defaults["INTAKE_API_KEY_HEADER"],
        "rate_limit_per_second": defaults["EVENT_API_DESTINATION_RATE_PER_SECOND"],
    }


def test_api_destination_posts_to_the_intake_at_the_configured_rate(template):
    _, destination = only(template, "AWS::Events::ApiDestination")
    _, connection = only(template, "AWS::Events::Connection")
    secret_id, _ = only(template, "AWS::SecretsManager::Secret", Name="orchestrator/intake-api-key")

    assert destination["Properties"]["InvocationRateLimitPerSecond"] == 123
    assert destination["Properties"]["InvocationEndpoint"] == "https://orchestrator.tests.example/api/events/"
    assert destination["Properties"]["HttpMethod"] == "POST"
    assert logical_id(destination["Properties"]["ConnectionArn"]) in resources(template, "AWS::Events::Connection")
    api_key = connection["Properties"]["AuthParameters"]["ApiKeyAuthParameters"]
    assert api_key["ApiKeyName"] == "x-orchestrator-key"
    assert api_key["ApiKeyValue"] == {
        "Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret_id}, ":SecretString:::}}"]]
    }


def test_intake_resources_are_named_and_matched_as_bootstrap_aws_does(template):
    with override_settings(EVENT_INTAKE_RESOURCE_NAME="t-intake"):
        names = resource_names()
    bus_id, _ = only(template, "AWS::Events::EventBus", Name="t-bus")

    _, bus_rule = only(template, "AWS::Events::Rule", Name=names["rule"])
    _, codebuild_rule = only(template, "AWS::Events::Rule", Name=names["codebuild_rule"])
    only(template, "AWS::Events::Connection", Name=names["connection"])
    only(template, "AWS::Events::ApiDestination", Name=names["destination"])
    only(template, "AWS::SQS::Queue", QueueName=names["dead_letter_queue"])

    assert logical_id(bus_rule["Properties"]["EventBusName"]) == bus_id
    assert bus_rule["Properties"]["EventPattern"] == {"detail-type": list(BUS_DETAIL_TYPES)}
    assert "EventBusName" not in codebuild_rule["Properties"]  # AWS's own events arrive on the default bus
    assert codebuild_rule["Properties"]["EventPattern"] == codebuild_rule_pattern()


def test_sbt_requests_reach_the_intake_from_sbts_bus_and_answers_may_go_back(template):
    with override_settings(EVENT_INTAKE_RESOURCE_NAME="t-intake", SBT_CONTROL_PLANE_SOURCE="t.sbt.control"):
        names = resource_names()
        pattern = sbt.bus_rule_pattern()
    _, rule = only(template, "AWS::Events::Rule", Name=names["sbt_rule"])
    publish = next(statement for statement in statements(template) if statement.get("Sid") == "PublishEvents")

    assert rule["Properties"]["EventPattern"] == pattern
    assert "t-sbt-bus" in json.dumps(rule["Properties"]["EventBusName"])
    only(template, "AWS::Events::EventBus")  # sbt's bus belongs to its control plane: named, not created
    assert any("event-bus/t-sbt-bus" in json.dumps(resource) for resource in publish["Resource"])
    for container in containers(template).values():
        environment = {item["Name"]: item["Value"] for item in container["Environment"]}
        assert environment["EVENT_DIALECTS"] == "original,sbt"
        assert environment["SBT_EVENT_BUS_NAME"] == "t-sbt-bus"
        assert environment["SBT_CONTROL_PLANE_SOURCE"] == "t.sbt.control"


def test_every_rule_target_sends_the_whole_event_with_retries_then_dead_letters(template):
    queue_id, _ = only(template, "AWS::SQS::Queue", QueueName="t-intake-dlq")
    destination_id, _ = only(template, "AWS::Events::ApiDestination")
    rules = resources(template, "AWS::Events::Rule")

    assert len(rules) == 3
    for rule in rules.values():
        (target,) = rule["Properties"]["Targets"]
        assert target["Id"] == TARGET_ID
        assert logical_id(target["Arn"]) == destination_id
        assert target["RetryPolicy"] == RETRY_POLICY
        assert logical_id(target["DeadLetterConfig"]["Arn"]) == queue_id
        assert not {"Input", "InputPath", "InputTransformer"} & set(target)


def test_dead_letter_queue_is_encrypted_and_takes_messages_only_from_the_intake_rules(template):
    queue_id, queue = only(template, "AWS::SQS::Queue", QueueName="t-intake-dlq")
    _, policy = only(template, "AWS::SQS::QueuePolicy")
    rule_ids = set(resources(template, "AWS::Events::Rule"))

    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    allowed = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert {logical_id(s["Condition"]["ArnEquals"]["aws:SourceArn"]) for s in allowed} == rule_ids
    for statement in allowed:
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert logical_id(statement["Resource"]) == queue_id


def test_no_iam_statement_reaches_every_resource_but_the_ones_aws_requires(template):
    for statement in statements(template):
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(action == "*" or action.endswith(":*") for action in actions), statement
        if "*" in targets:
            assert set(actions) <= WILDCARD_ACTIONS, statement


def _granted_to(target) -> str:
    """A statement's resource: ``*``, the logical id of a resource of this stack, or the name part of an ARN
    built for a resource of another stack."""
    if target == "*":
        return target
    if "Fn::Join" in target:
        return target["Fn::Join"][1][-1]
    return logical_id(target)


def test_task_role_reaches_only_the_tables_bus_and_tier_projects(template):
    role_id, _ = only(template, "AWS::IAM::Role", Description="Orchestrator tasks (web, workers, beat)")
    (policy,) = [
        p for p in resources(template, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    tables = set(resources(template, "AWS::DynamoDB::Table"))
    projects = set(resources(template, "AWS::CodeBuild::Project"))
    bus_id, _ = only(template, "AWS::Events::EventBus")

    granted = {}
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        granted[statement["Sid"]] = {_granted_to(target) for target in targets}

    assert granted == {
        "MirrorTenantsAndTiers": tables,
        "PublishEvents": {bus_id, ":event-bus/t-sbt-bus"},  # sbt's bus: its ARN, built from its name
        "RunTierBuilds": projects,
        "StatusCheckListsProjects": {"*"},
    }


def test_tables_have_their_keys_point_in_time_recovery_and_encryption(template):
    for name, key in (("t-tenants", "tenantId"), ("t-tiers", "tier")):
        _, table = only(template, "AWS::DynamoDB::Table", TableName=name)
        properties = table["Properties"]

        assert properties["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert properties["SSESpecification"]["SSEEnabled"] is True
        assert properties["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"


def test_database_and_redis_are_encrypted_private_and_take_tls(template):
    _, database = only(template, "AWS::RDS::DBInstance")
    _, redis = only(template, "AWS::ElastiCache::ReplicationGroup")
    _, parameters = only(template, "AWS::ElastiCache::ParameterGroup")

    assert database["Properties"]["StorageEncrypted"] is True
    assert database["Properties"]["PubliclyAccessible"] is False
    assert database["Properties"]["Engine"] == "postgres"
    assert database["DeletionPolicy"] == "Snapshot"
    assert redis["Properties"]["AtRestEncryptionEnabled"] is True
    assert redis["Properties"]["TransitEncryptionEnabled"] is True
    assert redis["Properties"]["TransitEncryptionMode"] == "required"
    assert parameters["Properties"]["Properties"] == {"maxmemory-policy": "noeviction"}


def test_secrets_are_generated_and_outlive_the_stack(template):
    for name in ("orchestrator/django-secret-key", "orchestrator/intake-api-key"):
        _, secret = only(template, "AWS::SecretsManager::Secret", Name=name)

        assert secret["Properties"]["GenerateSecretString"]["ExcludePunctuation"] is True
        assert secret["DeletionPolicy"] == "Retain"
    only(template, "AWS::SecretsManager::Secret", Name="orchestrator/database")


def test_load_balancer_serves_the_domain_over_https_and_redirects_http(template):
    _, https = only(template, "AWS::ElasticLoadBalancingV2::Listener", Port=443)
    _, http = only(template, "AWS::ElasticLoadBalancingV2::Listener", Port=80)
    _, rule = only(template, "AWS::ElasticLoadBalancingV2::ListenerRule")
    group_id, group = only(template, "AWS::ElasticLoadBalancingV2::TargetGroup")

    assert https["Properties"]["Protocol"] == "HTTPS"
    assert https["Properties"]["Certificates"] == [{"CertificateArn": CONFIG["certificate_arn"]}]
    assert https["Properties"]["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    assert http["Properties"]["DefaultActions"][0]["RedirectConfig"] == {
        "Port": "443",
        "Protocol": "HTTPS",
        "StatusCode": "HTTP_301",
    }
    assert rule["Properties"]["Conditions"] == [
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["orchestrator.tests.example"]}}
    ]
    assert logical_id(rule["Properties"]["Actions"][0]["TargetGroupArn"]) == group_id
    assert group["Properties"]["HealthCheckPath"] == "/healthz-probe"
    assert group["Properties"]["Port"] == 8000


def test_fargate_services_run_web_worker_delivery_workers_and_one_beat(template):
    services = {
        logical_id(service["Properties"]["TaskDefinition"]): service["Properties"]
        for service in resources(template, "AWS::ECS::Service").values()
    }
    by_family = {
        task["Properties"]["Family"]: services[name]
        for name, task in resources(template, "AWS::ECS::TaskDefinition").items()
    }

    assert {family: service["DesiredCount"] for family, service in by_family.items()} == {
        "orchestrator-web": 3,
        "orchestrator-worker": 2,
        "orchestrator-delivery-worker": 4,
        "orchestrator-beat": 1,
    }
    for service in by_family.values():
        assert service["LaunchType"] == "FARGATE"
        assert service["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    beat = by_family["orchestrator-beat"]["DeploymentConfiguration"]
    assert (beat["MinimumHealthyPercent"], beat["MaximumPercent"]) == (0, 100)
    assert by_family["orchestrator-web"]["LoadBalancers"][0]["ContainerPort"] == 8000


def test_containers_run_the_processes_docker_compose_runs(template):
    run = {name: container["Command"] for name, container in containers(template).items()}
    compose = {name: service["command"] for name, service in app_services().items()}

    assert run["web"][:2] == ["gunicorn", "orchestrator.wsgi:application"]
    assert run["migrate"] == ["python", "manage.py", "migrate", "--no-input"]
    assert run["worker"] == [*compose["worker"], "-c", "3"]
    assert run["delivery-worker"] == [*compose["webhook-worker"][:-1], "6"]
    assert run["beat"] == compose["beat"]
    web = containers(template)["web"]
    assert web["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": "migrate"}]
    assert containers(template)["migrate"]["Essential"] is False


def test_tasks_get_only_settings_the_app_reads_with_secrets_from_secrets_manager(template):
    # Besides the settings: the image's entry point builds DATABASE_URL, gunicorn.conf.py sizes the web server.
    entrypoint_variables = set(re.findall(r"\b(DATABASE_[A-Z]+)\b", ENTRYPOINT.read_text()))
    gunicorn_variables = set(re.findall(r"environ\.get\(\"([A-Z_]+)\"", (ROOT / "gunicorn.conf.py").read_text()))
    known = variables_read_by_settings() | entrypoint_variables | gunicorn_variables | AWS_SDK_VARIABLES
    django_key_id, _ = only(template, "AWS::SecretsManager::Secret", Name="orchestrator/django-secret-key")
    intake_key_id, _ = only(template, "AWS::SecretsManager::Secret", Name="orchestrator/intake-api-key")

    for name, container in containers(template).items():
        environment = {item["Name"]: item["Value"] for item in container["Environment"]}
        secrets = {item["Name"]: item["ValueFrom"] for item in container["Secrets"]}

        assert set(environment) | set(secrets) <= known, f"{name}: {sorted(set(environment) - known)}"
        assert not set(environment) & set(secrets)
        assert environment["DJANGO_SETTINGS_MODULE"] == "orchestrator.settings.production"
        assert environment["ORCHESTRATOR_BASE_URL"] == "https://orchestrator.tests.example"
        assert environment["DYNAMODB_TENANT_TABLE"] == "t-tenants"
        assert environment["DYNAMODB_TIER_TABLE"] == "t-tiers"
        assert environment["EVENT_BUS_NAME"] == "t-bus"
        assert environment["INTAKE_API_KEY_HEADER"] == "x-orchestrator-key"
        assert environment["LOCAL_BUILDER_ENABLED"] == "false"
        assert environment["REDIS_URL"]["Fn::Join"][1][0] == "rediss://"
        assert environment["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/orchestrator-metrics"
        assert environment.get("METRICS_PORT") == ("9100" if name in ("worker", "delivery-worker") else None)
        assert secrets["DJANGO_SECRET_KEY"] == {"Ref": django_key_id}
        assert secrets["INTAKE_API_KEYS"] == {"Ref": intake_key_id}
        assert secrets["DATABASE_PASSWORD"]["Fn::Join"][1][1] == ":password::"
        assert secrets["DATABASE_USER"]["Fn::Join"][1][1] == ":username::"


def test_one_codebuild_project_per_tier_project_from_the_config(template):
    projects = {
        p["Properties"]["Name"]: p["Properties"] for p in resources(template, "AWS::CodeBuild::Project").values()
    }
    role_id, _ = only(template, "AWS::IAM::Role", Description="Orchestrator tier builds (CodeBuild service role)")
    wanted = {
        name: tier
        for tier in CONFIG["tiers"]
        for name in (tier["provision_project"], tier.get("deprovision_project"))
        if name
    }

    assert set(projects) == set(wanted)
    for name, project in projects.items():
        assert logical_id(project["ServiceRole"]) == role_id
        assert project["Environment"]["ComputeType"] == f"BUILD_GENERAL1_{wanted[name]['compute_type']}"
        assert yaml.safe_load(project["Source"]["BuildSpec"]) == wanted[name]["buildspec"]
