"""The deployment's settings, read once from a YAML file (``config.yaml`` documents every key).

A missing key or a value of the wrong type stops the synthesis with the key's path in the message, before
anything reaches CloudFormation.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    pass


def _get(mapping: dict[str, Any], key: str, kind: type, where: str, default: Any = ...) -> Any:
    path = f"{where}.{key}" if where else key
    if key not in mapping or mapping[key] is None:
        if default is ...:
            raise ConfigError(f"{path}: missing")
        return default
    value = mapping[key]
    # bool is an int in Python; a count of `true` is a mistake, not 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{path}: expected {kind.__name__}, got {value!r}")
    return value


def _section(mapping: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    return _get(mapping, key, dict, where)


@dataclass(frozen=True)
class Size:
    """A Fargate service: how many tasks, each with this much CPU (units) and memory (MiB)."""

    count: int
    cpu: int
    memory: int

    @classmethod
    def read(cls, config: dict[str, Any], key: str, *, count: int | None = None) -> "Size":
        section = _section(config, key)
        return cls(
            count=count if count is not None else _get(section, "count", int, key),
            cpu=_get(section, "cpu", int, key),
            memory=_get(section, "memory", int, key),
        )


@dataclass(frozen=True)
class Tier:
    name: str
    provision_project: str
    deprovision_project: str | None
    compute_type: str
    timeout_minutes: int
    buildspec: dict[str, Any]

    @property
    def projects(self) -> list[str]:
        return [name for name in (self.provision_project, self.deprovision_project) if name]


@dataclass(frozen=True)
class Sbt:
    """The SaaS Builder Toolkit dialect (README "Using Orchestrator with the SaaS Builder Toolkit"): its control
    plane's bus (created by sbt-aws's own stack, so only named here) and the sources on it."""

    event_bus: str
    control_plane_source: str
    application_plane_source: str


def _sbt(config: dict[str, Any]) -> Sbt | None:
    section = _get(config, "sbt", dict, "", default=None)
    if section is None:
        return None
    return Sbt(
        event_bus=_get(section, "event_bus", str, "sbt"),
        control_plane_source=_get(section, "control_plane_source", str, "sbt", default="sbt.control.plane"),
        application_plane_source=_get(section, "application_plane_source", str, "sbt", default="sbt.application.plane"),
    )


@dataclass(frozen=True)
class Config:
    stack_name: str
    domain_name: str
    certificate_arn: str
    image_repository: str | None
    image_tag: str
    image_uri: str | None
    cpu_architecture: str
    tenant_table: str
    tier_table: str
    event_bus: str
    intake_resources: str
    api_key_header: str
    rate_limit_per_second: int
    nat_gateways: int
    web: Size
    web_health_check_path: str
    worker: Size
    worker_concurrency: int
    delivery_worker: Size
    delivery_threads: int
    beat: Size
    database: dict[str, Any]
    cache_node_type: str
    cache_replicas: int
    log_retention_days: int
    codebuild_managed_policy_arns: list[str]
    tiers: list[Tier]
    sbt: Sbt | None = None

    @property
    def base_url(self) -> str:
        return f"https://{self.domain_name}"


def _tiers(config: dict[str, Any]) -> list[Tier]:
    entries = _get(config, "tiers", list, "")
    tiers = []
    for index, entry in enumerate(entries):
        where = f"tiers[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        tiers.append(
            Tier(
                name=_get(entry, "name", str, where),
                provision_project=_get(entry, "provision_project", str, where),
                deprovision_project=_get(entry, "deprovision_project", str, where, default=None),
                compute_type=_get(entry, "compute_type", str, where, default="SMALL"),
                timeout_minutes=_get(entry, "timeout_minutes", int, where, default=60),
                buildspec=_get(entry, "buildspec", dict, where),
            )
        )
    projects = [name for tier in tiers for name in tier.projects]
    if len(set(projects)) != len(projects):
        raise ConfigError("tiers: a project name is used twice")
    return tiers


def _database(config: dict[str, Any]) -> dict[str, Any]:
    section = _section(config, "database")
    kinds = {
        "engine_version": str,
        "instance_type": str,
        "storage_gb": int,
        "max_storage_gb": int,
        "multi_az": bool,
        "backup_retention_days": int,
        "deletion_protection": bool,
    }
    return {key: _get(section, key, kind, "database") for key, kind in kinds.items()}


def parse_config(config: dict[str, Any]) -> Config:
    image = _section(config, "image")
    names = _section(config, "names")
    intake = _section(config, "intake")
    cache = _section(config, "cache")
    image_uri = _get(image, "uri", str, "image", default=None)
    image_repository = _get(image, "repository", str, "image", default=None)
    if bool(image_uri) == bool(image_repository):
        raise ConfigError("image: give either `repository` (with `tag`) or `uri`")
    architecture = _get(config, "cpu_architecture", str, "", default="X86_64")
    if architecture not in ("X86_64", "ARM64"):
        raise ConfigError(f"cpu_architecture: X86_64 or ARM64, not {architecture!r}")
    return Config(
        stack_name=_get(config, "stack_name", str, ""),
        domain_name=_get(config, "domain_name", str, ""),
        certificate_arn=_get(config, "certificate_arn", str, ""),
        image_repository=image_repository,
        image_tag=_get(image, "tag", str, "image", default="latest"),
        image_uri=image_uri,
        cpu_architecture=architecture,
        tenant_table=_get(names, "tenant_table", str, "names"),
        tier_table=_get(names, "tier_table", str, "names"),
        event_bus=_get(names, "event_bus", str, "names"),
        intake_resources=_get(names, "intake_resources", str, "names"),
        api_key_header=_get(intake, "api_key_header", str, "intake"),
        rate_limit_per_second=_get(intake, "rate_limit_per_second", int, "intake"),
        nat_gateways=_get(_section(config, "network"), "nat_gateways", int, "network"),
        web=Size.read(config, "web"),
        web_health_check_path=_get(_section(config, "web"), "health_check_path", str, "web"),
        worker=Size.read(config, "worker"),
        worker_concurrency=_get(_section(config, "worker"), "concurrency", int, "worker"),
        delivery_worker=Size.read(config, "delivery_worker"),
        delivery_threads=_get(_section(config, "delivery_worker"), "threads", int, "delivery_worker"),
        beat=Size.read(config, "beat", count=1),
        database=_database(config),
        cache_node_type=_get(cache, "node_type", str, "cache"),
        cache_replicas=_get(cache, "replicas", int, "cache"),
        log_retention_days=_get(config, "log_retention_days", int, ""),
        codebuild_managed_policy_arns=_get(
            _section(config, "codebuild"), "managed_policy_arns", list, "codebuild", default=[]
        ),
        tiers=_tiers(config),
        sbt=_sbt(config),
    )


def load_config(path: Path) -> Config:
    try:
        return parse_config(yaml.safe_load(path.read_text()) or {})
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
