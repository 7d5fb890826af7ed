"""AWS CodeBuild: ``StartBuild`` with the environment as overrides, ``BatchGetBuilds`` to poll.

The client comes from ``orchestrator.aws.aws_client`` unless one is injected (tests use a fake at this
boundary only, because moto's CodeBuild never fails a build and echoes no environment).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from orchestrator.aws import TRANSIENT_AWS_ERRORS, aws_client, is_transient
from tenants.builders.base import Builder, BuildRejected, BuildState, BuildUnavailable, StartedBuild
from tenants.models import BuildStatus

if TYPE_CHECKING:
    from tenants.models import Build
    from tenants.services.environment import EnvVar

BATCH_GET_BUILDS_LIMIT = 100
_KNOWN_STATUSES = {choice.value for choice in BuildStatus}


def _failure_reason(build: dict[str, Any]) -> str:
    """The first failed phase and its context messages, as CodeBuild reports them."""
    for phase in build.get("phases") or []:
        if phase.get("phaseStatus") in {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"}:
            messages = [ctx.get("message", "") for ctx in phase.get("contexts") or [] if ctx.get("message")]
            detail = f": {'; '.join(messages)}" if messages else ""
            return f"{phase.get('phaseType', 'phase')} {phase['phaseStatus']}{detail}"
    return ""


def build_state_from_codebuild(build: dict[str, Any]) -> BuildState:
    status = build.get("buildStatus", BuildStatus.IN_PROGRESS)
    if status not in _KNOWN_STATUSES:
        status = BuildStatus.FAULT
    ended = build.get("endTime")
    return BuildState(
        build_id=build["id"],
        status=status,
        reason=_failure_reason(build) if status != BuildStatus.SUCCEEDED else "",
        ended_at=ended if isinstance(ended, datetime) else None,
        logs_url=(build.get("logs") or {}).get("deepLink", ""),
    )


class CodeBuildBuilder(Builder):
    type = "CODE_BUILD"

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client if self._client is not None else aws_client("codebuild")

    def start(self, *, build: "Build", environment: Sequence["EnvVar"]) -> StartedBuild:
        try:
            response = self.client.start_build(
                projectName=build.project,
                environmentVariablesOverride=[variable.as_codebuild() for variable in environment],
                idempotencyToken=build.idempotency_token,
            )
        except ClientError as error:
            if is_transient(error):
                raise BuildUnavailable(f"CodeBuild did not take the build yet: {_code(error)}.") from error
            message = error.response.get("Error", {}).get("Message", "")
            raise BuildRejected(
                f"CodeBuild refused to start project {build.project!r}: {_code(error)}: {message}".rstrip(": ")
            ) from error
        except TRANSIENT_AWS_ERRORS as error:
            raise BuildUnavailable(f"CodeBuild is unreachable ({error.__class__.__name__}).") from error
        started = response["build"]
        return StartedBuild(
            build_id=started["id"],
            arn=started.get("arn", ""),
            logs_url=(started.get("logs") or {}).get("deepLink", ""),
        )

    def poll(self, *, builds: Sequence["Build"]) -> list[BuildState]:
        ids = [build.build_id for build in builds if build.build_id]
        states: list[BuildState] = []
        for offset in range(0, len(ids), BATCH_GET_BUILDS_LIMIT):
            try:
                response = self.client.batch_get_builds(ids=ids[offset : offset + BATCH_GET_BUILDS_LIMIT])
            except ClientError as error:
                if is_transient(error):
                    raise BuildUnavailable(f"CodeBuild did not answer: {_code(error)}.") from error
                raise
            except TRANSIENT_AWS_ERRORS as error:
                raise BuildUnavailable(f"CodeBuild is unreachable ({error.__class__.__name__}).") from error
            states.extend(build_state_from_codebuild(build) for build in response.get("builds", []))
        return states


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "ClientError")
