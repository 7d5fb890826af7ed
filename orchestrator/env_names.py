"""Which environment variable names a build may be given from outside (events, plans, tier variables).

An event's sender chooses the names of ``planConfig.sizeConfig`` and ``builderConfig.config.
environmentOverride``; a name such as ``BASH_ENV``, ``LD_PRELOAD`` or ``PYTHONSTARTUP`` would let it run
code wherever the build runs (on this machine for the LOCAL builder, in the build container with its role
for CodeBuild). Three rules, from loose to strict:

- **Syntax** (every builder, every source): letters, digits and underscores, not starting with a digit,
  at most 255 characters (CodeBuild's own limit), and not ``CODEBUILD_*`` (reserved by CodeBuild).
- **Reserved** (every builder, names from events and plans; every name of a LOCAL build): names that change
  how a shell, the dynamic loader, libc, an interpreter, a tool (git, TLS, proxies, the AWS SDKs: every
  ``AWS_*`` but the region) or the runner itself behaves. Compared without regard to case (``http_proxy``
  and ``HTTP_PROXY`` both count; some tools read either).
- **LOCAL** (every name a LOCAL build receives): additionally a positive rule, so that a name nobody thought
  of is refused too: ``^[A-Z][A-Z0-9_]{0,127}$``, or one of the lowercase names the control plane itself
  sends (``tenant``, ``secret``, ``context``).

Names the LOCAL runner sets itself (``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, ``CODEBUILD_BUILD_ID``...) and
the worker variables an operator passes through (``LOCAL_BUILD_PASSTHROUGH_ENV``) are not subject to these
rules: they never come from an event.
"""

import re

SYNTAX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
LOCAL_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")
# The lowercase names the original control plane puts in environmentOverride (and the derived ``tenant``).
CONTROL_PLANE_NAMES = frozenset({"tenant", "secret", "context"})
CODEBUILD_PREFIX = "CODEBUILD_"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# (why, exact names, prefixes), upper case: a name is reserved when its upper-case form matches.
_RESERVED: tuple[tuple[str, frozenset[str], tuple[str, ...]], ...] = (
    (
        "it changes how a shell starts or runs commands",
        _names(
            "ENV SHELLOPTS BASHOPTS PS1 PS2 PS3 PS4 PROMPT_COMMAND IFS CDPATH GLOBIGNORE EXECIGNORE FIGNORE "
            "HISTFILE INPUTRC MAIL MAILPATH FPATH ZDOTDIR POSIXLY_CORRECT SHELL TERMINFO TERMCAP EDITOR VISUAL "
            "PAGER MANPAGER LESSOPEN LESSCLOSE BROWSER _"
        ),
        ("BASH_",),
    ),
    (
        "it changes where programs, home and temporary files are found, or who the build is",
        _names("PATH HOME TMPDIR TMP TEMP PWD OLDPWD USER LOGNAME SHLVL"),
        ("XDG_",),
    ),
    (
        "it changes what the dynamic loader or the C library loads",
        _names(
            "GCONV_PATH LOCPATH NLSPATH GETCONF_DIR GLIBC_TUNABLES HOSTALIASES RESOLV_HOST_CONF RES_OPTIONS "
            "LOCALDOMAIN TZ TZDIR LANG LANGUAGE"
        ),
        ("LD_", "DYLD_", "MALLOC_", "LC_"),
    ),
    (
        "it changes how an interpreter or runtime starts",
        _names(
            "JAVA_TOOL_OPTIONS _JAVA_OPTIONS JDK_JAVA_OPTIONS CLASSPATH PHPRC PHP_INI_SCAN_DIR TCLLIBPATH "
            "GOFLAGS GOENV GOROOT GOPATH GOTOOLCHAIN GOPROXY RUSTC_WRAPPER RUSTFLAGS"
        ),
        ("PYTHON", "PERL", "RUBY", "GEM_", "BUNDLE_", "NODE_", "NPM_CONFIG_", "LUA_"),
    ),
    (
        "it changes how git, ssh, TLS, proxies, docker or terraform behave",
        _names(
            "HTTP_PROXY HTTPS_PROXY FTP_PROXY ALL_PROXY NO_PROXY CURL_CA_BUNDLE REQUESTS_CA_BUNDLE CURL_HOME "
            "WGETRC NETRC DOCKER_HOST DOCKER_CONFIG DOCKER_CERT_PATH KUBECONFIG TF_PLUGIN_CACHE_DIR"
        ),
        ("GIT_", "SSH_", "SSL_", "OPENSSL_", "TF_CLI_"),
    ),
    (
        "AWS credentials, profiles and endpoints come from the builder, never from an event",
        _names(""),
        ("AWS_",),
    ),
    (
        "it is set by the build runner itself",
        _names("BUILD_PURPOSE"),
        (CODEBUILD_PREFIX, "ORCHESTRATOR_"),
    ),
)


# Where to deploy, not who deploys or how: a control plane may choose a tenant's region.
_NOT_RESERVED = _names("AWS_REGION AWS_DEFAULT_REGION")


def reserved_reason(name: str) -> str:
    """Why ``name`` is reserved ("" when it is not)."""
    upper = name.upper()
    if upper in _NOT_RESERVED:
        return ""
    for why, names, prefixes in _RESERVED:
        if upper in names or upper.startswith(prefixes):
            return why
    return ""


def name_problem(name: object, *, reserved: bool = True, local: bool = False) -> str:
    """What is wrong with ``name`` as a build variable ("" when nothing is), phrased to follow the name.

    ``reserved``: refuse reserved names (see the module docstring); ``local``: apply the LOCAL rule too.
    """
    if not isinstance(name, str) or not SYNTAX.match(name):
        return "is not a valid name: use letters, digits and underscores, not starting with a digit"
    if name.startswith(CODEBUILD_PREFIX):
        return f"uses the prefix {CODEBUILD_PREFIX}, reserved by CodeBuild"
    if reserved:
        why = reserved_reason(name)
        if why:
            return f"is reserved: {why}"
    if local and name not in CONTROL_PLANE_NAMES and not LOCAL_NAME.match(name):
        return (
            "is not allowed for a LOCAL build: use upper-case letters, digits and underscores, starting with "
            f"a letter, at most 128 characters (or one of {', '.join(sorted(CONTROL_PLANE_NAMES))})"
        )
    return ""
