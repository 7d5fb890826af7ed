"""Pipelines API: a tier's pipelines (superusers replace them, validated per kind, mirrored into the DynamoDB
tier item), a tenant's runs, and the staff actions with their permissions."""

import pytest
from rest_framework.test import APIClient

from tenants.models import PipelineOperation, PipelineRunStatus, StepRunStatus, TenantStatus
from tenants.services.pipeline_runs import pipeline_run_start
from tenants.tests.conftest import tier_item_of
from tenants.tests.factories import PipelineStepFactory, TenantFactory, TierFactory, pipeline_operator
from tenants.tests.test_apis import api_client, error_of

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("aws")]

BUILD = {
    "name": "build",
    "kind": "build",
    "config": {"project": "orchestrator-gold-provision", "builders": ["CODE_BUILD"]},
}
METADATA_URL = "http://169.254.169.254/latest"  # what the outbound guard exists for
APPROVAL = {"name": "go-live", "kind": "approval", "config": {"prompt": "Check it"}, "timeout_seconds": 600}


def test_a_superuser_replaces_a_pipeline_and_the_tier_item_carries_it(run_commit_hooks):
    # given a tier on CodeBuild, mirrored
    with run_commit_hooks():
        TierFactory(name="GOLD")

    # when a superuser replaces its provision pipeline
    with run_commit_hooks():
        response = api_client("superuser").put(
            "/api/tiers/GOLD/pipelines/provision/", {"steps": [BUILD, APPROVAL]}, format="json"
        )

    # then the steps are stored in order with their defaults
    assert response.status_code == 200, response.content
    steps = response.json()["pipelines"]["provision"]
    assert [step["name"] for step in steps] == ["build", "go-live"]
    assert steps[1] | {} == {
        **APPROVAL,
        "max_attempts": 1,
        "backoff_seconds": 30,
        "continue_on_failure": False,
    }
    # and mirrored into the tier's DynamoDB item, its original attributes as they were
    item = tier_item_of("GOLD")
    assert (item["tier"], item["jobName"]) == ("GOLD", "orchestrator-gold-provision")
    assert [step["name"] for step in item["pipelines"]["provision"]] == ["build", "go-live"]
    assert item["pipelines"]["provision"][0]["config"] == BUILD["config"]
    # and read back
    assert api_client("read_only").get("/api/tiers/GOLD/pipelines/").json()["pipelines"]["provision"] == steps


@pytest.mark.parametrize(
    ("step", "field", "reason"),
    [
        ({"name": "x", "kind": "teleport"}, "steps[0].kind", "Unknown step kind 'teleport'"),
        (
            {"name": "x", "kind": "build", "config": {"project": "p", "builders": ["LOCAL"]}},
            "steps[0].config",
            "builders: tier GOLD does not allow LOCAL.",
        ),
        (
            {
                "name": "x",
                "kind": "callback",
                "config": {"url": "http://169.254.169.254/latest", "signing": "original"},
            },
            "steps[0].config",
            "url: ",
        ),
        ({"name": "x", "kind": "callback", "config": {"callback": "elsewhere"}}, "steps[0].config", "callback: one of"),
        ({"name": "x", "kind": "wait", "config": {"seconds": 5, "event": "e"}}, "steps[0].config", "Either seconds"),
        ({"name": "x", "kind": "notify", "config": {"event_type": "tenant.exploded"}}, "steps[0].config", "event_type"),
        ({"name": "no spaces", "kind": "approval"}, "steps[0].name", "Letters, digits"),
    ],
)
def test_a_bad_step_is_a_structured_400_and_nothing_changes(step, field, reason):
    # given a tier with a pipeline
    tier = TierFactory(name="GOLD")
    PipelineStepFactory(tier=tier, name="keep")

    # when a superuser sends a bad step
    response = api_client("superuser").put("/api/tiers/GOLD/pipelines/provision/", {"steps": [step]}, format="json")

    # then 400 names the field and the reason, and the old pipeline stays
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["fields"][field][0].startswith(reason), error
    assert list(tier.pipeline_steps.values_list("name", flat=True)) == ["keep"]


def test_two_steps_of_one_name_are_refused():
    TierFactory(name="GOLD")
    response = api_client("superuser").put(
        "/api/tiers/GOLD/pipelines/provision/", {"steps": [APPROVAL, APPROVAL]}, format="json"
    )
    assert response.status_code == 400
    assert error_of(response)["fields"]["steps[1].name"] == ["Step go-live is given twice."]


def test_only_superusers_replace_pipelines():
    TierFactory(name="GOLD")
    response = api_client("operator").put("/api/tiers/GOLD/pipelines/provision/", {"steps": []}, format="json")
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


def approver_client() -> APIClient:
    client = APIClient()
    client.user = pipeline_operator()
    client.force_authenticate(client.user)
    return client


@pytest.fixture
def waiting_run(run_commit_hooks):
    """A provision run waiting at its approval."""
    tier = TierFactory(name="GOLD")
    PipelineStepFactory(tier=tier, name="go-live", kind="approval")
    tenant = TenantFactory(tier="GOLD", status=TenantStatus.PROVISIONING)
    with run_commit_hooks():
        return pipeline_run_start(
            tenant_id=tenant.pk, operation=PipelineOperation.PROVISION, context={}, triggered_by="t"
        )


def test_staff_list_a_tenants_runs_with_their_steps(waiting_run):
    response = api_client("read_only").get(f"/api/tenants/{waiting_run.tenant_id}/pipeline-runs/")
    assert response.status_code == 200
    (run,) = response.json()["results"]
    assert (run["id"], run["status"]) == (waiting_run.pk, PipelineRunStatus.WAITING)
    assert [(step["name"], step["status"]) for step in run["step_runs"]] == [("go-live", StepRunStatus.WAITING)]


def test_approving_needs_the_permission_and_is_idempotent(waiting_run, run_commit_hooks):
    step = waiting_run.step_runs.get()
    url = f"/api/pipeline-steps/{step.pk}/approve/"

    # read-only staff are refused
    assert api_client("read_only").post(url, {"comment": "ok"}, format="json").status_code == 403

    # a user with the permission approves; again is "already approved"
    operator = approver_client()
    with run_commit_hooks():
        first = operator.post(url, {"comment": "ok"}, format="json")
    second = operator.post(url, {}, format="json")
    assert first.status_code == 200, first.content
    assert (first.json()["changed"], second.json()["changed"]) == (True, False)
    assert first.json()["status"] == PipelineRunStatus.RUNNING  # it goes on in the advance task
    waiting_run.refresh_from_db()
    assert waiting_run.status == PipelineRunStatus.SUCCEEDED
    step.refresh_from_db()
    assert (step.decision, step.decision_comment, step.decided_by.username) == (
        "approved",
        "ok",
        operator.user.username,
    )
    # and rejecting it now is a conflict, not a 500
    rejected = operator.post(f"/api/pipeline-steps/{step.pk}/reject/", {}, format="json")
    assert rejected.status_code == 409
    assert error_of(rejected)["code"] == "conflict"


def test_cancel_and_redrive_need_their_permission(waiting_run):
    for action in ("cancel", "redrive"):
        response = api_client("read_only").post(f"/api/pipeline-runs/{waiting_run.pk}/{action}/")
        assert response.status_code == 403
    response = approver_client().post(f"/api/pipeline-runs/{waiting_run.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == PipelineRunStatus.CANCELLED
    assert approver_client().post("/api/pipeline-runs/999999/cancel/").status_code == 404
