"""LOCAL builder: run the tier's build command on this machine, then report like CodeBuild's post-build step.

For a LOCAL tier, ``Tier.provision_project`` / ``deprovision_project`` is a command line, split like a
shell would (no shell runs it), e.g. ``demo/build.sh provision``; it must be one of ``LOCAL_BUILD_COMMANDS``
and its executable must live inside ``LOCAL_BUILD_ROOT`` (the repository root by default). The builder is
off unless ``LOCAL_BUILDER_ENABLED``, and a tier must allow it (``tenants.services.build_policy``). What
the command runs as and sees: ``tenants.builders.local_sandbox``.

How a build runs (``local_build_run``, in the Celery task ``tenants.run_local_build`` on the
``LOCAL_BUILD_QUEUE`` queue, so the event handler returns at once and a worker restart re-delivers it):

1. The runner claims the build (``Build.claimed_at``); a redelivered task never runs the command twice.
2. The environment is the same one CodeBuild would get (``build_environment``). ``PARAMETER_STORE`` and
   ``SECRETS_MANAGER`` variables are resolved through SSM / Secrets Manager. On top come what CodeBuild's
   runtime provides (``CODEBUILD_BUILD_ID``, ``CODEBUILD_BUILD_NUMBER``, ``CODEBUILD_SRC_DIR``,
   ``CODEBUILD_INITIATOR``), ``BUILD_PURPOSE`` (provision/deprovision), ``ORCHESTRATOR_OUTPUT_FILE``, a fixed
   ``PATH``, ``HOME``/``TMPDIR`` in the build's scratch directory, and the few variables of this process
   listed in ``LOCAL_BUILD_PASSTHROUGH_ENV`` (``DEMO_RECEIVER_URL``...). Nothing else of the worker's
   environment (database URL, Django secret) reaches the script. A root worker runs it as
   ``LOCAL_BUILD_USER``, never as root.
3. The script exports its outputs by writing ``KEY=VALUE`` lines to ``$ORCHESTRATOR_OUTPUT_FILE``.
4. The runner POSTs ``TENANT_PROVISIONING_SUCCESS`` (exit code 0) or ``TENANT_PROVISIONING_FAILURE`` to the
   intake (``{ORCHESTRATOR_BASE_URL}/api/events/`` with the first ``INTAKE_API_KEYS`` key in
   ``INTAKE_API_KEY_HEADER``), exactly as the CodeBuild post-build step sends its environment: the plaintext
   build variables (secret-typed ones are left out), the script's outputs, ``CODEBUILD_BUILD_ID`` and
   ``CODEBUILD_BUILD_SUCCEEDING`` ("1"/"0"), and on failure ``FAILURE_REASON``. Deprovision builds report
   with the same two detail types (the outcome service tells them apart by ``CODEBUILD_BUILD_ID``).

A build that never reports (worker killed mid-run) is timed out by the build poller.
"""

import json
import logging
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orchestrator.aws import aws_client
from orchestrator.errors import ApplicationError
from orchestrator.redaction import redact_text
from tenants.builders.base import Builder, BuildRejected, BuildState, StartedBuild
from tenants.builders.local_sandbox import child_environment, command_argv, popen_identity, scratch_prepare
from tenants.models import Build, BuildStatus, VariableType

if TYPE_CHECKING:
    from tenants.services.environment import EnvVar

logger = logging.getLogger(__name__)

OUTPUT_FILE_VARIABLE = "ORCHESTRATOR_OUTPUT_FILE"
LOG_TAIL_LINES = 20
# Seconds past LOCAL_BUILD_TIMEOUT_SECONDS before the poller declares a claimed build lost.
LOST_BUILD_GRACE_SECONDS = 120


class OutcomeNotDelivered(Exception):
    pass


def local_build_id(build: Build) -> str:
    return f"local:{build.idempotency_token}"


class LocalBuilder(Builder):
    type = "LOCAL"

    def start(self, *, build: Build, environment: Sequence["EnvVar"]) -> StartedBuild:
        if not settings.LOCAL_BUILDER_ENABLED:
            raise BuildRejected("The LOCAL builder is disabled on this deployment (LOCAL_BUILDER_ENABLED).")
        command_argv(build.project)
        local_build_enqueue(build_pk=build.pk)
        return StartedBuild(build_id=local_build_id(build))

    def poll(self, *, builds: Sequence[Build]) -> list[BuildState]:
        now = timezone.now()
        lost_after = timedelta(seconds=settings.LOCAL_BUILD_TIMEOUT_SECONDS + LOST_BUILD_GRACE_SECONDS)
        states = []
        for build in builds:
            if build.claimed_at is None:
                local_build_enqueue(build_pk=build.pk)  # never picked up (broker hiccup): hand it out again
            elif build.claimed_at < now - lost_after:
                states.append(
                    BuildState(
                        build_id=build.build_id,
                        status=BuildStatus.TIMED_OUT,
                        reason=f"The local runner did not report within {int(lost_after.total_seconds())} s.",
                        ended_at=now,
                    )
                )
        return states


def local_build_enqueue(*, build_pk: int) -> None:
    from tenants.tasks import run_local_build

    transaction.on_commit(
        lambda: run_local_build.apply_async(kwargs={"build_pk": build_pk}, queue=settings.LOCAL_BUILD_QUEUE)
    )


# --- The runner ----------------------------------------------------------------------------------------


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


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int | None, str]:
    """Run the command in its own process group; returns (exit code or None on timeout, output)."""
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen_identity(),  # never as root (local_sandbox)
        )
    except OSError as error:  # e.g. the build's user may not read the script
        return 126, f"could not start {argv[0]}: {error.strerror or error}"
    try:
        output, _ = process.communicate(timeout=settings.LOCAL_BUILD_TIMEOUT_SECONDS)
        return process.returncode, output.decode(errors="replace")
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output.decode(errors="replace")


def _envelope(*, build: Build, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        # Derived from the build: a second report of the same build is deduplicated by the intake.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"orchestrator:local-build:{build.idempotency_token}")),
        "detail-type": detail_type,
        "source": "saas.tenant.provisioning.codebuild",
        "account": "000000000000",
        "time": timezone.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": settings.AWS_REGION,
        "resources": [],
        "detail": detail,
    }


def outcome_post(*, envelope: dict[str, Any]) -> None:
    """POST the outcome to our own intake, retrying while it is unreachable or answering 5xx/429."""
    url = settings.ORCHESTRATOR_BASE_URL.rstrip("/") + "/api/events/"
    headers = {"Content-Type": "application/json"}
    auth = None
    if settings.INTAKE_API_KEYS:
        headers[settings.INTAKE_API_KEY_HEADER] = settings.INTAKE_API_KEYS[0]
    elif settings.INTAKE_BASIC_AUTH:
        user, _, password = settings.INTAKE_BASIC_AUTH[0].partition(":")
        auth = (user, password)
    body = json.dumps(envelope, separators=(",", ":")).encode()
    problem = ""
    for attempt in range(max(1, settings.LOCAL_BUILD_POST_ATTEMPTS)):
        if attempt:
            time.sleep(min(30.0, 0.5 * 2 ** (attempt - 1)))
        try:
            response = requests.post(url, data=body, headers=headers, auth=auth, timeout=(5, 30), allow_redirects=False)
        except requests.RequestException as error:
            problem = f"{error.__class__.__name__} reaching {url}"
            continue
        if 200 <= response.status_code < 300:
            return
        problem = f"intake answered {response.status_code}: {response.text[:300]}"
        if response.status_code not in (408, 429) and response.status_code < 500:
            break
    raise OutcomeNotDelivered(problem)


def local_build_run(*, build_pk: int) -> str:
    """Run one LOCAL build (see the module docstring). Returns what happened, for the task log."""
    from tenants.services.builds import build_environment_for, build_record_state, history_record_build

    claimed = Build.objects.filter(pk=build_pk, status=BuildStatus.IN_PROGRESS, claimed_at__isnull=True).update(
        claimed_at=timezone.now()
    )
    if not claimed:
        return "skipped: already claimed or finished"
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
            exit_code, output = _run(argv, env, Path(settings.LOCAL_BUILD_ROOT).resolve())
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
    history_record_build(
        build=build,
        summary=f"Local {build.purpose} command finished: " + ("succeeded" if succeeded else reason),
        details={
            "exit_code": exit_code,
            "seconds": round(time.monotonic() - started, 2),
            "log_tail": output.splitlines()[-LOG_TAIL_LINES:],
        },
    )

    detail: dict[str, Any] = {v.name: v.value for v in environment if v.type == VariableType.PLAINTEXT}
    detail.update(outputs)
    detail["CODEBUILD_BUILD_ID"] = build.build_id or local_build_id(build)
    detail["CODEBUILD_BUILD_SUCCEEDING"] = "1" if succeeded else "0"
    detail.setdefault("tenant", json.dumps({"id": build.tenant_id, "key": build.tenant.key}))
    if not succeeded:
        detail["FAILURE_REASON"] = reason
    detail_type = "TENANT_PROVISIONING_SUCCESS" if succeeded else "TENANT_PROVISIONING_FAILURE"
    try:
        outcome_post(envelope=_envelope(build=build, detail_type=detail_type, detail=detail))
    except OutcomeNotDelivered as error:
        logger.error("build %s: outcome not delivered to the intake: %s", build.pk, error)
        build_record_state(
            build=build,
            status=BuildStatus.FAULT if succeeded else BuildStatus.FAILED,
            reason=f"The build's outcome could not be delivered to the intake ({error}). " + (reason or ""),
        )
        return f"undelivered: {error}"
    return f"{detail_type} delivered"
