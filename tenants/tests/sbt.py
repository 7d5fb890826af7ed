"""sbt-aws's side of the tests: its requests (from the fixtures, with fresh ids), CodeBuild's own state change
of a script job's build, and the check of our answers against sbt-aws's shapes, field by field."""

import uuid
from typing import Any

from django.conf import settings

from events.samples import sample_envelope
from tenants.models import Build, Tenant

# What the integration stack of sbt-aws (src/core-app-plane/integ.default.ts) sorts into jobOutput.
TENANT_DATA_VARIABLES = ["tenantS3Bucket", "tenantConfig", "prices", "tenantName", "email"]


def sbt_request(detail_type: str, **detail: Any) -> dict[str, Any]:
    """An sbt-aws request envelope from the fixtures, with a new event id and ``detail`` merged in."""
    body = sample_envelope(detail_type)
    body["id"] = str(uuid.uuid4())
    body["detail"].update(detail)
    return body


def new_onboarding(**detail: Any) -> dict[str, Any]:
    return sbt_request(
        "sbt_aws_onboardingRequest", tenantId=str(uuid.uuid4()), tenantRegistrationId=str(uuid.uuid4()), **detail
    )


def exported_variables(answer_fixture: str) -> list[dict[str, str]]:
    """The variables a script job exports to produce the answer of ``answer_fixture``."""
    output = sample_envelope(answer_fixture)["detail"]["jobOutput"]
    values = {**output["tenantData"], **output["tenantRegistrationData"]}
    return [{"name": name, "value": value} for name, value in values.items()]


def codebuild_state_change(build: Build, status: str, *, exported: list | None = None, **info: Any) -> dict[str, Any]:
    """The detail of CodeBuild's ``Build State Change`` for ``build``, as AWS sends it."""
    information: dict[str, Any] = {"build-complete": status != "IN_PROGRESS", **info}
    if exported is not None:
        information["exported-environment-variables"] = exported
    return {
        "build-status": status,
        "project-name": build.project,
        "build-id": build.arn,
        "current-phase": "COMPLETED",
        "additional-information": information,
    }


def assert_sbt_answer(answer: dict[str, Any], fixture: str, request: dict[str, Any], *, reason: str = "") -> None:
    """``answer`` (detail-type, source, bus, detail) is sbt-aws's ``fixture`` for the registration of
    ``request``, field by field, plus our own ``orchestrator`` block (the tenant as it is now) and nothing else."""
    expected = sample_envelope(fixture)
    assert answer["detail-type"] == expected["detail-type"]
    assert answer["source"] == expected["source"] == settings.SBT_APPLICATION_PLANE_SOURCE
    assert answer["bus"] == (settings.SBT_EVENT_BUS_NAME or settings.EVENT_BUS_NAME)
    detail = answer["detail"]
    assert detail["tenantRegistrationId"] == request["detail"]["tenantRegistrationId"]
    assert detail["jobOutput"] == expected["detail"]["jobOutput"]
    assert set(detail) == {"tenantRegistrationId", "jobOutput", "orchestrator"}
    tenant = Tenant.objects.filter(pk=request["detail"]["tenantId"]).first()
    ours = {"tenantId": request["detail"]["tenantId"], "status": tenant.status if tenant else ""}
    assert detail["orchestrator"] == {**ours, **({"reason": reason} if reason else {})}


def outbox_answer(row: Any) -> dict[str, Any]:
    return {"detail-type": row.detail_type, "source": row.source, "bus": row.event_bus, "detail": row.detail}
