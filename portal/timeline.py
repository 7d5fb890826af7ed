"""A tenant's unified history timeline: ``TenantHistory`` rows joined to what they are about.

Every entry (received event, status change, build, callback delivery, staff action, sync) is a
``TenantHistory`` row; entries that name a row (``ref_type``/``ref_id``: ``event``, ``build``, ``delivery``)
are completed with that row's current state (event status, build status and logs link, delivery status
code and attempts). Reads: one query for the entries, one per referenced kind (at most three more),
whatever the number of entries.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse

from events.models import ReceivedEvent
from orchestrator.redaction import redacted_json
from tenants.models import FAILED_TENANT_STATUSES, Build, HistoryKind, TenantHistory, TenantStatus
from webhooks.models import DeliveryStatus, WebhookDelivery

# Shown on the admin page (newest N, in time order); the API pages through all of them.
TIMELINE_LIMIT = 500

_EVENT_FIELDS = ("pk", "event_id", "detail_type", "status", "attempts", "last_error", "received_at")
_BUILD_FIELDS = ("pk", "build_id", "purpose", "attempt", "status", "status_reason", "logs_url", "project")
# Only the plain columns: the encrypted ones (body, signing secret) are never decrypted for a timeline.
_DELIVERY_FIELDS = (
    "pk",
    "step",
    "event_type",
    "url",
    "status",
    "status_reason",
    "attempts",
    "last_status_code",
    "last_attempt_at",
    "next_attempt_at",
)


@dataclass
class TimelineEntry:
    entry: TenantHistory
    tone: str  # red / green / amber / blue / grey: the dot and border colour
    event: ReceivedEvent | None = None
    build: Build | None = None
    delivery: WebhookDelivery | None = None

    @property
    def ref_url(self) -> str:
        if self.event is not None:
            return reverse("admin:events_receivedevent_change", args=[self.event.pk])
        if self.build is not None:
            return reverse("admin:tenants_build_change", args=[self.build.pk])
        if self.delivery is not None:
            return reverse("admin:webhooks_webhookdelivery_change", args=[self.delivery.pk])
        return ""

    @property
    def by_staff(self) -> bool:
        return self.entry.actor != TenantHistory.SYSTEM

    @property
    def details(self) -> dict[str, Any]:
        return self.entry.details if isinstance(self.entry.details, dict) else {}

    @property
    def status_code(self) -> int | None:
        """The HTTP status of the attempt this entry records (callbacks)."""
        return self.details.get("status_code")

    @property
    def attempts(self) -> int | None:
        """The delivery's attempts when this entry was recorded (callbacks)."""
        return self.details.get("attempts")

    @property
    def details_json(self) -> str:
        return redacted_json(self.entry.details, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def tenant_history_entries(*, tenant_id: str) -> QuerySet[TenantHistory]:
    """The tenant's history rows in time order (what the API pages through)."""
    return TenantHistory.objects.filter(tenant_id=tenant_id).order_by("at", "id")


def _tone(entry: TenantHistory) -> str:
    details = entry.details if isinstance(entry.details, dict) else {}
    if entry.kind == HistoryKind.TRANSITION:
        to = details.get("to")
        if to in FAILED_TENANT_STATUSES:
            return "red"
        if to in (TenantStatus.ACTIVE, TenantStatus.INACTIVE):
            return "green"
        return "blue"
    if entry.kind == HistoryKind.TRANSITION_REFUSED:
        return "amber"
    if entry.kind == HistoryKind.EVENT:
        return "red" if details.get("refused") else "grey"
    if entry.kind == HistoryKind.CALLBACK:
        status = details.get("status")
        if status == DeliveryStatus.FAILED:
            return "red"
        if status == DeliveryStatus.SUCCEEDED:
            return "green"
        if status == DeliveryStatus.RETRYING:
            return "amber"
        return "grey"
    if entry.kind == HistoryKind.BUILD:
        summary = entry.summary.lower()
        if any(word in summary for word in ("failed", "fault", "timed out", "stopped", "refused")):
            return "red"
        if "succeeded" in summary:
            return "green"
        return "blue"
    if entry.kind == HistoryKind.STAFF_ACTION:
        return "blue"
    return "grey"


def _ids(entries: Iterable[TenantHistory], ref_type: str) -> set[int]:
    return {int(e.ref_id) for e in entries if e.ref_type == ref_type and str(e.ref_id).isdigit()}


def timeline_complete(entries: Sequence[TenantHistory]) -> list[TimelineEntry]:
    """Attach the referenced events, builds and deliveries (one query per kind present)."""
    refs: dict[str, dict[int, Any]] = defaultdict(dict)
    for ref_type, queryset in (
        ("event", ReceivedEvent.objects.only(*_EVENT_FIELDS)),
        ("build", Build.objects.only(*_BUILD_FIELDS)),
        ("delivery", WebhookDelivery.objects.only(*_DELIVERY_FIELDS)),
    ):
        ids = _ids(entries, ref_type)
        if ids:
            refs[ref_type] = queryset.order_by().in_bulk(ids)
    timeline = []
    for entry in entries:
        referenced = refs[entry.ref_type].get(int(entry.ref_id)) if str(entry.ref_id).isdigit() else None
        timeline.append(
            TimelineEntry(
                entry=entry,
                tone=_tone(entry),
                event=referenced if entry.ref_type == "event" else None,
                build=referenced if entry.ref_type == "build" else None,
                delivery=referenced if entry.ref_type == "delivery" else None,
            )
        )
    return timeline


@dataclass
class Timeline:
    entries: list[TimelineEntry]
    total_shown: int
    truncated: bool


def tenant_timeline(*, tenant_id: str, limit: int = TIMELINE_LIMIT) -> Timeline:
    """The newest ``limit`` entries in time order, completed (at most four queries)."""
    newest = list(TenantHistory.objects.filter(tenant_id=tenant_id).order_by("-at", "-id")[: limit + 1])
    truncated = len(newest) > limit
    entries = list(reversed(newest[:limit]))
    return Timeline(entries=timeline_complete(entries), total_shown=len(entries), truncated=truncated)
