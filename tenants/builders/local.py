"""LOCAL builder: run the tier's build command on this machine, then report like CodeBuild's post-build step.

For a LOCAL tier, ``Tier.provision_project`` / ``deprovision_project`` is a command line, split like a
shell would (no shell runs it), e.g. ``demo/build.sh provision``. The executable is resolved relative to
``LOCAL_BUILD_ROOT`` (the repository root by default) and must live inside it, so a tier can only run
scripts shipped with the deployment. ``LOCAL_BUILDER_ENABLED=false`` turns the builder off.

The builder starts and polls. Starting checks the command and hands the build to the Celery task
``tenants.run_local_build`` on the ``LOCAL_BUILD_QUEUE`` queue (so the event handler returns at once and a
worker restart re-delivers it), which runs it (``tenants.services.local_builds``). Polling hands out again a
build no worker picked up, and times out one whose runner never reported (worker killed mid-run).
"""

import os
import shlex
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tenants.builders.base import Builder, BuildRejected, BuildState, StartedBuild
from tenants.models import Build, BuildStatus

if TYPE_CHECKING:
    from tenants.services.environment import EnvVar

# Seconds past LOCAL_BUILD_TIMEOUT_SECONDS before the poller declares a claimed build lost.
LOST_BUILD_GRACE_SECONDS = 120


def command_argv(command: str) -> list[str]:
    """The tier's command as an argv, its executable resolved inside ``LOCAL_BUILD_ROOT``."""
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise BuildRejected(f"LOCAL build command {command!r} cannot be parsed: {error}.") from None
    if not argv:
        raise BuildRejected("The tier has no LOCAL build command.")
    root = Path(settings.LOCAL_BUILD_ROOT).resolve()
    executable = (root / argv[0]).resolve()
    if not executable.is_relative_to(root):
        raise BuildRejected(f"LOCAL build command {argv[0]!r} must be a script inside {root}.")
    if not executable.is_file():
        raise BuildRejected(f"LOCAL build command {argv[0]!r} not found under {root}.")
    if not os.access(executable, os.X_OK):
        raise BuildRejected(f"LOCAL build command {argv[0]!r} is not executable.")
    return [str(executable), *argv[1:]]


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

    transaction.on_commit(lambda: run_local_build.delay(build_pk=build_pk))
