"""The environment a build receives: one pure function, documented precedence, no I/O.

Precedence (later wins on a name clash):

1. **Tier variables** (the tier mapping: ``Tier.variables``), with their type. ``PARAMETER_STORE`` and
   ``SECRETS_MANAGER`` variables carry the parameter name / secret id, never the secret itself; the
   builder resolves them (CodeBuild natively, the LOCAL runner through SSM / Secrets Manager).
2. **Plan-derived variables**: ``TENANT_ID``, ``TENANT_KEY``, ``TENANT_NAME``, ``TIER``, ``PLAN_ID`` (an update's
   build: the pending plan's, with ``PREVIOUS_TIER``, the tier the tenant leaves), every
   key of ``planConfig.sizeConfig`` and ``tenant`` (the tenant document as a JSON string, as the
   control plane's producer sent it).
3. **Builder overrides**: ``builderConfig.config.environmentOverride`` (the original's only source of
   variables besides the tier item; the control plane puts ``secret`` and ``context`` there).

Values: strings as they are; numbers and booleans JSON-encoded (``3600``, ``true``); objects and arrays
JSON-encoded (compact), so a nested value is never ``[object Object]``; ``null`` becomes ``""``.
Names (``orchestrator.env_names``): every name must match ``^[A-Za-z_][A-Za-z0-9_]*$`` and must not start
with ``CODEBUILD_`` (reserved by CodeBuild). Names from the plan and the overrides (the event's sender
chooses them) must not be reserved either: ``BASH_ENV``, ``LD_PRELOAD``, ``PYTHONPATH``, ``HTTP_PROXY``... For
a LOCAL build every name, tier variables included, must also pass the LOCAL rule (upper case, or
``tenant``/``secret``/``context``). CodeBuild tier variables keep the plain rule: they come from superusers,
who choose the CodeBuild project anyway. A bad name refuses the whole build with the name, the reason and
where it came from; the intake refuses bad event names before they are stored.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.env_names import name_problem
from orchestrator.errors import ApplicationError
from orchestrator.redaction import MASK, is_secret_key, redact
from tenants.models import BuilderType, VariableType


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


def validate_name(name: Any, *, source: str, reserved: bool = False, local: bool = False) -> str:
    """``name`` if it may be a build variable from ``source`` (see ``orchestrator.env_names`` for
    ``reserved`` and ``local``), else ``InvalidEnvironment`` naming it, the reason and the source."""
    problem = name_problem(name, reserved=reserved, local=local)
    if problem:
        raise InvalidEnvironment(
            f"Environment variable {name!r} in {source} {problem}.", fields={source: [f"{name!r} {problem}"]}
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
    previous_tier: str | None = None,
) -> list[EnvVar]:
    """The variables for one build, in precedence order resolved (see the module docstring).

    ``tier_variables`` are ``(name, value, type)`` triples; ``previous_tier`` (an update's build) adds
    ``PREVIOUS_TIER``, the tier the tenant is on while ``TIER`` names the one it moves to. The result is
    sorted by name so the same inputs always give the same list (what is sent, stored and compared in tests).
    """
    env: dict[str, EnvVar] = {}
    local = builder_config.get("type") == BuilderType.LOCAL

    for name, value, var_type in tier_variables:
        validate_name(name, source=f"tier {tier_name} variables", reserved=local, local=local)
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
    if previous_tier is not None:
        derived["PREVIOUS_TIER"] = previous_tier
    for name, value in _as_mapping(plan.get("sizeConfig"), "planConfig.sizeConfig").items():
        derived[validate_name(name, source="planConfig.sizeConfig", reserved=True, local=local)] = value
    derived["tenant"] = json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)
    for name, value in derived.items():
        env[name] = EnvVar(name=name, value=encode_value(value))

    config = _as_mapping(builder_config.get("config"), "builderConfig.config")
    overrides = _as_mapping(config.get("environmentOverride"), "builderConfig.config.environmentOverride")
    for name, value in overrides.items():
        validate_name(name, source="builderConfig.config.environmentOverride", reserved=True, local=local)
        env[name] = EnvVar(name=name, value=encode_value(value))

    return [env[name] for name in sorted(env)]


def environment_masked(environment: Iterable[EnvVar]) -> list[dict[str, str]]:
    return [variable.masked() for variable in environment]
