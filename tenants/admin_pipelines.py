"""Admin for pipelines: the ordered steps inline on the tier page (superusers; saved through
``pipeline_replace`` by ``TierAdmin.save_related``), and pipeline runs (read-only, with their step runs and
POST-only actions: approve / reject a waiting approval step, redrive / cancel the run, calling the services
the API calls, which check the permission and record the staff user)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse

from orchestrator.admin_helpers import ReadOnlyAdminMixin, badge_html
from orchestrator.errors import ApplicationError
from orchestrator.permissions import acting_user
from orchestrator.staff import PERM_APPROVE_STEP, PERM_MANAGE_RUN
from tenants.models import PipelineRun, PipelineRunStatus, PipelineStep, StepRun, StepRunStatus, Tier
from tenants.pipelines.registry import step_kind, step_kinds
from tenants.services.pipeline_actions import pipeline_run_cancel, pipeline_run_redrive, step_approve, step_reject
from tenants.services.pipeline_definitions import STEP_DEFAULTS, pipeline_problems, pipeline_replace

# --- Steps inline on the tier page -------------------------------------------------------------------------


def _rows_by_operation(formset: BaseInlineFormSet) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
    """The steps the inline lists once saved, per operation in position order, and the operations it touched."""
    kept: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    touched: set[str] = set()
    for form in formset.forms:
        data = form.cleaned_data
        if not data:
            continue
        operation = str(data.get("operation") or form.initial.get("operation"))
        if form.has_changed() or data.get("DELETE"):
            touched.add(operation)
            if form.initial.get("operation"):
                touched.add(form.initial["operation"])  # a step moved to another operation leaves this one
        if not data.get("DELETE"):
            row = {"name": data["name"], "kind": data["kind"], **{field: data[field] for field in STEP_DEFAULTS}}
            kept.setdefault(operation, []).append((data["position"], row))
    ordered = {
        operation: [row for _, row in sorted(rows, key=lambda item: item[0])] for operation, rows in kept.items()
    }
    return ordered, touched


class PipelineStepFormSet(BaseInlineFormSet):
    """Each operation's steps are checked as the service checks them (``self.instance`` carries the tier's
    builders as the form has them). A tier form posted without this inline (a page or a script made before
    pipelines existed) leaves the pipelines alone rather than failing on the missing management form."""

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        prefix = kwargs.get("prefix") or self.get_default_prefix()
        if data is not None and f"{prefix}-TOTAL_FORMS" not in data:
            data = data.copy()
            data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
        super().__init__(data, *args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        rows, touched = _rows_by_operation(self)
        messages_: list[str] = []
        for operation in sorted(touched):
            problems = pipeline_problems(tier=self.instance, operation=operation, steps=rows.get(operation, []))
            messages_ += [f"{operation}: {field}: {'; '.join(reasons)}" for field, reasons in problems.items()]
        if messages_:
            raise forms.ValidationError(messages_)


class PipelineStepForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=[])  # the registry's kinds, read when the form is made (after ready())

    class Meta:
        model = PipelineStep
        fields = ["operation", "position", "name", "kind", "config", *list(STEP_DEFAULTS)[1:]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind_field = self.fields["kind"]
        assert isinstance(kind_field, forms.ChoiceField)
        kind_field.choices = [(kind, kind) for kind in step_kinds()]


class PipelineStepInline(admin.TabularInline):
    model = PipelineStep
    form = PipelineStepForm
    formset = PipelineStepFormSet
    extra = 0
    ordering = ["operation", "position"]
    verbose_name = "pipeline step"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser


def pipelines_save(*, tier: Tier, formsets: list) -> None:
    """Replace the pipelines the steps inline changed (the inline itself saves nothing)."""
    for formset in formsets:
        if formset.model is PipelineStep and formset.has_changed():
            rows, touched = _rows_by_operation(formset)
            for operation in sorted(touched):
                pipeline_replace(tier=tier, operation=operation, steps=rows.get(operation, []))


# --- Runs ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAction:
    label: str
    url: str
    comment: bool = False


STEP_RUN_FIELDS: tuple[str, ...] = (
    "position",
    "name",
    "kind",
    "status",
    "attempts",
    "started_at",
    "finished_at",
    "error",
    "decision",
    "decided_by",
    "decision_comment",
    "decided_at",
)
RUN_FIELDS: tuple[str, ...] = (
    "tenant",
    "operation",
    "tier_name",
    "status",
    "status_reason",
    "triggered_by",
    "created_at",
    "started_at",
    "finished_at",
)


class StepRunInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = StepRun
    extra = 0
    ordering = ["position"]
    fields = readonly_fields = STEP_RUN_FIELDS


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["id", "tenant", "operation", "status_badge", "tier_name", "created_at", "finished_at"]
    list_filter = ["status", "operation"]
    search_fields = ["tenant__id", "tenant__key"]
    list_select_related = ["tenant"]
    inlines = [StepRunInline]
    change_form_template = "admin/tenants/pipelinerun/change_form.html"
    fields = readonly_fields = RUN_FIELDS

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: PipelineRun) -> str:
        return badge_html(run.status, run.get_status_display())

    def get_queryset(self, request: HttpRequest) -> QuerySet[PipelineRun]:
        return super().get_queryset(request).select_related("tenant")

    def get_urls(self) -> list[URLPattern]:
        def url(route: str, view: Callable, name: str) -> URLPattern:
            return path(route, self.admin_site.admin_view(view), name=f"tenants_pipelinerun_{name}")

        return [
            url("<int:run_id>/redrive/", self.redrive_view, "redrive"),
            url("<int:run_id>/cancel/", self.cancel_view, "cancel"),
            url("<int:run_id>/steps/<int:step_id>/approve/", self.approve_view, "approve"),
            url("<int:run_id>/steps/<int:step_id>/reject/", self.reject_view, "reject"),
            *super().get_urls(),
        ]

    def run_actions(self, request: HttpRequest, run: PipelineRun) -> list[RunAction]:
        """The buttons that fit the run's state and the user's permissions."""
        actions = []
        user = request.user
        if user.has_perm(PERM_APPROVE_STEP):
            for step in run.step_runs.filter(status=StepRunStatus.WAITING):
                if step_kind(step.kind).needs_decision:
                    args = [run.pk, step.pk]
                    approve_url = reverse("admin:tenants_pipelinerun_approve", args=args)
                    reject_url = reverse("admin:tenants_pipelinerun_reject", args=args)
                    actions.append(RunAction(f"Approve {step.name}", approve_url, comment=True))
                    actions.append(RunAction(f"Reject {step.name}", reject_url, comment=True))
        if user.has_perm(PERM_MANAGE_RUN):
            if run.status == PipelineRunStatus.FAILED:
                actions.append(RunAction("Redrive", reverse("admin:tenants_pipelinerun_redrive", args=[run.pk])))
            if run.status not in (PipelineRunStatus.SUCCEEDED, PipelineRunStatus.CANCELLED):
                actions.append(RunAction("Cancel", reverse("admin:tenants_pipelinerun_cancel", args=[run.pk])))
        return actions

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        run = PipelineRun.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        actions = self.run_actions(request, run) if run is not None else []
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "run_actions": actions})

    def _act(self, request: HttpRequest, run_id: int, permission: str, call: Callable[[], Any]) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = get_object_or_404(PipelineRun, pk=run_id)
        if not request.user.has_perm(permission):
            raise PermissionDenied
        try:
            result = call()
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, result.message, messages.SUCCESS if result.changed else messages.INFO)
        return HttpResponseRedirect(reverse("admin:tenants_pipelinerun_change", args=[run.pk]))

    def _decide(self, request: HttpRequest, run_id: int, step_id: int, decide: Callable[..., Any]) -> HttpResponse:
        get_object_or_404(StepRun, pk=step_id, run_id=run_id)
        comment = request.POST.get("comment", "")
        call = lambda: decide(step_run_id=step_id, actor_user=acting_user(request.user), comment=comment)  # noqa: E731
        return self._act(request, run_id, PERM_APPROVE_STEP, call)

    def approve_view(self, request: HttpRequest, run_id: int, step_id: int) -> HttpResponse:
        return self._decide(request, run_id, step_id, step_approve)

    def reject_view(self, request: HttpRequest, run_id: int, step_id: int) -> HttpResponse:
        return self._decide(request, run_id, step_id, step_reject)

    def redrive_view(self, request: HttpRequest, run_id: int) -> HttpResponse:
        user = acting_user(request.user)
        return self._act(request, run_id, PERM_MANAGE_RUN, lambda: pipeline_run_redrive(run_id=run_id, actor_user=user))

    def cancel_view(self, request: HttpRequest, run_id: int) -> HttpResponse:
        user = acting_user(request.user)
        return self._act(request, run_id, PERM_MANAGE_RUN, lambda: pipeline_run_cancel(run_id=run_id, actor_user=user))
