"""The admin dashboard's charts: three aggregate reads, each bounded by a time window on an indexed column,
cached for ``DASHBOARD_CHARTS_CACHE_SECONDS``.

- events per minute by outcome, the last hour: ``GROUP BY`` minute and status over ``received_at`` (indexed);
- onboarding time per tier, p50 and p95, the last 24 h: from the tenant's creation (its first provisioning
  event) to its transition to ``ACTIVE``, over the history's ``at`` (indexed); PostgreSQL's
  ``percentile_cont`` (other databases: the chart says it needs PostgreSQL);
- deliveries by outcome, the last 24 h: ``GROUP BY`` status over ``created_at`` (indexed).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, FloatField, Func
from django.db.models.functions import TruncMinute
from django.utils import timezone

from events.models import EventStatus, ReceivedEvent
from tenants.models import HistoryKind, TenantHistory, TenantStatus
from webhooks.models import DeliveryStatus, WebhookDelivery

EVENTS_MINUTES = 60
WINDOW_HOURS = 24
CACHE_KEY = "portal:dashboard-charts:v1"


class Epoch(Func):
    """PostgreSQL's ``EXTRACT(EPOCH FROM interval)``: an interval in seconds."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


class Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)``."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: object, *, fraction: float) -> None:
        super().__init__(expression, output_field=FloatField(), fraction=float(fraction))


@dataclass(frozen=True)
class Series:
    name: str
    label: str
    values: list[int]


@dataclass(frozen=True)
class EventsPerMinute:
    start: datetime
    minutes: int
    series: list[Series]


@dataclass(frozen=True)
class Onboarding:
    tier: str
    count: int
    p50_seconds: float
    p95_seconds: float


@dataclass(frozen=True)
class Charts:
    events: EventsPerMinute
    onboarding: list[Onboarding]
    onboarding_supported: bool
    deliveries: list[tuple[str, str, int]]  # (status, label, count)
    window_hours: int


def events_per_minute(*, now: datetime, minutes: int = EVENTS_MINUTES) -> EventsPerMinute:
    """Events received in each of the last ``minutes`` minutes, by their status now (one query)."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    rows = (
        ReceivedEvent.objects.filter(received_at__gte=start, received_at__lte=now)
        .annotate(minute=TruncMinute("received_at"))
        .order_by()
        .values_list("minute", "status")
        .annotate(n=Count("pk"))
    )
    counts = {status: [0] * minutes for status in EventStatus.values}
    for minute, status, n in rows:
        index = int((minute - start).total_seconds() // 60)
        if 0 <= index < minutes and status in counts:
            counts[status][index] += n
    series = [Series(value, label, counts[value]) for value, label in EventStatus.choices]
    return EventsPerMinute(start=start, minutes=minutes, series=series)


def onboarding_times(*, now: datetime, hours: int = WINDOW_HOURS) -> list[Onboarding]:
    """p50 and p95 of the time from creation to ACTIVE of the tenants that became active in the window, per
    tier (one query; PostgreSQL only)."""
    took = ExpressionWrapper(F("at") - F("tenant__created_at"), output_field=DurationField())
    rows = (
        TenantHistory.objects.filter(
            at__gte=now - timedelta(hours=hours),
            kind=HistoryKind.TRANSITION,
            details__to=TenantStatus.ACTIVE,
        )
        .annotate(seconds=Epoch(took))
        .order_by()
        .values("tenant__tier")
        .annotate(
            n=Count("pk"),
            p50=Percentile("seconds", fraction=0.5),
            p95=Percentile("seconds", fraction=0.95),
        )
        .order_by("tenant__tier")
    )
    return [
        Onboarding(tier=row["tenant__tier"] or "(none)", count=row["n"], p50_seconds=row["p50"], p95_seconds=row["p95"])
        for row in rows
    ]


def deliveries_by_outcome(*, now: datetime, hours: int = WINDOW_HOURS) -> list[tuple[str, str, int]]:
    """Deliveries created in the window, by their status now (one query)."""
    counts = dict(
        WebhookDelivery.objects.filter(created_at__gte=now - timedelta(hours=hours))
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return [(value, label, counts.get(value, 0)) for value, label in DeliveryStatus.choices]


def dashboard_charts(*, now: datetime | None = None) -> Charts:
    """The three charts, cached briefly (the dashboard is the admin's home page)."""

    def compute() -> Charts:
        moment = now or timezone.now()
        supported = connection.vendor == "postgresql"
        return Charts(
            events=events_per_minute(now=moment),
            onboarding=onboarding_times(now=moment) if supported else [],
            onboarding_supported=supported,
            deliveries=deliveries_by_outcome(now=moment),
            window_hours=WINDOW_HOURS,
        )

    if now is not None or not settings.DASHBOARD_CHARTS_CACHE_SECONDS:
        return compute()
    charts = cache.get(CACHE_KEY)
    if charts is None:
        charts = compute()
        cache.set(CACHE_KEY, charts, timeout=settings.DASHBOARD_CHARTS_CACHE_SECONDS)
    return charts
