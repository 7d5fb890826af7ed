"""LOCAL builds survive their worker and the web: a lease on the build while its command runs, and its
outcome stored before it is posted to the intake.

- **Lease.** A runner claims the build for one run (``local_build_claim``): ``Build.lease_owner`` holds
  it until ``lease_expires_at`` (``LOCAL_BUILD_LEASE_SECONDS``), renewed every third of that while the
  command runs (``BuildLease.renew``). A task delivered again while the lease is live skips the build,
  so one build never runs twice at once. A worker killed mid-build stops renewing; once its lease has
  run out the recovery (``local_runs_recover_lost``) hands the build to a new task, which runs the
  command again with the same identity (build id, ``CODEBUILD_BUILD_ID``, outcome event id). After
  ``LOCAL_BUILD_MAX_RUNS`` runs the build is given up (``FAULT``; the tenant fails with the reason). A
  runner that cannot renew its lease in time kills its command and reports nothing: the next run will.
- **Outcome.** The event the runner posts (the CodeBuild post-build step's wire format) is stored on the
  build (``Build.outcome``, secrets sealed) in the transaction that ends the run, then posted. Until the
  intake accepts it (any 2xx, a duplicate included), the recovery posts it again with backoff
  (``local_outcomes_hand_out`` → ``local_build_outcome_deliver``). Its id is derived from the build, so a
  re-post is a duplicate at the intake, never a second outcome. An outcome the intake refuses for good
  (a 4xx other than 408/429) faults the build and fails the tenant with the intake's answer.
"""

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from tenants.models import Build, BuildStatus
from tenants.services.builds import build_record_state, history_record_build

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3
# Re-posts of an outcome the intake did not take: after 5 s, doubling up to once a minute.
REPOST_BACKOFF_SECONDS = 5.0
REPOST_BACKOFF_MAX_SECONDS = 60.0
RECOVERY_BATCH = 100


class LeaseLost(Exception):
    """This runner no longer holds the build's lease (taken over, or not renewable before it ran out)."""


class OutcomeNotDelivered(Exception):
    def __init__(self, problem: str, *, permanent: bool) -> None:
        super().__init__(problem)
        self.permanent = permanent


def _lease_period() -> timedelta:
    return timedelta(seconds=settings.LOCAL_BUILD_LEASE_SECONDS)


@dataclass
class BuildLease:
    """One run's hold on a build. ``held_until`` (monotonic) is when the lease may run out at the
    earliest, as far as this runner knows: the last renewal was asked for before it was written."""

    build_pk: int
    owner: str
    held_until: float

    @property
    def renew_every(self) -> float:
        return settings.LOCAL_BUILD_LEASE_SECONDS / RENEWALS_PER_LEASE

    def renew(self) -> None:
        """Extend the lease; ``LeaseLost`` when another run owns the build, or when the database stayed
        unreachable so long that the lease could run out before the next renewal."""
        asked = time.monotonic()
        try:
            renewed = Build.objects.filter(
                pk=self.build_pk, lease_owner=self.owner, status=BuildStatus.IN_PROGRESS, ended_at__isnull=True
            ).update(lease_expires_at=timezone.now() + _lease_period())
        except DatabaseError as error:
            close_old_connections()  # a broken connection is replaced at the next renewal
            if asked + self.renew_every >= self.held_until:
                raise LeaseLost(f"the lease could not be renewed ({error.__class__.__name__})") from error
            logger.warning("build %s: lease not renewed this time: %s", self.build_pk, error)
            return
        if not renewed:
            raise LeaseLost("another run owns the build now")
        self.held_until = asked + settings.LOCAL_BUILD_LEASE_SECONDS


def local_build_claim(*, build_pk: int) -> BuildLease | str:
    """Claim the build for one run (lease, ``claimed_at``, ``runs`` + 1); otherwise why not, for the log.

    Claimable: in progress, its command not ended, runs left, and no live lease (never leased, handed
    out by the recovery with no owner, or run out)."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    asked = time.monotonic()  # before the expiry is computed: this runner never thinks it holds it longer
    now = timezone.now()
    claimed = (
        Build.objects.filter(
            pk=build_pk,
            status=BuildStatus.IN_PROGRESS,
            ended_at__isnull=True,
            runs__lt=settings.LOCAL_BUILD_MAX_RUNS,
        )
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_owner="") | Q(lease_expires_at__lte=now))
        .update(lease_owner=owner, lease_expires_at=now + _lease_period(), claimed_at=now, runs=F("runs") + 1)
    )
    if claimed:
        return BuildLease(build_pk=build_pk, owner=owner, held_until=asked + settings.LOCAL_BUILD_LEASE_SECONDS)
    build = Build.objects.filter(pk=build_pk).first()
    if build is None:
        return "skipped: no such build"
    if build.status != BuildStatus.IN_PROGRESS or build.ended_at is not None:
        return f"skipped: already finished ({build.status})"
    if build.runs >= settings.LOCAL_BUILD_MAX_RUNS:
        return f"skipped: no runs left ({build.runs} of LOCAL_BUILD_MAX_RUNS)"
    return f"skipped: leased to {build.lease_owner or 'a handed-out task'} until {build.lease_expires_at}"


def outcome_envelope(*, build: Build, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """The outcome event as CodeBuild's post-build step sends it."""
    return {
        "version": "0",
        # Derived from the build: every run and every post of this build's outcome carry the same id.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"orchestrator:local-build:{build.idempotency_token}")),
        "detail-type": detail_type,
        "source": "saas.tenant.provisioning.codebuild",
        "account": "000000000000",
        "time": timezone.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": settings.AWS_REGION,
        "resources": [],
        "detail": detail,
    }


def local_build_finish(*, lease: BuildLease, outcome: dict[str, Any], summary: str, details: dict[str, Any]) -> bool:
    """End the run in one transaction: store its outcome, release the lease, record it on the timeline.
    False when this run no longer holds the build (another run reports instead)."""
    with transaction.atomic():
        build = (
            Build.objects.select_for_update(of=("self",))
            .filter(pk=lease.build_pk, lease_owner=lease.owner, ended_at__isnull=True)
            .select_related("tenant")
            .first()
        )
        if build is None:
            return False
        now = timezone.now()
        build.outcome = outcome
        build.ended_at = now
        build.lease_expires_at = None
        # The runner posts it at once; should it die before the intake took it, the recovery re-posts.
        build.outcome_next_post_at = now + _lease_period()
        build.save(update_fields=["outcome", "ended_at", "lease_expires_at", "outcome_next_post_at"])
        history_record_build(build=build, summary=summary, details=details)
    return True


def outcome_post(*, envelope: dict[str, Any], attempts: int) -> None:
    """POST the outcome to our own intake, retrying while it is unreachable or answering 5xx/408/429."""
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
    for attempt in range(max(1, attempts)):
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
            raise OutcomeNotDelivered(problem, permanent=True)
    raise OutcomeNotDelivered(problem, permanent=False)


def _repost_delay(rounds: int) -> timedelta:
    return timedelta(seconds=min(REPOST_BACKOFF_MAX_SECONDS, REPOST_BACKOFF_SECONDS * 2 ** max(0, rounds - 1)))


def local_build_outcome_deliver(*, build_pk: int, attempts: int = 1) -> str:
    """Post the build's stored outcome unless the intake took it already, and record the answer."""
    build = Build.objects.filter(pk=build_pk, outcome_next_post_at__isnull=False).select_related("tenant").first()
    if build is None:
        return "skipped: no outcome waiting to be posted"
    detail_type = build.outcome["detail-type"]
    try:
        outcome_post(envelope=build.outcome, attempts=attempts)
    except OutcomeNotDelivered as error:
        return _record_not_delivered(build=build, error=error)
    now = timezone.now()
    Build.objects.filter(pk=build.pk, outcome_posted_at__isnull=True).update(
        outcome_posted_at=now,
        outcome_next_post_at=None,
        outcome_post_attempts=F("outcome_post_attempts") + 1,
        outcome_post_error="",
    )
    if build.outcome_post_attempts:
        history_record_build(
            build=build,
            summary=f"{detail_type} accepted by the intake at post round {build.outcome_post_attempts + 1}",
        )
    return f"{detail_type} delivered"


def _record_not_delivered(*, build: Build, error: OutcomeNotDelivered) -> str:
    detail_type = build.outcome["detail-type"]
    rounds = build.outcome_post_attempts + 1
    problem = str(error)
    logger.error("build %s: outcome not delivered to the intake (round %d): %s", build.pk, rounds, problem)
    next_post = None if error.permanent else timezone.now() + _repost_delay(rounds)
    updated = Build.objects.filter(pk=build.pk, outcome_posted_at__isnull=True).update(
        outcome_next_post_at=next_post, outcome_post_attempts=rounds, outcome_post_error=problem[:2000]
    )
    if not updated:  # a racing post got it through meanwhile
        return f"{detail_type} delivered"
    if error.permanent:
        build_record_state(
            build=build,
            status=BuildStatus.FAULT,
            reason=f"The intake refused the build's outcome ({problem}).",
            source="local-runner",
        )
        return f"refused: {problem}"
    if rounds == 1:  # once on the timeline; the build row keeps the latest answer
        history_record_build(
            build=build,
            summary=f"{detail_type} not delivered to the intake yet ({problem}); posting it again until accepted",
        )
    return f"undelivered (round {rounds}, next post at {next_post:%H:%M:%S}): {problem}"


# --- Recovery (beat) -------------------------------------------------------------------------------------


def local_runs_recover_lost(*, now: datetime) -> dict[str, int]:
    """LOCAL builds whose lease ran out (their runner died or stalled): handed to a new task, or given up
    after ``LOCAL_BUILD_MAX_RUNS`` runs. A hand-out is itself leased (no owner) for one lease period, so
    a build waiting in a busy queue is not handed out again at every sweep."""
    from tenants.builders.local import local_build_enqueue

    counts = {"rerun": 0, "given_up": 0}
    lost = list(
        Build.objects.filter(lease_expires_at__lte=now, status=BuildStatus.IN_PROGRESS, ended_at__isnull=True)
        .select_related("tenant")
        .order_by("lease_expires_at")[:RECOVERY_BATCH]
    )
    for build in lost:
        if build.runs >= settings.LOCAL_BUILD_MAX_RUNS:
            with transaction.atomic():
                Build.objects.filter(pk=build.pk).update(lease_expires_at=None)
                build_record_state(
                    build=build,
                    status=BuildStatus.FAULT,
                    reason=f"The local runner was lost {build.runs} times (LOCAL_BUILD_MAX_RUNS); giving up.",
                    source="recovery",
                )
            counts["given_up"] += 1
            continue
        with transaction.atomic():
            handed_out = Build.objects.filter(
                pk=build.pk,
                lease_owner=build.lease_owner,
                lease_expires_at=build.lease_expires_at,
                ended_at__isnull=True,
            ).update(lease_owner="", lease_expires_at=now + _lease_period())
            if not handed_out:
                continue
            if build.lease_owner:
                history_record_build(
                    build=build,
                    summary=f"Local runner {build.lease_owner} lost (lease ran out at "
                    f"{build.lease_expires_at:%H:%M:%S}); running the build again "
                    f"(run {build.runs + 1} of {settings.LOCAL_BUILD_MAX_RUNS})",
                )
            local_build_enqueue(build_pk=build.pk)
        counts["rerun"] += 1
    return counts


def local_outcomes_hand_out(*, now: datetime) -> int:
    """Stored outcomes the intake has not accepted and that are due: one post task each (held back until
    their next post time, so a slow post is not handed out twice)."""
    from tenants.tasks import post_build_outcome

    due = list(
        Build.objects.filter(outcome_next_post_at__lte=now)
        .order_by("outcome_next_post_at")
        .values_list("pk", "outcome_post_attempts")[:RECOVERY_BATCH]
    )
    for pk, rounds in due:
        with transaction.atomic():
            Build.objects.filter(pk=pk, outcome_next_post_at__isnull=False).update(
                outcome_next_post_at=now + _repost_delay(rounds + 1)
            )
            transaction.on_commit(partial(post_build_outcome.delay, build_pk=pk), robust=True)
    return len(due)
