"""HTTP edges of the pipelines API: a tier's pipelines (read; replace one operation's, superusers), a tenant's
runs with their step runs (read), and the staff actions on runs: approve / reject a waiting approval step
(``tenants.approve_pipeline_step``), redrive / cancel a run (``tenants.manage_pipeline_run``). The actions
call the same services as the admin, which check the permission again and record the caller."""

from collections.abc import Callable
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orchestrator.openapi import error_response
from orchestrator.permissions import StaffModelPermissions, SuperuserWrites, acting_user, action_permission
from orchestrator.staff import PERM_APPROVE_STEP, PERM_MANAGE_RUN
from tenants import pipeline_openapi as examples
from tenants.apis import TENANT_ID, TIER_NAME
from tenants.models import PipelineOperation, PipelineRun, Tier
from tenants.openapi import ACTION_ERRORS, READ_ERRORS, WRITE_ERRORS
from tenants.pipeline_serializers import (
    DecisionInputSerializer,
    PipelineInputSerializer,
    PipelineRunSerializer,
    RunActionResultSerializer,
    TierPipelinesSerializer,
)
from tenants.selectors import tenant_get, tenant_pipeline_runs, tier_with_pipelines_get
from tenants.services.pipeline_actions import (
    RunActionResult,
    pipeline_run_cancel,
    pipeline_run_redrive,
    step_approve,
    step_reject,
)
from tenants.services.pipeline_definitions import pipeline_replace, tier_pipelines

TAG_PIPELINES = "pipelines"
OPERATION = OpenApiParameter(
    "operation", OpenApiTypes.STR, OpenApiParameter.PATH, enum=PipelineOperation.values, description="The operation."
)
NOT_FOUND = {404: ACTION_ERRORS[404]}
NO_SUCH_TIER = {404: error_response("No such tier.", "not_found", "No such tier.")}


def _pipelines_body(tier: Tier) -> dict[str, Any]:
    return {"tier": tier.name, "pipelines": tier_pipelines(tier=tier)}


class TierPipelinesApi(GenericAPIView):
    permission_classes = [SuperuserWrites]
    serializer_class = TierPipelinesSerializer
    queryset = Tier.objects.none()

    @extend_schema(
        operation_id="tiers_pipelines_retrieve",
        tags=[TAG_PIPELINES],
        summary="A tier's pipelines: each operation's ordered steps",
        parameters=[TIER_NAME],
        responses={
            200: OpenApiResponse(TierPipelinesSerializer, examples=examples.TIER_PIPELINES),
            **READ_ERRORS,
            **NO_SUCH_TIER,
        },
    )
    def get(self, request: Request, name: str) -> Response:
        return Response(_pipelines_body(tier_with_pipelines_get(name=name)))


class TierPipelineApi(GenericAPIView):
    permission_classes = [SuperuserWrites]
    serializer_class = PipelineInputSerializer
    queryset = Tier.objects.none()

    @extend_schema(
        operation_id="tiers_pipelines_update",
        tags=[TAG_PIPELINES],
        summary="Replace a tier's pipeline for one operation (superusers); written through to DynamoDB",
        description=(
            "Each step is validated by its kind (a build step's builders must be allowed by the tier, a LOCAL "
            "project listed in LOCAL_BUILD_COMMANDS, a callback URL must pass the outbound guard). Runs under way "
            "keep the steps they started with. `steps: []` removes the pipeline (the operation then runs as "
            "without pipelines)."
        ),
        parameters=[TIER_NAME, OPERATION],
        request=PipelineInputSerializer,
        examples=examples.PIPELINE_INPUT,
        responses={
            200: OpenApiResponse(TierPipelinesSerializer, examples=examples.TIER_PIPELINES),
            **WRITE_ERRORS,
            **NO_SUCH_TIER,
            400: examples.INVALID_PIPELINE,
        },
    )
    def put(self, request: Request, name: str, operation: str) -> Response:
        tier = tier_with_pipelines_get(name=name)
        data = PipelineInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pipeline_replace(tier=tier, operation=operation, steps=data.validated_data["steps"])
        return Response(_pipelines_body(tier_with_pipelines_get(name=name)))


class TenantPipelineRunsApi(GenericAPIView):
    permission_classes = [StaffModelPermissions]
    serializer_class = PipelineRunSerializer
    queryset = PipelineRun.objects.none()

    @extend_schema(
        operation_id="tenants_pipeline_runs_list",
        tags=[TAG_PIPELINES],
        summary="A tenant's pipeline runs, newest first, with their step runs (outputs redacted)",
        parameters=[TENANT_ID],
        responses={
            200: OpenApiResponse(PipelineRunSerializer(many=True), examples=examples.RUNS_LIST),
            **NOT_FOUND,
            **READ_ERRORS,
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        page = self.paginate_queryset(tenant_pipeline_runs(tenant=tenant_get(pk=pk)))
        return self.get_paginated_response(PipelineRunSerializer(page, many=True).data)


def _result(result: RunActionResult) -> Response:
    body = {"run": result.run.pk, "status": result.run.status, "changed": result.changed, "message": result.message}
    return Response(body)


def _run_action_api(
    name: str,
    *,
    permission: str,
    action: Callable[..., RunActionResult],
    operation_id: str,
    summary: str,
    answers: list[OpenApiExample],
    decision: bool,
) -> type[APIView]:
    """A staff action: ``POST`` on a step run (a decision, with an optional comment) or on a run."""
    target = OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="The step run's or run's id.")

    @extend_schema(
        operation_id=operation_id,
        tags=[TAG_PIPELINES],
        summary=summary,
        description="Idempotent: doing it again answers `changed: false`. Recorded in the tenant's history.",
        parameters=[target],
        request=DecisionInputSerializer if decision else None,
        examples=examples.DECISION_INPUT if decision else [],
        responses={
            200: OpenApiResponse(RunActionResultSerializer, examples=answers),
            **ACTION_ERRORS,
            409: examples.NOT_DECIDABLE,
        },
    )
    def post(self: APIView, request: Request, pk: int) -> Response:
        if not decision:
            return _result(action(run_id=pk, actor_user=acting_user(request.user)))
        data = DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _result(
            action(step_run_id=pk, actor_user=acting_user(request.user), comment=data.validated_data["comment"])
        )

    attributes = {"__module__": __name__, "__doc__": summary, "post": post}
    return type(name, (APIView,), {**attributes, "permission_classes": [action_permission(permission)]})


StepApproveApi = _run_action_api(
    "StepApproveApi",
    permission=PERM_APPROVE_STEP,
    action=step_approve,
    operation_id="pipeline_steps_approve",
    summary="Approve a waiting approval step (the run goes on)",
    answers=examples.APPROVED,
    decision=True,
)
StepRejectApi = _run_action_api(
    "StepRejectApi",
    permission=PERM_APPROVE_STEP,
    action=step_reject,
    operation_id="pipeline_steps_reject",
    summary="Reject a waiting approval step (the run fails)",
    answers=examples.REJECTED,
    decision=True,
)
RunRedriveApi = _run_action_api(
    "RunRedriveApi",
    permission=PERM_MANAGE_RUN,
    action=pipeline_run_redrive,
    operation_id="pipeline_runs_redrive",
    summary="Redrive a failed run from its failed step (earlier steps' outputs are kept)",
    answers=examples.REDRIVEN,
    decision=False,
)
RunCancelApi = _run_action_api(
    "RunCancelApi",
    permission=PERM_MANAGE_RUN,
    action=pipeline_run_cancel,
    operation_id="pipeline_runs_cancel",
    summary="Cancel a run (its open steps are cancelled; a live run ends as failed)",
    answers=examples.CANCELLED,
    decision=False,
)
