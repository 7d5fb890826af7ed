"""The environment a build receives: one pure function, documented precedence, no I/O.

Precedence (later wins on a name clash):

1. **Tier variables** (the tier mapping: ``Tier.variables``), with their type. ``PARAMETER_STORE`` and
   ``SECRETS_MANAGER`` variables carry the parameter name / secret id, never the secret itself; the
   builder resolves them (CodeBuild natively, the LOCAL runner through SSM / Secrets Manager).
2. **Plan-derived variables**: ``TENANT_ID``, ``TENANT_KEY``, ``TENANT_NAME``, ``TIER``, ``PLAN_ID``, every
   key of ``planConfig.sizeConfig`` and ``tenant`` (the tenant document as a JSON string, as the
   control plane's producer sent it).
3. **Builder overrides**: ``builderConfig.config.environmentOverride`` (the original's only source of
   variables besides the tier item; the control plane puts ``secret`` and ``context`` there).

Values: strings as they are; numbers and booleans JSON-encoded (``3600``, ``true``); objects and arrays
JSON-encoded (compact), so a nested value is never ``[object Object]``; ``null`` becomes ``""``.
Names must match ``^[A-Za-z_][A-Za-z0-9_]*$`` and must not start with ``CODEBUILD_`` (reserved by
CodeBuild); a bad name refuses the whole build with the name and where it came from.
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import ApplicationError
from orchestrator.redaction import MASK, is_secret_key, redact
from tenants.models import ENV_NAME_PATTERN, VariableType

_NAME = re.compile(ENV_NAME_PATTERN)
RESERVED_PREFIX = "CODEBUILD_"


class InvalidEnvironment(ApplicationError):
    code = "invalid_environment"


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str
    type: str = VariableType.PLAINTEXT

    def as_codebuild(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "type": str(self.type)}

    def masked(self) -> dict[str, str]:
        """The copy stored on ``Build.environment``: secret-named plaintext values masked, and secrets inside
        values that hold JSON (``tenant``). Masked, not sealed: nothing reads it back in plain (a build's
        environment is computed again from the sealed tenant and the tier when it is needed)."""
        secret = is_plaintext_secret(name=self.name, value=self.value, type=self.type)
        return {"name": self.name, "value": MASK if secret else redact(self.value), "type": str(self.type)}


def is_plaintext_secret(*, name: str, value: str, type: str) -> bool:
    """A variable whose value is itself a secret (plain text under a secret-like name), not a reference to
    one in SSM / Secrets Manager: masked wherever staff see variables."""
    return type == VariableType.PLAINTEXT and is_secret_key(name) and value != ""


def encode_value(value: Any) -> str:
    """A variable's value as the string a build sees."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def validate_name(name: Any, *, source: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidEnvironment(
            f"Invalid environment variable name {name!r} in {source}: "
            "use letters, digits and underscores, not starting with a digit.",
            fields={source: [f"invalid name {name!r}"]},
        )
    if name.startswith(RESERVED_PREFIX):
        raise InvalidEnvironment(
            f"Environment variable {name!r} in {source} uses the prefix {RESERVED_PREFIX}, reserved by CodeBuild.",
            fields={source: [f"reserved name {name!r}"]},
        )
    return name


def _as_mapping(value: Any, source: str) -> Mapping[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEnvironment(f"{source} must be an object.", fields={source: ["must be an object"]})
    return value


def build_environment(
    *,
    tier_name: str,
    tier_variables: Iterable[tuple[str, str, str]],
    tenant_id: str,
    tenant_document: Mapping[str, Any],
    plan: Mapping[str, Any],
    builder_config: Mapping[str, Any],
) -> list[EnvVar]:
    """The variables for one build, in precedence order resolved (see the module docstring).

    ``tier_variables`` are ``(name, value, type)`` triples. The result is sorted by name so the same
    inputs always give the same list (what is sent, stored and compared in tests).
    """
    env: dict[str, EnvVar] = {}

    for name, value, var_type in tier_variables:
        validate_name(name, source=f"tier {tier_name} variables")
        env[name] = EnvVar(name=name, value=encode_value(value), type=var_type or VariableType.PLAINTEXT)

    document = dict(tenant_document)
    document.setdefault("id", tenant_id)
    derived: dict[str, Any] = {
        "TENANT_ID": tenant_id,
        "TENANT_KEY": document.get("key", ""),
        "TENANT_NAME": document.get("name", ""),
        "TIER": tier_name,
        "PLAN_ID": plan.get("id", ""),
    }
    for name, value in _as_mapping(plan.get("sizeConfig"), "planConfig.sizeConfig").items():
        derived[validate_name(name, source="planConfig.sizeConfig")] = value
    derived["tenant"] = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)
    for name, value in derived.items():
        env[name] = EnvVar(name=name, value=encode_value(value))

    config = _as_mapping(builder_config.get("config"), "builderConfig.config")
    overrides = _as_mapping(config.get("environmentOverride"), "builderConfig.config.environmentOverride")
    for name, value in overrides.items():
        validate_name(name, source="builderConfig.config.environmentOverride")
        env[name] = EnvVar(name=name, value=encode_value(value))

    return [env[name] for name in sorted(env)]


def environment_masked(environment: Iterable[EnvVar]) -> list[dict[str, str]]:
    return [variable.masked() for variable in environment]
