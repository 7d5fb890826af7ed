"""Admin for received events (read-only, with a POST-only Replay and a dry-run form) and the outbox (read-only)."""

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from events.catalogue import DetailType
from events.dry_run import event_dry_run
from events.intake.envelope import body_parse
from events.models import EventAttempt, OutboxEvent, ReceivedEvent
from events.oauth import admin as oauth_admin  # noqa: F401  (registers the token endpoint's clients)
from events.samples import sample_envelope
from events.services import event_replay
from orchestrator.admin_helpers import ReadOnlyAdminMixin, field_names, fieldset_fields, pretty_json
from orchestrator.errors import ApplicationError
from orchestrator.permissions import acting_user
from orchestrator.redaction import redact_text
from orchestrator.staff import PERM_REPLAY_EVENT, PERM_VIEW_EVENT


class DryRunForm(forms.Form):
    event = forms.CharField(
        label="Event (the JSON body POST /api/events/ takes)",
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "spellcheck": "false", "class": "vLargeTextField"}),
        max_length=settings.INTAKE_MAX_BODY_BYTES,
    )


class EventAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = EventAttempt
    extra = 0
    can_delete = False
    fields = ["number", "outcome", "masked_error", "requested_by", "started_at", "finished_at"]
    readonly_fields = field_names(fields)
    ordering = ["number"]

    @admin.display(description="error")
    def masked_error(self, attempt: EventAttempt) -> str:
        return redact_text(attempt.error)


@admin.register(ReceivedEvent)
class ReceivedEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["event_id", "detail_type", "tenant_id", "status", "attempts", "received_at", "finished_at"]
    list_filter = ["status", "detail_type", "received_at"]
    search_fields = ["event_id", "tenant_id"]
    date_hierarchy = "received_at"
    inlines = [EventAttemptInline]
    change_form_template = "admin/events/receivedevent/change_form.html"
    change_list_template = "admin/events/receivedevent/change_list.html"
    fieldsets = [
        (
            None,
            {"fields": ["event_id", "detail_type", "source", "account", "region", "time", "resources", "tenant_id"]},
        ),
        (
            "Processing",
            {
                "fields": [
                    "status",
                    "attempts",
                    "masked_last_error",
                    "pretty_result",
                    "received_at",
                    "started_at",
                    "finished_at",
                    "next_attempt_at",
                    "replay_requested_by",
                ]
            },
        ),
        ("Payload (secrets masked)", {"fields": ["pretty_detail", "pretty_envelope"]}),
    ]
    readonly_fields = fieldset_fields(fieldsets)  # every field shown is read-only

    @admin.display(description="detail")
    def pretty_detail(self, event: ReceivedEvent) -> str:
        return pretty_json(event.detail)

    @admin.display(description="envelope as received")
    def pretty_envelope(self, event: ReceivedEvent) -> str:
        return pretty_json(event.envelope)

    @admin.display(description="result")
    def pretty_result(self, event: ReceivedEvent) -> str:
        return pretty_json(event.result)

    @admin.display(description="last error")
    def masked_last_error(self, event: ReceivedEvent) -> str:
        return redact_text(event.last_error)

    def get_urls(self) -> list[URLPattern]:
        replay = self.admin_site.admin_view(self.replay_view)
        dry_run = self.admin_site.admin_view(self.dry_run_view)
        return [
            path("<int:pk>/replay/", replay, name="events_receivedevent_replay"),
            path("dry-run/", dry_run, name="events_receivedevent_dry_run"),
            *super().get_urls(),
        ]

    def dry_run_view(self, request: HttpRequest) -> HttpResponse:
        """What an event would do, without doing it (``event_dry_run``, as the API's ``/api/events/dry-run/``)."""
        user = request.user
        if not (user.is_active and user.is_staff and user.has_perm(PERM_VIEW_EVENT)):
            raise PermissionDenied
        result, error = None, None
        if request.method == "POST":
            form = DryRunForm(request.POST)
            if form.is_valid():
                try:
                    result = event_dry_run(data=body_parse(form.cleaned_data["event"].encode()))
                except ApplicationError as refused:
                    error = refused
        else:
            chosen = request.GET.get("type", "")
            sample = sample_envelope(chosen if chosen in DetailType.ALL else DetailType.TENANT_PROVISIONING)
            form = DryRunForm(initial={"event": json.dumps(sample, indent=2)})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Dry run an event",
            "form": form,
            "error": error,
            "result": result,
            "result_json": json.dumps(result, indent=2) if result else "",
            "sample_types": DetailType.ALL,
        }
        return TemplateResponse(
            request, "admin/events/receivedevent/dry_run.html", context, status=error.status_code if error else 200
        )

    def replay_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST-only: queue the event again (same service as the API), recorded as requested by this user."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        event = get_object_or_404(ReceivedEvent, pk=pk)
        if not self.has_replay_permission(request, event):
            raise PermissionDenied
        try:
            result = event_replay(event_pk=event.pk, user=acting_user(request.user))
        except ApplicationError as error:
            self.message_user(request, error.message, messages.WARNING)
        else:
            self.message_user(request, result.message, messages.SUCCESS if result.queued else messages.INFO)
        return HttpResponseRedirect(reverse("admin:events_receivedevent_change", args=[event.pk]))

    def has_replay_permission(self, request: HttpRequest, event: ReceivedEvent | None = None) -> bool:
        """Staff holding ``events.replay_receivedevent`` (the Operators group) may replay; the API asks the same."""
        user = request.user
        return bool(user.is_active and user.is_staff and user.has_perm(PERM_REPLAY_EVENT))

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_replay": self.has_replay_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description="Replay selected events")
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[ReceivedEvent]) -> None:
        queued = skipped = 0
        for event in queryset:
            try:
                result = event_replay(event_pk=event.pk, user=acting_user(request.user))
            except ApplicationError:
                skipped += 1
                continue
            queued += int(result.queued)
            skipped += int(not result.queued)
        self.message_user(request, f"Replay queued for {queued} event(s); {skipped} already queued or running.")

    actions = ["replay_selected"]

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if not self.has_replay_permission(request):
            actions.pop("replay_selected", None)
        return actions


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["detail_type", "tenant_id", "event_bus", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["status", "detail_type"]
    search_fields = ["tenant_id", "eventbridge_id"]
    fields = [
        "detail_type",
        "source",
        "event_bus",
        "tenant_id",
        "status",
        "attempts",
        "last_error",
        "eventbridge_id",
        "created_at",
        "sent_at",
        "pretty_detail",
    ]
    readonly_fields = field_names(fields)

    @admin.display(description="detail (secrets masked)")
    def pretty_detail(self, entry: OutboxEvent) -> str:
        return pretty_json(entry.detail)
