"""Running one LOCAL build (``local_build_run``), in the Celery task ``tenants.run_local_build`` that the LOCAL
builder (``tenants.builders.local``, where the command's rules are) enqueues.

How a build runs:

1. The runner claims the build under a lease, renewed while the command runs (``tenants.services.local_runs``):
   a task delivered again while the lease is live skips the build; a build whose runner died (lease run
   out) is run again, with the same identity, by a new task the recovery hands out. So a build command
   may run more than once (like a retried CodeBuild build) and must be idempotent; it is killed with its
   runner (parent-death signal on Linux), so two runs never overlap.
2. The environment is the same one CodeBuild would get (``build_environment``). ``PARAMETER_STORE`` and
   ``SECRETS_MANAGER`` variables are resolved through SSM / Secrets Manager. On top come what CodeBuild's
   runtime provides (``CODEBUILD_BUILD_ID``, ``CODEBUILD_BUILD_NUMBER``, ``CODEBUILD_SRC_DIR``,
   ``CODEBUILD_INITIATOR``), ``BUILD_PURPOSE`` (provision/deprovision), ``ORCHESTRATOR_OUTPUT_FILE``, a fixed
   ``PATH``, ``HOME``/``TMPDIR`` in the build's scratch directory, and the few variables of this process
   listed in ``LOCAL_BUILD_PASSTHROUGH_ENV`` (``DEMO_RECEIVER_URL``...). Nothing else of the worker's
   environment (database URL, Django secret) reaches the script. A root worker runs it as
   ``LOCAL_BUILD_USER``, never as root.
3. The script exports its outputs by writing ``KEY=VALUE`` lines to ``$ORCHESTRATOR_OUTPUT_FILE``.
4. The runner stores its outcome on the build, then POSTs ``TENANT_PROVISIONING_SUCCESS`` (exit code 0) or
   ``TENANT_PROVISIONING_FAILURE`` to the intake (``{ORCHESTRATOR_BASE_URL}/api/events/`` with the first
   ``INTAKE_API_KEYS`` key in ``INTAKE_API_KEY_HEADER``; posted again until the intake accepts it), exactly
   as the CodeBuild post-build step sends its environment: the plaintext build variables (secret-typed
   ones are left out), the script's outputs, ``CODEBUILD_BUILD_ID`` and ``CODEBUILD_BUILD_SUCCEEDING``
   ("1"/"0"), and on failure ``FAILURE_REASON``. Deprovision builds report with the same two detail types
   (the outcome service tells them apart by ``CODEBUILD_BUILD_ID``).
"""

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from orchestrator.aws import aws_client
from orchestrator.errors import ApplicationError
from orchestrator.redaction import redact_text
from tenants.builders.base import BuildRejected
from tenants.builders.local import local_build_id
from tenants.builders.local_sandbox import (
    child_environment,
    command_argv,
    popen_identity,
    scratch_prepare,
)
from tenants.models import Build, VariableType

if TYPE_CHECKING:
    from tenants.services.environment import EnvVar
    from tenants.services.local_runs import BuildLease

logger = logging.getLogger(__name__)

OUTPUT_FILE_VARIABLE = "ORCHESTRATOR_OUTPUT_FILE"
LOG_TAIL_LINES = 20
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Looked up here, not in the forked child (no dynamic loading between fork and exec).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _resolve(variable: "EnvVar") -> str:
    if variable.type == VariableType.PARAMETER_STORE:
        response = aws_client("ssm").get_parameter(Name=variable.value, WithDecryption=True)
        return response["Parameter"]["Value"]
    if variable.type == VariableType.SECRETS_MANAGER:
        # CodeBuild's reference format: secret-id[:json-key[:version-stage[:version-id]]]; the id may be an ARN.
        parts = variable.value.split(":")
        split_at = 7 if variable.value.startswith("arn:") else 1
        secret_id, rest = ":".join(parts[:split_at]), parts[split_at:]
        kwargs: dict[str, str] = {"SecretId": secret_id}
        if len(rest) > 1 and rest[1]:
            kwargs["VersionStage"] = rest[1]
        if len(rest) > 2 and rest[2]:
            kwargs["VersionId"] = rest[2]
        secret = aws_client("secretsmanager").get_secret_value(**kwargs)["SecretString"]
        if rest and rest[0]:
            value = json.loads(secret)[rest[0]]
            return value if isinstance(value, str) else json.dumps(value)
        return secret
    return variable.value


def resolve_environment(environment: Sequence["EnvVar"]) -> dict[str, str]:
    """Plain values for the subprocess (secret references resolved). Raises ``BuildRejected``."""
    resolved = {}
    for variable in environment:
        try:
            resolved[variable.name] = _resolve(variable)
        except (ClientError, BotoCoreError, KeyError, ValueError) as error:
            raise BuildRejected(
                f"Could not resolve {variable.type} variable {variable.name} ({variable.value}): "
                f"{error.__class__.__name__}."
            ) from None
    return resolved


def parse_outputs(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (``export`` prefix, blank lines and ``#`` comments allowed)."""
    from tenants.services.environment import InvalidEnvironment, validate_name

    outputs: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, separator, value = line.partition("=")
        if not separator:
            continue
        name = name.strip()
        try:
            validate_name(name, source="script outputs")
        except InvalidEnvironment:
            if not name.startswith("CODEBUILD_"):  # CODEBUILD_BUILD_POSTBUILD etc. are legitimate outputs
                logger.warning("ignoring invalid output name %r", name)
                continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        outputs[name] = value
    return outputs


def _die_with_parent() -> None:
    """In the command's process, before exec: be killed when the runner dies (a killed worker must not
    leave its command running beside the next run)."""
    assert _prctl is not None  # only run where there is one (``_run``)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(argv: list[str], env: dict[str, str], cwd: Path, lease: "BuildLease") -> tuple[int | None, str]:
    """Run the command in its own process group, renewing ``lease`` while it runs; returns (exit code or
    None on timeout, output). ``LeaseLost``: the command was killed, another run owns the build."""
    from tenants.services.local_runs import LeaseLost

    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl is not None else None,
            **popen_identity(),  # never as root (local_sandbox)
        )
    except OSError as error:  # e.g. the build's user may not read the script
        return 126, f"could not start {argv[0]}: {error.strerror or error}"
    deadline = time.monotonic() + settings.LOCAL_BUILD_TIMEOUT_SECONDS
    while True:
        try:
            output, _ = process.communicate(timeout=max(0.0, min(lease.renew_every, deadline - time.monotonic())))
            return process.returncode, output.decode(errors="replace")
        except subprocess.TimeoutExpired:
            pass  # what was read so far is kept for the next communicate()
        if time.monotonic() >= deadline:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            return None, output.decode(errors="replace")
        try:
            lease.renew()
        except LeaseLost:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise


def local_build_run(*, build_pk: int) -> str:
    """Run one LOCAL build (see the module docstring). Returns what happened, for the task log."""
    from tenants.services.builds import build_environment_for
    from tenants.services.local_runs import (
        LeaseLost,
        local_build_claim,
        local_build_finish,
        local_build_outcome_deliver,
        outcome_envelope,
    )

    lease = local_build_claim(build_pk=build_pk)
    if isinstance(lease, str):
        return lease
    build = Build.objects.select_related("tenant").get(pk=build_pk)
    started = time.monotonic()
    output, exit_code, reason = "", None, ""
    environment: list[EnvVar] = []
    known_secrets: list[str] = []
    with tempfile.TemporaryDirectory(prefix="orchestrator-build-") as workdir:
        outputs_path = Path(workdir) / "outputs.env"
        outputs_path.touch()
        try:
            environment = build_environment_for(build=build)
            resolved = resolve_environment(environment)
            argv = command_argv(build.project)
            scratch = scratch_prepare(Path(workdir))
        except ApplicationError as error:
            reason = error.message
        else:
            known_secrets = [
                resolved[v.name]
                for v in environment
                if v.type != VariableType.PLAINTEXT or v.masked()["value"] != v.value
            ]
            env = child_environment(
                variables=resolved,
                runner={
                    OUTPUT_FILE_VARIABLE: str(outputs_path),
                    "CODEBUILD_BUILD_ID": build.build_id or local_build_id(build),
                    "CODEBUILD_BUILD_NUMBER": str(build.attempt),
                    "CODEBUILD_SRC_DIR": str(Path(settings.LOCAL_BUILD_ROOT).resolve()),
                    "CODEBUILD_INITIATOR": "orchestrator/local",
                    "BUILD_PURPOSE": build.purpose,
                },
                scratch=scratch,
            )
            try:
                exit_code, output = _run(argv, env, Path(settings.LOCAL_BUILD_ROOT).resolve(), lease)
            except LeaseLost as error:
                logger.warning("build %s: command killed, lease lost: %s", build.pk, error)
                return f"abandoned: {error}"
            if exit_code is None:
                reason = f"The command timed out after {settings.LOCAL_BUILD_TIMEOUT_SECONDS} s."
            elif exit_code != 0:
                last = next((line for line in reversed(output.strip().splitlines()) if line.strip()), "")
                reason = f"The command exited with {exit_code}" + (f": {last.strip()}" if last else ".")
        outputs = parse_outputs(outputs_path.read_text(errors="replace"))

    output = redact_text(output, known_secrets)
    reason = redact_text(reason, known_secrets)
    succeeded = exit_code == 0 and not reason
    for line in output.splitlines():
        logger.info("build %s | %s", build.pk, line)
    detail: dict[str, Any] = {v.name: v.value for v in environment if v.type == VariableType.PLAINTEXT}
    detail.update(outputs)
    detail["CODEBUILD_BUILD_ID"] = build.build_id or local_build_id(build)
    detail["CODEBUILD_BUILD_SUCCEEDING"] = "1" if succeeded else "0"
    detail.setdefault("tenant", json.dumps({"id": build.tenant_id, "key": build.tenant.key}))
    if not succeeded:
        detail["FAILURE_REASON"] = reason
    detail_type = "TENANT_PROVISIONING_SUCCESS" if succeeded else "TENANT_PROVISIONING_FAILURE"
    finished = local_build_finish(
        lease=lease,
        outcome=outcome_envelope(build=build, detail_type=detail_type, detail=detail),
        summary=f"Local {build.purpose} command finished (run {build.runs}): " + ("succeeded" if succeeded else reason),
        details={
            "exit_code": exit_code,
            "seconds": round(time.monotonic() - started, 2),
            "log_tail": output.splitlines()[-LOG_TAIL_LINES:],
        },
    )
    if not finished:
        return "abandoned: another run owns the build now"
    return local_build_outcome_deliver(build_pk=build.pk, attempts=settings.LOCAL_BUILD_POST_ATTEMPTS)
