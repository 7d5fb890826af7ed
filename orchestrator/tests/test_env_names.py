"""The naming rules for build variables: syntax, reserved names (any case), and the LOCAL positive rule."""

import pytest

from orchestrator.env_names import name_problem, reserved_reason


@pytest.mark.parametrize(
    "name",
    [
        "BASH_ENV",
        "bash_env",
        "ENV",
        "Ld_Preload",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "PYTHONWARNINGS",
        "PERL5OPT",
        "PERLLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "JAVA_TOOL_OPTIONS",
        "SHELLOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "PATH",
        "HOME",
        "TMPDIR",
        "GCONV_PATH",
        "MALLOC_CHECK_",
        "LC_ALL",
        "http_proxy",
        "GIT_SSH_COMMAND",
        "SSL_CERT_FILE",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "codebuild_build_id",
        "ORCHESTRATOR_OUTPUT_FILE",
    ],
)
def test_reserved_names_are_refused_whatever_their_case(name):
    assert reserved_reason(name)
    assert name_problem(name) == f"is reserved: {reserved_reason(name)}"


@pytest.mark.parametrize(
    "name", ["MAX_USERS", "ENVIRONMENT", "NAMESPACE", "TENANT_ID", "TF_STATE_BUCKET", "PATHS", "AWS_REGION"]
)
def test_ordinary_names_are_not_reserved(name):
    assert reserved_reason(name) == ""
    assert name_problem(name, local=True) == ""


@pytest.mark.parametrize("name", ["", "1LEADING", "has-dash", "has space", "naïve", "A" * 256, None, 5])
def test_names_outside_the_syntax_are_refused(name):
    assert name_problem(name, reserved=False).startswith("is not a valid name")


def test_the_codebuild_prefix_is_refused_even_without_the_reserved_list():
    assert name_problem("CODEBUILD_BUILD_ID", reserved=False) == "uses the prefix CODEBUILD_, reserved by CodeBuild"


@pytest.mark.parametrize(
    ("name", "codebuild", "local"),
    [
        ("tenant", True, True),  # the control plane's own lowercase names
        ("secret", True, True),
        ("context", True, True),
        ("custom_flag", True, False),
        ("maxUsers", True, False),
        ("_PRIVATE", True, False),
        ("A" * 128, True, True),
        ("A" * 129, True, False),
    ],
)
def test_the_local_rule_is_positive(name, codebuild, local):
    assert (name_problem(name) == "") is codebuild
    assert (name_problem(name, local=True) == "") is local
