"""LOCAL builder: run the tier's build command on this machine, then report like CodeBuild's post-build step.

For a LOCAL tier, ``Tier.provision_project`` / ``deprovision_project`` is a command line, split like a
shell would (no shell runs it), e.g. ``demo/build.sh provision``; it must be one of ``LOCAL_BUILD_COMMANDS``
and its executable must live inside ``LOCAL_BUILD_ROOT`` (the repository root by default). The builder is
off unless ``LOCAL_BUILDER_ENABLED``, and a tier must allow it (``tenants.services.build_policy``). What
the command runs as and sees: ``tenants.builders.local_sandbox``.

The builder starts and polls. Starting checks the command and hands the build to the Celery task
``tenants.run_local_build`` on the ``LOCAL_BUILD_QUEUE`` queue (so the event handler returns at once and a
worker restart re-delivers it), which runs it under a lease (``tenants.services.local_builds``). Polling
hands out again a build no worker picked up; a claimed build's runner is watched through its lease.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from tenants.builders.base import Builder, BuildRejected, BuildState, StartedBuild
from tenants.builders.local_sandbox import command_argv, command_runnable
from tenants.models import Build

if TYPE_CHECKING:
    from tenants.services.environment import EnvVar


def local_build_id(build: Build) -> str:
    return f"local:{build.idempotency_token}"


class LocalBuilder(Builder):
    type = "LOCAL"

    def start(self, *, build: Build, environment: Sequence["EnvVar"]) -> StartedBuild:
        if not settings.LOCAL_BUILDER_ENABLED:
            raise BuildRejected("The LOCAL builder is disabled on this deployment (LOCAL_BUILDER_ENABLED).")
        # Refused here, before anything is queued, rather than by a run whose outcome then has to travel back.
        command_runnable(command_argv(build.project))
        local_build_enqueue(build_pk=build.pk)
        return StartedBuild(build_id=local_build_id(build))

    def poll(self, *, builds: Sequence[Build]) -> list[BuildState]:
        """Builds never picked up (a broker hiccup) are handed out again. Nothing is reported: a claimed
        build's runner is watched through its lease (``tenants.services.local_runs``)."""
        for build in builds:
            if build.claimed_at is None:
                local_build_enqueue(build_pk=build.pk)
        return []


def local_build_enqueue(*, build_pk: int) -> None:
    from tenants.tasks import run_local_build

    transaction.on_commit(
        lambda: run_local_build.apply_async(kwargs={"build_pk": build_pk}, queue=settings.LOCAL_BUILD_QUEUE)
    )
