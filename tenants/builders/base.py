"""The builder interface: start a build for a ``Build`` row, and report the state of running builds.

A builder never touches tenant status: it returns what happened and the services decide. Errors:
``BuildRejected`` is permanent (the project does not exist, the command is not allowed: the tenant
fails with the message); ``BuildUnavailable`` is transient (the backend did not answer: the caller's
task retries, and the same idempotency token guarantees a retry never starts a second build).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from orchestrator.errors import ApplicationError, ServiceUnavailableError

if TYPE_CHECKING:
    from tenants.models import Build
    from tenants.services.environment import EnvVar


class BuildRejected(ApplicationError):
    """The builder refused the build for good (shown as the tenant's failure reason)."""

    code = "build_rejected"


class BuildUnavailable(ServiceUnavailableError):
    """The builder's backend could not be reached; retry later with the same token."""

    code = "builder_unavailable"


@dataclass(frozen=True)
class StartedBuild:
    build_id: str
    arn: str = ""
    logs_url: str = ""


@dataclass(frozen=True)
class BuildState:
    """A build's state as the backend reports it (``status`` is a ``BuildStatus`` value)."""

    build_id: str
    status: str
    reason: str = ""
    ended_at: datetime | None = None
    logs_url: str = ""
    extra: dict = field(default_factory=dict)


class Builder(ABC):
    type: str = ""

    @abstractmethod
    def start(self, *, build: "Build", environment: Sequence["EnvVar"]) -> StartedBuild:
        """Start ``build`` (project, token and purpose are on the row) with ``environment``.

        Called after the ``Build`` row is committed. Must be idempotent for ``build.idempotency_token``.
        """

    @abstractmethod
    def poll(self, *, builds: Sequence["Build"]) -> list[BuildState]:
        """The current state of running builds (only those the backend knows about)."""
