"""build_environment: tier variables < plan-derived < builderConfig overrides; values encoded, names checked."""

import json

import pytest

from orchestrator.redaction import MASK
from tenants.models import VariableType
from tenants.services.environment import EnvVar, InvalidEnvironment, build_environment, environment_masked


def env(**kwargs):
    arguments = {
        "tier_name": "BASIC",
        "tier_variables": [],
        "tenant_id": "t-1",
        "tenant_document": {"id": "t-1", "key": "acme", "name": "Acme"},
        "plan": {"id": "plan-1", "tier": "BASIC"},
        "builder_config": {"type": "CODE_BUILD"},
    }
    arguments.update(kwargs)
    return {variable.name: variable for variable in build_environment(**arguments)}


def test_precedence_tier_then_plan_then_overrides():
    result = env(
        tier_variables=[("MAX_USERS", "1", "PLAINTEXT"), ("REGION", "eu", "PLAINTEXT"), ("TIER", "x", "PLAINTEXT")],
        plan={"id": "plan-1", "tier": "BASIC", "sizeConfig": {"MAX_USERS": 20, "REGION": "us"}},
        builder_config={"config": {"environmentOverride": {"REGION": "ap", "EXTRA": "1"}}},
    )

    assert result["MAX_USERS"].value == "20"  # plan beats tier
    assert result["REGION"].value == "ap"  # override beats plan and tier
    assert result["TIER"].value == "BASIC"  # derived beats a tier variable of the same name
    assert result["EXTRA"].value == "1"


def test_plan_derived_variables():
    result = env(tenant_document={"key": "acme", "name": "Acme", "contacts": [{"email": "a@b.c"}]})

    assert {name: result[name].value for name in ("TENANT_ID", "TENANT_KEY", "TENANT_NAME", "TIER", "PLAN_ID")} == {
        "TENANT_ID": "t-1",
        "TENANT_KEY": "acme",
        "TENANT_NAME": "Acme",
        "TIER": "BASIC",
        "PLAN_ID": "plan-1",
    }
    assert json.loads(result["tenant"].value) == {
        "key": "acme",
        "name": "Acme",
        "contacts": [{"email": "a@b.c"}],
        "id": "t-1",
    }


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("text", "text"),
        (3600, "3600"),
        (1.5, "1.5"),
        (True, "true"),
        (None, ""),
        ({"a": {"b": [1, 2]}}, '{"a":{"b":[1,2]}}'),
        (["x", {"y": 1}], '["x",{"y":1}]'),
        ("ünïcode", "ünïcode"),
    ],
)
def test_values_are_encoded_never_object_object(value, encoded):
    result = env(builder_config={"config": {"environmentOverride": {"VALUE": value}}})

    assert result["VALUE"].value == encoded
    assert "[object Object]" not in result["VALUE"].value


@pytest.mark.parametrize("name", ["bad-name", "1LEADING_DIGIT", "has space", "", "CODEBUILD_BUILD_ID", "naïve"])
@pytest.mark.parametrize("source", ["override", "size", "tier"])
def test_invalid_names_are_refused_with_their_source(name, source):
    kwargs = {
        "override": {"builder_config": {"config": {"environmentOverride": {name: "x"}}}},
        "size": {"plan": {"tier": "BASIC", "sizeConfig": {name: "x"}}},
        "tier": {"tier_variables": [(name, "x", "PLAINTEXT")]},
    }[source]

    with pytest.raises(InvalidEnvironment) as error:
        env(**kwargs)

    assert repr(name) in error.value.message


def test_non_object_override_is_refused():
    with pytest.raises(InvalidEnvironment, match="environmentOverride must be an object"):
        env(builder_config={"config": {"environmentOverride": ["A=1"]}})


def test_secret_typed_tier_variables_keep_their_type_and_reference():
    result = env(
        tier_variables=[
            ("DB_PASSWORD", "/app/db", VariableType.PARAMETER_STORE),
            ("API_KEY", "app/api:key", VariableType.SECRETS_MANAGER),
        ]
    )

    assert result["DB_PASSWORD"].as_codebuild() == {
        "name": "DB_PASSWORD",
        "value": "/app/db",
        "type": "PARAMETER_STORE",
    }
    assert result["API_KEY"].as_codebuild()["type"] == "SECRETS_MANAGER"


def test_masked_copy_hides_secret_named_plaintext_values_only():
    variables = [
        EnvVar("secret", "hmac"),
        EnvVar("CLIENT_SECRET", "abc"),
        EnvVar("DB_PASSWORD", "/app/db", VariableType.PARAMETER_STORE),
        EnvVar("TENANT_KEY", "acme"),
    ]

    assert environment_masked(variables) == [
        {"name": "secret", "value": MASK, "type": "PLAINTEXT"},
        {"name": "CLIENT_SECRET", "value": MASK, "type": "PLAINTEXT"},
        {"name": "DB_PASSWORD", "value": "/app/db", "type": "PARAMETER_STORE"},
        {"name": "TENANT_KEY", "value": "acme", "type": "PLAINTEXT"},
    ]


def test_same_inputs_same_sorted_list():
    arguments = {
        "tier_name": "BASIC",
        "tier_variables": [("Z", "1", "PLAINTEXT"), ("A", "2", "PLAINTEXT")],
        "tenant_id": "t",
        "tenant_document": {},
        "plan": {},
        "builder_config": {},
    }

    first, second = build_environment(**arguments), build_environment(**arguments)

    assert first == second
    assert [v.name for v in first] == sorted(v.name for v in first)


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("override", "BASH_ENV"),
        ("override", "ld_preload"),
        ("size", "PYTHONPATH"),
        ("size", "PATH"),
    ],
)
@pytest.mark.parametrize("builder", ["CODE_BUILD", "LOCAL"])
def test_reserved_names_from_the_event_are_refused_for_every_builder(source, name, builder):
    kwargs = {
        "override": {"builder_config": {"type": builder, "config": {"environmentOverride": {name: "x"}}}},
        "size": {"builder_config": {"type": builder}, "plan": {"tier": "BASIC", "sizeConfig": {name: "x"}}},
    }[source]

    with pytest.raises(InvalidEnvironment, match=f"'{name}' in .* is reserved: it "):
        env(**kwargs)


@pytest.mark.parametrize("name", ["PATH", "custom_flag", "LD_PRELOAD"])
def test_tier_variables_follow_the_local_rule_only_for_local_builds(name):
    tier_variables = [(name, "x", "PLAINTEXT")]

    assert env(tier_variables=tier_variables, builder_config={"type": "CODE_BUILD"})[name].value == "x"
    with pytest.raises(InvalidEnvironment, match=f"'{name}' in tier BASIC variables"):
        env(tier_variables=tier_variables, builder_config={"type": "LOCAL"})


def test_local_builds_take_upper_case_names_and_the_control_planes_own():
    result = env(
        builder_config={"type": "LOCAL", "config": {"environmentOverride": {"secret": "s", "context": "c", "MAX": 1}}}
    )

    assert {name: result[name].value for name in ("secret", "context", "MAX")} == {
        "secret": "s",
        "context": "c",
        "MAX": "1",
    }
    with pytest.raises(
        InvalidEnvironment, match=r"'maxUsers' in planConfig\.sizeConfig is not allowed for a LOCAL build"
    ):
        env(builder_config={"type": "LOCAL"}, plan={"tier": "BASIC", "sizeConfig": {"maxUsers": 5}})
