"""Admin: a tier's pipeline steps edited inline by superusers (saved through the definitions service), and
pipeline runs shown read-only with POST-only actions for users holding the permissions."""

import json

import pytest
from django.urls import reverse

from orchestrator.tests.admin_pages import csrf_client, csrf_token, page_form, shown_messages
from orchestrator.tests.factories import SuperuserFactory, staff_user
from tenants.models import PipelineOperation, PipelineRunStatus, PipelineStep, StepRunStatus, TenantStatus
from tenants.services.pipeline_runs import pipeline_run_start
from tenants.tests.factories import PipelineStepFactory, TenantFactory, TierFactory, pipeline_operator

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]


def with_steps(form: dict, *steps: dict) -> dict:
    """The tier page's form with ``steps`` added as new rows of the pipeline inline."""
    first = int(form["pipeline_steps-TOTAL_FORMS"])
    for index, step in enumerate(steps, start=first):
        row = {"config": "{}", "timeout_seconds": "3600", "max_attempts": "1", "backoff_seconds": "30", **step}
        form.update({f"pipeline_steps-{index}-{name}": value for name, value in row.items()})
    form["pipeline_steps-TOTAL_FORMS"] = str(first + len(steps))
    return form


def test_a_superuser_adds_steps_inline_and_they_are_saved_in_order(run_commit_hooks):
    # given a tier page
    tier = TierFactory(name="GOLD")
    client = csrf_client(SuperuserFactory())
    url = reverse("admin:tenants_tier_change", args=[tier.pk])

    # when a superuser adds an approval then a notify step (listed out of order)
    notify = {"event_type": "tenant.deployed"}
    form = with_steps(
        page_form(client.get(url)),
        {"operation": "provision", "position": "2", "name": "announce", "kind": "notify", "config": json.dumps(notify)},
        {"operation": "provision", "position": "1", "name": "go-live", "kind": "approval"},
    )
    with run_commit_hooks():
        response = client.post(url, form)

    # then both are saved in position order
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    steps = PipelineStep.objects.filter(tier=tier).order_by("position")
    assert [(step.position, step.name, step.kind, step.config) for step in steps] == [
        (1, "go-live", "approval", {}),
        (2, "announce", "notify", notify),
    ]


def test_a_step_the_tier_does_not_allow_is_shown_as_an_error_and_nothing_is_saved():
    # given a CodeBuild-only tier
    tier = TierFactory(name="GOLD")
    client = csrf_client(SuperuserFactory())
    url = reverse("admin:tenants_tier_change", args=[tier.pk])

    # when a superuser adds a LOCAL build step
    local = json.dumps({"project": "demo/build.sh provision", "builders": ["LOCAL"]})
    form = with_steps(
        page_form(client.get(url)),
        {"operation": "provision", "position": "1", "name": "build", "kind": "build", "config": local},
    )
    response = client.post(url, form)

    # then the page shows why and no step exists
    assert response.status_code == 200
    errors = [
        str(error) for inline in response.context["inline_admin_formsets"] for error in inline.formset.non_form_errors()
    ]
    assert errors == ["provision: steps[0].config: builders: tier GOLD does not allow LOCAL."]
    assert not PipelineStep.objects.filter(tier=tier).exists()


@pytest.fixture
def waiting_run(run_commit_hooks):
    tier = TierFactory(name="GOLD")
    PipelineStepFactory(tier=tier, name="go-live", kind="approval")
    tenant = TenantFactory(tier="GOLD", status=TenantStatus.PROVISIONING)
    with run_commit_hooks():
        return pipeline_run_start(
            tenant_id=tenant.pk, operation=PipelineOperation.PROVISION, context={}, triggered_by="t"
        )


def test_an_approver_approves_from_the_run_page_and_the_run_finishes(waiting_run, run_commit_hooks):
    # given the run page, seen by a user who may approve
    client = csrf_client(pipeline_operator())
    page = client.get(reverse("admin:tenants_pipelinerun_change", args=[waiting_run.pk]))
    labels = [action.label for action in page.context["run_actions"]]
    assert labels == ["Approve go-live", "Reject go-live", "Cancel"]
    step = waiting_run.step_runs.get()
    approve = reverse("admin:tenants_pipelinerun_approve", args=[waiting_run.pk, step.pk])

    # when they open the approve URL (GET), then nothing happens
    assert client.get(approve).status_code == 405

    # when they POST it with a comment
    with run_commit_hooks():
        response = client.post(approve, {"comment": "looks good", "csrfmiddlewaretoken": csrf_token(page)})

    # then the run finished, the tenant is active, and the message says so
    assert response.status_code == 302
    assert shown_messages(response) == ["Step go-live approved."]
    waiting_run.refresh_from_db()
    step.refresh_from_db()
    assert waiting_run.status == PipelineRunStatus.SUCCEEDED
    assert (step.status, step.decision_comment) == (StepRunStatus.SUCCEEDED, "looks good")
    waiting_run.tenant.refresh_from_db()
    assert waiting_run.tenant.status == TenantStatus.ACTIVE


def test_read_only_staff_see_no_buttons_and_cannot_post(waiting_run):
    client = csrf_client(staff_user("read_only"))
    page = client.get(reverse("admin:tenants_pipelinerun_change", args=[waiting_run.pk]))
    assert page.status_code == 200
    assert page.context["run_actions"] == []
    assert 'id="pipeline-run-actions"' not in page.content.decode()
    cancel = reverse("admin:tenants_pipelinerun_cancel", args=[waiting_run.pk])
    assert client.post(cancel, {"csrfmiddlewaretoken": csrf_token(page)}).status_code == 403
    waiting_run.refresh_from_db()
    assert waiting_run.status == PipelineRunStatus.WAITING
