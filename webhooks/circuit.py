"""A circuit breaker per subscriber endpoint: stop calling a receiver that keeps failing, try it again now and
then with a single delivery (the probe), and send everything that waited as soon as it answers.

Why: a receiver that is down fails every delivery, and every failure costs a request, an attempt row, a
retry and its bookkeeping: work taken from the healthy endpoints' deliveries. Once an endpoint has failed
WEBHOOK_CIRCUIT_FAILURES times in a row its circuit opens: its deliveries wait in the database (retrying,
no attempt spent) and the dispatcher leaves them alone. After the cooldown one delivery is sent as a probe;
a success closes the circuit and releases the waiting deliveries at once, a failure opens it again for
twice as long (capped at WEBHOOK_CIRCUIT_MAX_COOLDOWN_SECONDS).

Failures are answers that say nothing reached the receiver's application: no answer at all (refused,
reset, timed out) and 5xx. A 2xx closes the circuit; any other answer (4xx, 429, a redirect) shows the
receiver is up and leaves the count as it is. A delivery never waits forever: one older than
WEBHOOK_RETRY_WINDOW fails when it would be held back again.

The state lives on the endpoint row (``consecutive_failures``, ``circuit_opened_at``,
``circuit_open_until``), where staff see it and the dispatcher can filter on it; it is written only when it
changes, so healthy endpoints cost nothing.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


def circuit_threshold() -> int:
    """Failures in a row that open an endpoint's circuit; 0: never."""
    return max(0, int(settings.WEBHOOK_CIRCUIT_FAILURES))


def is_tripped(endpoint: WebhookEndpoint) -> bool:
    """Whether the endpoint's circuit is open or half-open (its deliveries are held back, probes aside)."""
    threshold = circuit_threshold()
    return threshold > 0 and endpoint.consecutive_failures >= threshold


def is_open(endpoint: WebhookEndpoint, now: datetime) -> bool:
    """Tripped and still cooling down: nothing may be sent to it, not even a probe."""
    return is_tripped(endpoint) and endpoint.circuit_open_until is not None and endpoint.circuit_open_until > now


def cooldown(failures: int) -> timedelta:
    """How long the circuit stays open after ``failures`` failures in a row: the base cooldown, doubled for
    every failed probe since it first opened, capped."""
    doublings = min(max(0, failures - circuit_threshold()), 30)
    seconds = float(settings.WEBHOOK_CIRCUIT_COOLDOWN_SECONDS) * 2**doublings
    return timedelta(seconds=min(seconds, float(settings.WEBHOOK_CIRCUIT_MAX_COOLDOWN_SECONDS)))


def not_open(now: datetime, *, prefix: str = "endpoint__") -> Q:
    """Deliveries whose endpoint's circuit is not open (or that have no endpoint): for the dispatcher."""
    return Q(**{f"{prefix}circuit_open_until__isnull": True}) | Q(**{f"{prefix}circuit_open_until__lte": now})


def probe_claim(*, endpoint: WebhookEndpoint, now: datetime, lease: timedelta) -> bool:
    """Take the half-open endpoint's one probe; True for the single caller that gets it. The probe holds the
    circuit open for ``lease`` (a lost worker's probe is taken over after it); its result decides the rest."""
    claimed = WebhookEndpoint.objects.filter(not_open(now, prefix=""), pk=endpoint.pk).update(
        circuit_open_until=now + lease
    )
    if claimed:
        endpoint.circuit_open_until = now + lease
    return bool(claimed)


@dataclass(frozen=True)
class Held:
    """Why a delivery was held back, for its status: until when, after how many failures."""

    until: datetime
    failures: int

    @property
    def reason(self) -> str:
        return (
            f"endpoint unreachable ({self.failures} failures in a row): circuit open, next try after "
            f"{self.until:%H:%M:%S}"
        )


def held_back(endpoint: WebhookEndpoint) -> Held:
    until = endpoint.circuit_open_until or timezone.now()
    return Held(until=until, failures=endpoint.consecutive_failures)


def circuits_record(outcomes: Iterable[tuple[WebhookEndpoint, bool | None]], *, now: datetime) -> list[int]:
    """Record attempt results on their endpoints' circuits: True a success, False a failure, None neither.
    A success on a tripped endpoint closes its circuit and releases the deliveries that waited. Runs after
    the attempts' own transaction: the state is advisory and short-locked. Returns the endpoints whose
    circuit these failures opened (for the caller to announce)."""
    succeeded: dict[int, WebhookEndpoint] = {}
    failed: dict[int, int] = {}
    for endpoint, ok in outcomes:
        if ok is True:
            succeeded[endpoint.pk] = endpoint
        elif ok is False:
            failed[endpoint.pk] = failed.get(endpoint.pk, 0) + 1
    if circuit_threshold() == 0:
        return []
    _close(list(succeeded), now=now)
    return [
        endpoint_id
        for endpoint_id, count in sorted(failed.items())
        # answered by another attempt of this group: it is up
        if endpoint_id not in succeeded and _count_failures(endpoint_id=endpoint_id, count=count, now=now)
    ]


def _close(endpoint_ids: list[int], *, now: datetime) -> None:
    """Reset the count of endpoints that just took a delivery. The count is read from the database, not
    from the rows loaded when the attempts started: other workers may have counted failures since."""
    if not endpoint_ids:
        return
    counted = dict(
        WebhookEndpoint.objects.filter(pk__in=endpoint_ids, consecutive_failures__gt=0).values_list(
            "pk", "consecutive_failures"
        )
    )
    if not counted:  # the usual case: one indexed read, nothing to write
        return
    WebhookEndpoint.objects.filter(pk__in=list(counted)).update(
        consecutive_failures=0, circuit_opened_at=None, circuit_open_until=None
    )
    tripped = [endpoint_id for endpoint_id, failures in counted.items() if failures >= circuit_threshold()]
    deliveries_release(endpoint_ids=tripped, now=now)


def _count_failures(*, endpoint_id: int, count: int, now: datetime) -> bool:
    """Add failures to the endpoint's count; True when they opened its circuit."""
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update()
            .only("consecutive_failures", "circuit_opened_at", "circuit_open_until")
            .filter(pk=endpoint_id)
            .first()
        )
        if endpoint is None:
            return False
        was_tripped = is_tripped(endpoint)
        endpoint.consecutive_failures += count
        if is_tripped(endpoint):
            endpoint.circuit_open_until = now + cooldown(endpoint.consecutive_failures)
            if not was_tripped:
                endpoint.circuit_opened_at = now
        endpoint.save(update_fields=["consecutive_failures", "circuit_opened_at", "circuit_open_until"])
    return is_tripped(endpoint) and not was_tripped


def deliveries_release(*, endpoint_ids: list[int], now: datetime) -> int:
    """Make the endpoints' waiting deliveries due now (the dispatcher sends them within seconds)."""
    if not endpoint_ids:
        return 0
    return WebhookDelivery.objects.filter(
        endpoint_id__in=endpoint_ids, status=DeliveryStatus.RETRYING, next_attempt_at__gt=now
    ).update(next_attempt_at=now, updated_at=now)


def circuit_close(*, endpoint: WebhookEndpoint) -> int:
    """Close the endpoint's circuit now (staff know it is back, or changed its URL) and release what waited;
    the number of deliveries released."""
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=0, circuit_opened_at=None, circuit_open_until=None
    )
    endpoint.consecutive_failures, endpoint.circuit_opened_at, endpoint.circuit_open_until = 0, None, None
    return deliveries_release(endpoint_ids=[endpoint.pk], now=now)


def probe_now(*, endpoint: WebhookEndpoint) -> None:
    """Half-open a tripped circuit at once, so the next delivery is a probe (a staff retry is one)."""
    if is_tripped(endpoint):
        now = timezone.now()
        WebhookEndpoint.objects.filter(pk=endpoint.pk, circuit_open_until__gt=now).update(circuit_open_until=now)
        endpoint.circuit_open_until = min(endpoint.circuit_open_until or now, now)


def circuit_state(endpoint: WebhookEndpoint, *, now: datetime | None = None) -> str:
    """``closed``, ``open`` or ``half_open``, for staff and the API."""
    now = now or timezone.now()
    if not is_tripped(endpoint):
        return "closed"
    return "open" if is_open(endpoint, now) else "half_open"
