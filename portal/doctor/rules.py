"""The doctor's rules: one class per reason things get stuck, one line of ``RULES`` each. Thresholds are
settings (``DOCTOR_*``); each rule reads with one or two bounded, indexed queries."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse

from events.catalogue import DetailType
from events.models import EventAttempt, EventStatus, ReceivedEvent
from portal.doctor.base import Finding, Fix, Rule
from tenants.models import Build, BuildPurpose, BuildStatus, HistoryKind, Tenant, TenantHistory, TenantStatus
from webhooks import circuit
from webhooks.models import DeliveryStatus, WebhookDelivery

OUTCOME_DETAIL_TYPES = (DetailType.TENANT_PROVISIONING_SUCCESS, DetailType.TENANT_PROVISIONING_FAILURE)
TRANSITIONAL_STATUSES = (
    TenantStatus.PENDING_PROVISION,
    TenantStatus.PROVISIONING,
    TenantStatus.DEPLOYING,
    TenantStatus.DEPROVISIONING,
)


def _minutes(setting: str) -> timedelta:
    return timedelta(minutes=getattr(settings, setting))


def _latest_history_at(*, kind: str | None = None) -> Subquery:
    entries = TenantHistory.objects.filter(tenant=OuterRef("pk"))
    if kind is not None:
        entries = entries.filter(kind=kind)
    return Subquery(entries.order_by("-at").values("at")[:1])


class OutcomeMissing(Rule):
    """CodeBuild says the provisioning build succeeded, but the outcome event that moves the tenant on (it
    carries the build's outputs) was never applied."""

    name = "outcome_missing"
    title = "Build succeeded, no outcome event"

    def findings(self, *, now: datetime) -> Iterable[Finding]:
        builds = list(
            Build.objects.filter(
                purpose=BuildPurpose.PROVISION,
                status=BuildStatus.SUCCEEDED,
                awaiting_outcome_event=True,
                tenant__status=TenantStatus.PROVISIONING,
                ended_at__lt=now - _minutes("DOCTOR_OUTCOME_WAIT_MINUTES"),
            )
            .select_related("tenant")
            .order_by("ended_at")[: self.limit]
        )
        unapplied: dict[str, list[ReceivedEvent]] = {}
        for event in ReceivedEvent.objects.filter(
            tenant_id__in=[build.tenant_id for build in builds],
            detail_type__in=OUTCOME_DETAIL_TYPES,
            status__in=[EventStatus.FAILED, EventStatus.RETRYING],
        ).order_by("received_at"):
            unapplied.setdefault(event.tenant_id, []).append(event)
        for build in builds:
            assert build.ended_at is not None  # a succeeded build has ended
            events = [event for event in unapplied.get(build.tenant_id, []) if event.received_at >= build.started_at]
            waited = int((now - build.ended_at).total_seconds() // 60)
            reason = (
                f"CodeBuild reports build {build.build_id or build.pk} SUCCEEDED, but no "
                f"{DetailType.TENANT_PROVISIONING_SUCCESS} was applied in {waited} min; "
            )
            if events:
                reason += f"the outcome event was received and did not go through ({events[-1].last_error[:200]})."
            else:
                reason += "none was received: the build's post-build step did not report (see the build's logs)."
            yield self.finding(
                tenant_id=build.tenant_id,
                object_type="build",
                object_id=str(build.pk),
                reason=reason,
                since=build.ended_at,
                admin_path=reverse("admin:tenants_build_change", args=[build.pk]),
                fixes=tuple(Fix("replay_event", str(event.pk)) for event in events),
            )


class WaitingOnOpenCircuit(Rule):
    """A deploying tenant's delivery waits for an endpoint whose circuit has been open for a while."""

    name = "waiting_on_open_circuit"
    title = "Deployment waits on an open circuit"

    def findings(self, *, now: datetime) -> Iterable[Finding]:
        threshold = circuit.circuit_threshold()
        if not threshold:
            return
        deliveries = (
            WebhookDelivery.objects.filter(
                tenant__status=TenantStatus.DEPLOYING,
                status=DeliveryStatus.RETRYING,
                endpoint__consecutive_failures__gte=threshold,
                endpoint__circuit_opened_at__lt=now - _minutes("DOCTOR_CIRCUIT_WAIT_MINUTES"),
            )
            .select_related("endpoint")
            .order_by("endpoint__circuit_opened_at", "pk")[: self.limit]
        )
        for delivery in deliveries:
            endpoint = delivery.endpoint
            assert endpoint is not None  # filtered on its circuit
            assert endpoint.circuit_opened_at is not None
            yield self.finding(
                tenant_id=delivery.tenant_id or "",
                object_type="delivery",
                object_id=str(delivery.pk),
                reason=(
                    f"The tenant is deploying and its {delivery.event_type} delivery waits for endpoint "
                    f"{endpoint.pk}, whose circuit is open after {endpoint.consecutive_failures} failures in a row."
                ),
                since=endpoint.circuit_opened_at,
                admin_path=reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]),
                fixes=(Fix("close_circuit", str(endpoint.pk)), Fix("retry_delivery", str(delivery.pk))),
            )


class MirrorBehind(Rule):
    """The tenant's last change has not reached the DynamoDB mirror (the data plane reads stale data)."""

    name = "mirror_behind"
    title = "DynamoDB mirror behind"

    def findings(self, *, now: datetime) -> Iterable[Finding]:
        tenants = (
            Tenant.objects.filter(synced_version__lt=F("version"))
            .annotate(changed_at=Coalesce(_latest_history_at(), F("updated_at")))
            .filter(changed_at__lt=now - _minutes("DOCTOR_SYNC_LAG_MINUTES"))
            .only("pk", "key", "version", "synced_version", "updated_at")
            .order_by("changed_at")[: self.limit]
        )
        for tenant in tenants:
            yield self.tenant_finding(
                tenant_id=tenant.pk,
                reason=(
                    f"DynamoDB holds version {tenant.synced_version} of tenant {tenant.key}, the database "
                    f"version {tenant.version}: the data plane reads stale data."
                ),
                since=tenant.changed_at,
                fixes=(Fix("resync_tenant", tenant.pk),),
            )


class EventFailed(Rule):
    """An event whose handler failed on every attempt (a refused event is not one: replaying it changes
    nothing)."""

    name = "event_failed"
    title = "Event failed after all attempts"

    def findings(self, *, now: datetime) -> Iterable[Finding]:
        last_outcome = EventAttempt.objects.filter(event=OuterRef("pk")).order_by("-number").values("outcome")[:1]
        events = (
            ReceivedEvent.objects.filter(status=EventStatus.FAILED)
            .annotate(last_outcome=Subquery(last_outcome))
            .filter(last_outcome=EventAttempt.Outcome.FAILED)
            .only("pk", "detail_type", "tenant_id", "attempts", "attempts_base", "last_error", "finished_at")
            .order_by("-finished_at")[: self.limit]
        )
        for event in events:
            yield self.finding(
                tenant_id=event.tenant_id,
                object_type="event",
                object_id=str(event.pk),
                reason=(
                    f"{event.detail_type} failed after {event.attempts - event.attempts_base} attempts: "
                    f"{event.last_error[:300]}"
                ),
                since=event.finished_at or now,
                admin_path=reverse("admin:events_receivedevent_change", args=[event.pk]),
                fixes=(Fix("replay_event", str(event.pk)),),
            )


class TransitionalTooLong(Rule):
    """A tenant in a transitional status for longer than DOCTOR_TRANSITIONAL_MINUTES, when no other rule
    names a cause."""

    name = "transitional_too_long"
    title = "In a transitional status too long"
    generic = True

    def findings(self, *, now: datetime) -> Iterable[Finding]:
        tenants = (
            Tenant.objects.filter(status__in=TRANSITIONAL_STATUSES)
            .annotate(entered_at=Coalesce(_latest_history_at(kind=HistoryKind.TRANSITION), F("created_at")))
            .filter(entered_at__lt=now - _minutes("DOCTOR_TRANSITIONAL_MINUTES"))
            .only("pk", "key", "status", "created_at")
            .order_by("entered_at")[: self.limit]
        )
        for tenant in tenants:
            entered_at: datetime = tenant.entered_at
            minutes = int((now - entered_at).total_seconds() // 60)
            yield self.tenant_finding(
                tenant_id=tenant.pk,
                reason=(
                    f"Tenant {tenant.key} has been {TenantStatus(tenant.status).label} for {minutes} min; no rule "
                    "names a cause: read its timeline."
                ),
                since=entered_at,
            )


RULES: tuple[Rule, ...] = (
    OutcomeMissing(),
    WaitingOnOpenCircuit(),
    MirrorBehind(),
    EventFailed(),
    TransitionalTooLong(),
)
